"""run, attend, sweep and model files over libsprintsim."""
import ctypes
import math
import os

import numpy as np

from . import _lib
from ._lib import lib
from .config import Config, as_config, format_value

STATS = _lib.STAT_NAMES
# the head's analog part and the scheme's part of STATS
_N_HEAD = STATS.index("keep_rate")
HEAD_STATS = STATS[:_N_HEAD]
SCHEME_STATS = STATS[_N_HEAD:]


class Table(np.ndarray):
    """A numpy structured array (one row per record) with .to_pandas()."""

    def __new__(cls, rows, dtype):
        return np.array(rows, dtype=dtype).view(cls)

    def to_pandas(self):
        try:
            import pandas
        except ImportError:
            raise ImportError("to_pandas needs pandas (Debian: apt-get install python3-pandas)") from None
        return pandas.DataFrame.from_records(np.asarray(self).view(np.ndarray))


def _table(names, rows, strings=()):
    dt = [(n, "U32" if n in strings else "f8") for n in names]
    for i, n in enumerate(names):
        if n in ("layer", "head", "point", "item"):
            dt[i] = (n, "i8")
    return Table([tuple(r) for r in rows], dt)


def _scheme_code(scheme):
    if scheme == "exact":
        return _lib.EXACT
    if scheme not in _lib.SCHEMES:
        raise ValueError(f"scheme {scheme!r}: expected one of "
                         f"{', '.join(_lib.SCHEMES + ['exact'])}")
    return _lib.SCHEMES.index(scheme)


def default_threads():
    n = os.environ.get("OMP_NUM_THREADS")
    try:
        return max(1, int(n)) if n else (os.cpu_count() or 1)
    except ValueError:
        return os.cpu_count() or 1


def _threads(threads):
    if threads is None:
        return default_threads()
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or not 1 <= threads <= 1024:
        raise ValueError(f"threads={threads!r}: expected an integer in 1..1024")
    return int(threads)


# --- single heads and layers ------------------------------------------------

def check_array(name, x, ndim=(2, 3)):
    """x as a C-contiguous float32 array, refusing what C cannot take."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array, not {type(x).__name__}")
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name}: dtype {x.dtype} is not float32 or float64")
    if x.ndim not in ndim:
        raise ValueError(f"{name}: shape {x.shape} is not (n, d) or (heads, n, d)")
    if not x.flags.c_contiguous:
        raise ValueError(f"{name}: the array is not C-contiguous (use np.ascontiguousarray)")
    bad = ~np.isfinite(x)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name}: element {where} is {x[where]} (not finite)")
    # float32 is what the C library computes in: no copy for float32 input
    return x if x.dtype == np.float32 else x.astype(np.float32)


class Layers:
    """Attention layers under one configuration, with the C workspaces
    cached per shape (heads, n, d, causal).  The building block of attend()
    and sprintsim.torch: each call is one layer of one sequence, decided
    and recomputed in C exactly as the model evaluator does it
    (sim/spr_model_eval.c)."""

    def __init__(self, config=None, layers=1):
        self.config = as_config(config)
        if not 1 <= layers <= _lib.MAX_LAYERS:
            raise ValueError(f"layers={layers}: expected 1..{_lib.MAX_LAYERS}")
        self.layers = layers
        self._ws = {}

    def _handle(self, heads, n, d, causal):
        key = (heads, n, d, bool(causal))
        h = self._ws.get(key)
        if h is None:
            p = ctypes.c_void_p()
            _lib.check(lib.spr_bind_attn_alloc(self.config.ptr, self.layers, heads, n, d,
                                               int(bool(causal)), ctypes.byref(p)))
            h = self._ws[key] = p
        return h

    def close(self):
        for p in self._ws.values():
            lib.spr_bind_attn_free(p)
        self._ws.clear()

    def __del__(self):
        if hasattr(self, "_ws"):
            self.close()

    def __call__(self, Q, K, V, scheme="sprint", layer=0, head=0, trial=0, theta=None,
                 causal=False, keep_target=None, want_masks=True, out=None):
        """One layer: Q, K, V (heads, n, d) float32 C-contiguous (checked
        by the caller).  Returns (O, mask, ideal, stats, saturated)."""
        s = _scheme_code(scheme)
        H, n, d = Q.shape
        for name, x in (("K", K), ("V", V)):
            if x.shape != Q.shape:
                raise ValueError(f"{name}: shape {x.shape} differs from Q's {Q.shape}")
        if not 0 <= layer < self.layers:
            raise ValueError(f"layer={layer}: expected 0..{self.layers - 1}")
        if theta is None:
            theta = math.nan
        h = self._handle(H, n, d, causal)
        O = out if out is not None else np.empty((H, n, d), np.float32)
        sprint = s == 0 and want_masks
        mask = np.empty((H, n, n), np.uint8) if sprint else None
        ideal = np.empty((H, n, n), np.uint8) if sprint else None
        stats = np.empty((H, len(STATS)), np.float64)
        sat = ctypes.c_int()
        ptr = lambda a: a.ctypes.data if a is not None else None  # noqa: E731
        _lib.check(lib.spr_bind_attn_layer(
            h, s, int(layer), int(head), int(trial), float(theta),
            -1.0 if keep_target is None else float(keep_target),
            ptr(Q), ptr(K), ptr(V), ptr(O), ptr(mask), ptr(ideal), ptr(stats), ctypes.byref(sat)))
        return O, mask, ideal, stats, sat.value


class AttendResult:
    """What attend() returns: mask and ideal_mask (bool, (n, n) per head;
    None for schemes other than sprint), output (float32 (n, d) per head),
    stats (a Table, one row per head, the columns of sprintsim.STATS),
    ledger ({"energy_J": {component: J}, "cycles": {component: cycles}},
    summed over the heads) and saturated (heads whose learned threshold
    fell off the generator's grid)."""

    def __init__(self, mask, ideal, output, stats, saturated):
        self.mask, self.ideal_mask, self.output = mask, ideal, output
        self.stats = _table(STATS, stats)
        self.saturated = saturated
        e = {n[len("energy_"):-2]: float(np.nansum(self.stats[n])) for n in STATS
             if n.startswith("energy_") and n != "energy_J"}
        c = {n[len("cycles_"):]: float(np.nansum(self.stats[n])) for n in STATS
             if n.startswith("cycles_")}
        self.ledger = {"energy_J": e, "cycles": c,
                       "energy_total_J": float(np.nansum(self.stats["energy_J"])),
                       "cycles_total": float(np.nansum(self.stats["cycles"]))}

    def __repr__(self):
        return (f"<AttendResult output {self.output.shape}, keep rate "
                f"{float(np.mean(self.stats['keep_rate'])):.4f}>")


def attend(Q, K, V, config=None, scheme="sprint", layer=0, head=0, trial=0, theta=None,
           causal=False, keep_target=None):
    """One attention head (Q, K, V: (n, d)) or one layer of heads
    ((heads, n, d)) under `scheme` ("sprint", "dense", a baseline, or
    "exact"), numpy float32 (or float64, converted once) C-contiguous
    arrays.  layer, head and trial key the random streams (with run.seed);
    the heads of a 3-D input are head, head + 1, ...  theta: the learned
    threshold on q.k / sqrt(d) (threshold.mode = learned).  causal: query i
    sees keys j <= i only.  keep_target: match a baseline's keep rate
    (0..1) instead of its configured knob.  Returns an AttendResult."""
    Qc, Kc, Vc = (check_array(n, x) for n, x in (("Q", Q), ("K", K), ("V", V)))
    if Qc.shape != Kc.shape or Qc.shape != Vc.shape:
        raise ValueError(f"Q, K, V: shapes {Qc.shape}, {Kc.shape}, {Vc.shape} differ")
    one = Qc.ndim == 2
    if one:
        Qc, Kc, Vc = Qc[None], Kc[None], Vc[None]
    if Qc.shape[1] < 2 or Qc.shape[2] < 1:
        raise ValueError(f"Q: shape {Q.shape}: needs n >= 2 tokens and d >= 1")
    for name, v in (("layer", layer), ("head", head), ("trial", trial)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name}={v!r}: expected a non-negative integer")
    cfg = as_config(config)
    L = Layers(cfg, layers=int(layer) + 1)
    try:
        O, mask, ideal, stats, sat = L(Qc, Kc, Vc, scheme, int(layer), int(head), int(trial),
                                       theta, causal, keep_target)
    finally:
        L.close()
    tobool = (lambda m: (m[0] if one else m).astype(bool)) if mask is not None else (lambda m: None)
    return AttendResult(tobool(mask), tobool(ideal), O[0] if one else O, stats, sat)


# --- runs ---------------------------------------------------------------------

_LAYER_COLS = ["layer", "keep_rate", "ideal_keep_rate", "false_prune_rate", "false_keep_rate",
               "mass_retained", "ideal_mass_retained", "threshold_min", "threshold_max"]
_SCHEME_COLS = ["keep_rate", "bytes_fetched", "bytes_reused", "energy_J", "cycles", "speedup",
                "energy_reduction", "speedup_tiled", "energy_reduction_tiled", "rel_fro",
                "cos_mean", "cos_min", "mass_retained", "top1_recall", "topk_recall"]


class RunResult:
    """sprintsim.run of an attention workload (synthetic or Q/K/V file).

    heads   Table, one row per (layer, head): the analog decisions
            (threshold, analog_keep_rate, false prunes, masses, ...);
    scheme_heads  dict scheme -> Table of (layer, head) rows of that
            scheme's digital path and ledger (SCHEME_STATS);
    layers  Table of the per-layer means `sprintsim run` prints (the
            last row, layer -1, over all heads);
    scheme_rows  Table, one row per scheme that ran (the totals of
            `sprintsim run`'s scheme table, same column names as its
            --format json);
    schemes dict name -> dict of that row;
    config  the Config; trace: the trace file written, or None."""

    def __init__(self, config, L, H, stats, trace):
        self.config, self.trace = config, trace
        ran = [s for s in range(len(_lib.SCHEMES)) if not math.isnan(stats[s][0][0][_N_HEAD])]
        head_rows = [[l, h] + list(stats[0][l][h][:_N_HEAD]) for l in range(L) for h in range(H)]
        self.heads = _table(["layer", "head"] + HEAD_STATS, head_rows)
        self.scheme_heads = {
            _lib.SCHEMES[s]: _table(["layer", "head"] + SCHEME_STATS,
                                    [[l, h] + list(stats[s][l][h][_N_HEAD:]) for l in range(L)
                                     for h in range(H)]) for s in ran}
        n, causal = config["workload.seq_len"], config["workload.causal"]
        pairs = n * (n + 1) / 2 if causal else float(n) * n

        def means(rows):
            c = len(rows)
            m = dict(keep=0.0, ikeep=0.0, fp=0.0, fk=0.0, mass=0.0, imass=0.0)
            tmin, tmax = 1e300, -1e300
            for r in rows:  # the order and arithmetic of sim/cmd_run.c
                m["keep"] += r["analog_keep_rate"] / c
                m["ikeep"] += r["ideal_keep_rate"] / c
                m["fp"] += r["false_prunes"] / pairs / c
                m["fk"] += r["false_keeps"] / pairs / c
                m["mass"] += r["analog_mass_retained"] / c
                m["imass"] += r["ideal_mass_retained"] / c
                tmin, tmax = min(tmin, r["threshold"]), max(tmax, r["threshold"])
            return [m["keep"], m["ikeep"], m["fp"], m["fk"], m["mass"], m["imass"], tmin, tmax]

        hd = self.heads
        lrows = [[l] + means(hd[hd["layer"] == l]) for l in range(L)] + [[-1] + means(hd)]
        self.layers = _table(_LAYER_COLS, lrows)
        tot = {}
        for s in ran:
            t = self.scheme_heads[_lib.SCHEMES[s]]
            LH = len(t)
            r = dict(keep_rate=0.0, bytes_fetched=0.0, bytes_reused=0.0, energy_J=0.0, cycles=0.0,
                     rel_fro=0.0, cos_mean=0.0, cos_min=1.0, mass_retained=0.0, top1_recall=0.0,
                     topk_recall=0.0)
            for x in t:
                r["energy_J"] += x["energy_J"]
                r["cycles"] += x["cycles"]
                r["keep_rate"] += x["keep_rate"] / LH
                r["bytes_fetched"] += x["bytes_fetched"]
                r["bytes_reused"] += x["bytes_reused"]
                for k in ("rel_fro", "cos_mean", "mass_retained", "top1_recall", "topk_recall"):
                    r[k] += x[k] / LH
                r["cos_min"] = min(r["cos_min"], x["cos_min"])
            tot[_lib.SCHEMES[s]] = r
        dense, tiled = tot["dense"], tot.get("dense_tiled")
        for name, r in tot.items():
            r["speedup"] = dense["cycles"] / r["cycles"] if r["cycles"] > 0 else 0.0
            r["energy_reduction"] = dense["energy_J"] / r["energy_J"] if r["energy_J"] > 0 else 0.0
            r["speedup_tiled"] = (tiled["cycles"] / r["cycles"] if tiled and r["cycles"] > 0
                                  else math.nan)
            r["energy_reduction_tiled"] = (tiled["energy_J"] / r["energy_J"]
                                           if tiled and r["energy_J"] > 0 else math.nan)
        self.schemes = {k: {c: float(v[c]) for c in _SCHEME_COLS} for k, v in tot.items()}
        self.scheme_rows = _table(["scheme"] + _SCHEME_COLS,
                                  [[k] + [v[c] for c in _SCHEME_COLS] for k, v in self.schemes.items()],
                                  strings=("scheme",))

    def __repr__(self):
        return f"<RunResult {len(self.heads)} heads, schemes {', '.join(self.schemes)}>"


class ModelResult:
    """sprintsim.run of a model file (workload.source = model).

    scheme_rows  Table, one row per row of `sprintsim run` (reference,
            exact, sprint, dense, baselines): metric (top1 or bpc, also
            under that name), agreement, loss, keep_rate, totals of
            bytes_fetched, energy_J, cycles over the items, and the
            per-item figures of the CLI table;
    schemes dict name -> dict of that row (with keep_rate_layer);
    items   dict name -> Table of per-item figures (item, pred or nats,
            energy_J, cycles, keep_rate, bytes_fetched);
    labels  the items' labels (image models); metric: "top1" or "bpc";
    seconds, reference, loss_vs, config."""

    def __init__(self, config, handle):
        info = (ctypes.c_int * 10)()
        sec, ref = ctypes.c_double(), ctypes.c_char_p()
        lib.spr_bind_meval_info(handle, info, ctypes.byref(sec), ctypes.byref(ref))
        (inp, causal, N, first, depth, heads, tokens, outputs, head_dim, loss_vs) = list(info)
        self.config, self.seconds, self.reference = config, sec.value, ref.value.decode()
        self.input = "text" if inp == 1 else "image"
        self.metric = "bpc" if inp == 1 else "top1"
        self.n_items, self.first_item, self.depth, self.heads = N, first, depth, heads
        self.tokens, self.outputs, self.head_dim, self.causal = tokens, outputs, head_dim, bool(causal)
        names = _lib.SCHEMES + ["exact", "reference"]
        self.loss_vs = names[loss_vs]
        self.labels = np.zeros(N, np.uint8) if inp == 0 else None
        self.schemes, self.items = {}, {}
        order = [_lib.REFERENCE, _lib.EXACT] + list(range(len(_lib.SCHEMES)))
        for s in order:
            out = np.empty(9 + _lib.MAX_LAYERS)
            pred = np.zeros(N, np.uint8)
            nats, e, cyc, keep = (np.full(N, np.nan) for _ in range(4))
            by = np.zeros(N, np.int64)
            _lib.check(lib.spr_bind_meval_row(
                handle, s, out.ctypes.data, pred.ctypes.data, nats.ctypes.data, e.ctypes.data,
                cyc.ctypes.data, keep.ctypes.data, by.ctypes.data,
                self.labels.ctypes.data if self.labels is not None else None))
            if not out[0]:
                continue
            priced = s < len(_lib.SCHEMES)
            row = dict(metric=out[1], agreement=out[2], loss=out[3], keep_rate=out[4],
                       bytes_fetched=out[5], energy_J=out[6], cycles=out[7],
                       theta_saturated=int(out[8]))
            row[self.metric] = row["metric"]
            row["keep_rate_layer"] = [float(x) for x in out[9:9 + depth]]
            for k in ("bytes_fetched", "energy_J", "cycles"):
                row[k + "_per_item"] = row[k] / N if priced else math.nan
            self.schemes[names[s]] = row
            cols = ["item", "nats" if inp == 1 else "pred", "energy_J", "cycles", "keep_rate",
                    "bytes_fetched"]
            first_col = nats if inp == 1 else pred
            self.items[names[s]] = _table(cols, zip(range(first, first + N), first_col, e, cyc,
                                                    keep, by if priced else np.full(N, np.nan)))
        dn, tl = self.schemes.get("dense"), self.schemes.get("dense_tiled")
        for name, r in self.schemes.items():
            priced = name not in ("exact", "reference")
            r["speedup"] = dn["cycles"] / r["cycles"] if priced and dn else math.nan
            r["energy_reduction"] = dn["energy_J"] / r["energy_J"] if priced and dn else math.nan
            r["speedup_tiled"] = tl["cycles"] / r["cycles"] if priced and tl else math.nan
            r["energy_reduction_tiled"] = tl["energy_J"] / r["energy_J"] if priced and tl else math.nan
        cols = [self.metric, "agreement", "loss", "keep_rate", "bytes_fetched", "energy_J", "cycles",
                "bytes_fetched_per_item", "energy_J_per_item", "cycles_per_item", "speedup",
                "energy_reduction", "speedup_tiled", "energy_reduction_tiled", "theta_saturated"]
        self.scheme_rows = _table(["scheme"] + cols,
                                  [[k] + [v[c] for c in cols] for k, v in self.schemes.items()],
                                  strings=("scheme",))

    def __repr__(self):
        return (f"<ModelResult {self.n_items} {self.input} items, "
                + ", ".join(f"{k} {v['metric']:.4f}" for k, v in self.schemes.items()) + ">")


def run(config=None, threads=None, trace=None, output=None):
    """Simulate the workload of config (a Config, dict, INI path or None)
    as `sprintsim run` does, on `threads` OpenMP threads (default:
    OMP_NUM_THREADS or every core; results do not depend on it).

    An attention workload (workload.source synthetic or qkv) returns a
    RunResult; with trace=PATH the HDF5 trace (docs/trace.md, level
    run.trace) is written too.  A model file (source model) returns a
    ModelResult; with output=PATH its evaluation file (docs/models.md)."""
    cfg = as_config(config)
    t = _threads(threads)
    if cfg["workload.source"] in ("model", "vit"):
        if trace is not None:
            raise ValueError("trace: a model evaluation writes its file with output=PATH")
        h = ctypes.c_void_p()
        _lib.check(lib.spr_bind_meval(cfg.ptr, t, None, ctypes.byref(h)))
        try:
            if output is not None:
                _lib.check(lib.spr_bind_meval_write(os.fspath(output).encode(), cfg.ptr, h))
            return ModelResult(cfg, h)
        finally:
            lib.spr_bind_meval_free(h)
    if output is not None:
        raise ValueError("output: an attention run writes its trace with trace=PATH")
    L, H = cfg["workload.layers"], cfg["workload.heads"]
    r, tr = ctypes.c_void_p(), ctypes.c_void_p()
    _lib.check(lib.spr_run_alloc(cfg.ptr, t, ctypes.byref(r)))
    committed = False
    try:
        _lib.check(lib.spr_run_check(r))
        if trace is not None:
            _lib.check(lib.spr_trace_create(os.fspath(trace).encode(), cfg.ptr,
                                            _lib.VERSION.encode(), ctypes.byref(tr)))
            _lib.check(lib.spr_bind_trace_device(tr, cfg.ptr))
        nst = len(STATS)
        stats = np.empty((len(_lib.SCHEMES), L, H, nst))
        for layer in range(L):
            _lib.check(lib.spr_run_layer(r, layer))
            for h in range(H):
                if tr:
                    _lib.check(lib.spr_trace_write_head(tr, lib.spr_run_result(r, layer, h)))
                for s in range(len(_lib.SCHEMES)):
                    _lib.check(lib.spr_bind_run_stats(r, layer, h, s, stats[s, layer, h].ctypes.data))
        if tr:
            _lib.check(lib.spr_trace_write_summary(tr, lib.spr_run_results(r)))
            rc = lib.spr_trace_close(tr, 1)
            committed = True
            _lib.check(rc)
        return RunResult(cfg, L, H, stats, os.fspath(trace) if trace is not None else None)
    finally:
        if tr and not committed:
            lib.spr_trace_close(tr, 0)
        lib.spr_run_free(r)


# --- model files -------------------------------------------------------------

class Model:
    """The model file of a configuration (workload.source = model), with
    its test images: C's own forward pass of single items, for comparing a
    Python forward pass with it.  model.infer(item, scheme) returns the
    logits and, for SPRINT, the analog masks (depth, heads, n, n) bool;
    model.input_of(item) the item (pixels or token ids)."""

    def __init__(self, config):
        self.config = as_config(config)
        info = (ctypes.c_int * 9)()
        theta = np.empty(_lib.MAX_LAYERS)
        h = ctypes.c_void_p()
        _lib.check(lib.spr_bind_model_open(self.config.ptr, info, theta.ctypes.data, ctypes.byref(h)))
        self._h = h
        (inp, causal, self.depth, self.heads, self.tokens, self.head_dim, self.outputs,
         self.items, self.side) = list(info)
        self.input = "text" if inp == 1 else "image"
        self.causal = bool(causal)
        self.theta = theta[:self.depth].copy()

    def infer(self, item, scheme="sprint", masks=True):
        s = _scheme_code(scheme)
        text = self.input == "text"
        logits = np.empty((self.tokens, self.outputs) if text else self.outputs, np.float32)
        m = (np.empty((self.depth, self.heads, self.tokens, self.tokens), np.uint8)
             if masks and s == 0 else None)
        _lib.check(lib.spr_bind_model_infer(self._h, s, int(item), logits.ctypes.data,
                                            m.ctypes.data if m is not None else None, None))
        return logits, (m.astype(bool) if m is not None else None)

    def input_of(self, item):
        n = self.tokens if self.input == "text" else self.side * self.side
        buf = np.empty(n, np.uint8)
        logits = np.empty((self.tokens, self.outputs) if self.input == "text" else self.outputs,
                          np.float32)
        _lib.check(lib.spr_bind_model_infer(self._h, _lib.EXACT, int(item), logits.ctypes.data,
                                            None, buf.ctypes.data))
        return buf

    def close(self):
        if getattr(self, "_h", None):
            lib.spr_bind_model_free(self._h)
            self._h = None

    def __del__(self):
        self.close()


# --- sweeps -----------------------------------------------------------------

def sweep(config=None, grid=None, threads=None, schemes=None, max_points=None):
    """The rows of a sweep (docs/sweep.md): config (a Config, dict, INI
    path -- which may hold a [sweep] section -- or None) and grid, a dict
    {"section.key": [values], ...} of axes (the first varying slowest;
    "a + b" links keys), schemes: the schemes reported.  Returns a Table
    with one row per (point, scheme): point, one column per axis (the
    value's text), scheme, the evaluator's accuracy metrics, energy_J,
    cycles, keep_rate, bytes_fetched."""
    cfg = config if isinstance(config, Config) else None
    if cfg is None:
        if config is None or isinstance(config, dict):
            path, ov = None, dict(config or {})
        else:
            path, ov = os.fspath(config), {}
    else:
        path, ov = cfg.path, dict(cfg.overrides)
    sets = []
    # a key that is an axis takes the axis's values, not the configuration's
    axis_keys = {part.strip() for k in (grid or {}) for part in k.split("+")}
    for k, v in ov.items():
        if k not in axis_keys:
            sets.append(f"{k}={format_value(v)}")
    for k, vals in (grid or {}).items():
        if not isinstance(vals, (list, tuple, np.ndarray)) or len(vals) == 0:
            raise ValueError(f"grid[{k!r}]: expected a non-empty list of values")
        lists = any(isinstance(x, (list, tuple)) for x in vals)
        sets.append(f"sweep.{k}=" + (" | " if lists else ", ").join(format_value(x) for x in vals))
    if schemes is not None:
        sets.append("sweep.schemes=" + ", ".join(schemes))
    if max_points is not None:
        sets.append(f"sweep.max_points={int(max_points)}")
    t = _threads(threads)
    arr = _lib.strings(sets)
    sw = ctypes.c_void_p()
    rc = lib.spr_bind_sweep_load(path.encode() if path is not None else None, arr, len(sets),
                                 b"config", ctypes.byref(sw))
    if rc < 0:
        msg = _lib.errmsg()
        for k in ov:
            if lib.spr_bind_config_find(k.encode()) < 0 and f" {k}=" in msg:
                raise _lib.UnknownKeyError(rc, msg)
        _lib.check(rc)
    try:
        _lib.check(lib.spr_bind_sweep_eval(sw, t, None))
        A = lib.spr_sweep_naxes(sw)
        axes = [lib.spr_sweep_axis_key(sw, a).decode() for a in range(A)]
        M = lib.spr_bind_sweep_nmetrics(sw)
        metrics = [lib.spr_bind_sweep_metric(sw, i).decode() for i in range(M)]
        rows = []
        out = np.empty(5 + _lib.MAX_ACC)
        for p in range(lib.spr_sweep_npoints(sw)):
            vals = [lib.spr_sweep_axis_text(sw, a, lib.spr_sweep_point_value(sw, p, a)).decode()
                    for a in range(A)]
            for k in range(lib.spr_sweep_nschemes(sw)):
                s = lib.spr_sweep_scheme(sw, k)
                _lib.check(lib.spr_bind_sweep_row(sw, p, s, out.ctypes.data))
                if not out[0]:
                    continue
                rows.append([p] + vals + [_lib.SCHEMES[s]] + list(out[5:5 + M]) + list(out[1:5]))
        names = ["point"] + axes + ["scheme"] + metrics + ["energy_J", "cycles", "keep_rate",
                                                            "bytes_fetched"]
        dt = [("point", "i8")] + [(a, "U64") for a in axes] + [("scheme", "U16")] + \
             [(m, "f8") for m in names[len(axes) + 2:]]
        return Table([tuple(r) for r in rows], dt)
    finally:
        lib.spr_sweep_free(sw)
