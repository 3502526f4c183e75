"""Reading the HDF5 files sprintsim writes: run traces (docs/trace.md) and
model evaluations (docs/models.md section 7), with h5py (Debian:
python3-h5py)."""
import numpy as np

from .api import Table


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("read_trace needs h5py (Debian: apt-get install python3-h5py)") from None
    return h5py


def _val(x):
    if isinstance(x, bytes):
        return x.decode()
    if isinstance(x, np.ndarray):
        if x.shape == ():
            return _val(x[()])
        return x.copy()
    if isinstance(x, np.generic):
        return x.item()
    return x


def _grid_table(group, L, H):
    """(L, H) datasets of a group as one Table of (layer, head) rows;
    (L, H, C) datasets with a 'components' attribute as one column each."""
    cols = {"layer": np.repeat(np.arange(L), H), "head": np.tile(np.arange(H), L)}
    for name, d in group.items():
        if not hasattr(d, "shape"):
            continue
        a = d[()]
        if a.shape == (L, H):
            cols[name] = a.reshape(L * H)
        elif a.ndim == 3 and a.shape[:2] == (L, H) and "components" in d.attrs:
            comps = d.attrs["components"]
            comps = comps.decode().split(",") if isinstance(comps, bytes) else \
                [c.decode() if isinstance(c, bytes) else str(c) for c in np.atleast_1d(comps)]
            prefix = name.replace("_by_component", "")
            for k, c in enumerate(comps):
                cols[f"{prefix}_{c.strip()}"] = a[:, :, k].reshape(L * H)
    dt = [(k, v.dtype) for k, v in cols.items()]
    return Table(list(zip(*cols.values())), dt)


class Trace:
    """A file read by read_trace:
      kind        "run" (a trace), "model" (a model evaluation);
      provenance  dict: the root attributes (program, version, seed,
                  complete, ...) and, when present, /device_model's;
      config      dict "section.key" -> value of /config; ini: its INI text;
      tables      dict of Tables: run: "summary" (layer, head rows),
                  "schemes/<name>" per scheme; model: "schemes" (one row
                  per row of the evaluation) and "items/<name>" per row;
      masks(layer, head, which="analog"): a run's mask (bool n x n) at
                  trace level masks or full."""

    def __init__(self, path):
        h5py = _h5py()
        self.path = path
        with h5py.File(path, "r") as f:
            self.provenance = {k: _val(v) for k, v in f.attrs.items()}
            if "device_model" in f:
                self.provenance["device_model"] = {k: _val(v) for k, v in f["device_model"].attrs.items()}
            self.config, self.ini = {}, None
            if "config" in f:
                g = f["config"]
                if "ini" in g:
                    self.ini = _val(g["ini"][()])
                for sec, sg in g.items():
                    if hasattr(sg, "items"):
                        for key, d in sg.items():
                            self.config[f"{sec}.{key}"] = _val(d[()])
            self.tables = {}
            if "summary" in f:
                self.kind = "run"
                s = f["summary"]
                L, H = int(s.attrs["layers"]), int(s.attrs["heads"])
                self.tables["summary"] = _grid_table(s, L, H)
                for name, g in f.get("schemes", {}).items():
                    self.tables[f"schemes/{name}"] = _grid_table(g, L, H)
            elif "schemes" in f:
                self.kind = "model"
                rows, names = [], []
                idx = f["item_index"][()] if "item_index" in f else None
                for name, g in f["schemes"].items():
                    a = {k: _val(v) for k, v in g.attrs.items()}
                    names = sorted(set(names) | set(a))
                    rows.append((name, a))
                    cols = {"item": idx} if idx is not None else {}
                    for k, d in g.items():
                        v = d[()]
                        if idx is None or len(v) == len(idx):
                            cols[k] = v
                    self.tables[f"items/{name}"] = Table(list(zip(*cols.values())),
                                                         [(k, v.dtype) for k, v in cols.items()])
                dt = [("scheme", "U16")] + [(n, "f8") for n in names]
                self.tables["schemes"] = Table(
                    [tuple([r[0]] + [float(r[1].get(n, np.nan)) for n in names]) for r in rows], dt)
                if "labels" in f:
                    self.labels = f["labels"][()]
            else:
                raise ValueError(f"{path}: neither a run trace (/summary) nor a model "
                                 "evaluation (/schemes)")

    def masks(self, layer, head, which="analog"):
        h5py = _h5py()
        with h5py.File(self.path, "r") as f:
            g = f["layers"][f"layer_{layer:02d}"][f"head_{head:02d}"]
            name = f"mask_{which}"
            if name not in g:
                raise KeyError(f"{self.path}: layer {layer} head {head} has no {name} "
                               "(trace level summary)")
            packed = g[name][()]
            n = int(f["summary"].attrs["seq_len"])
        return np.unpackbits(packed, axis=1, bitorder="little")[:, :n].astype(bool)

    def __repr__(self):
        return f"<sprintsim.Trace {self.path!r} ({self.kind}): {', '.join(self.tables)}>"


def read_trace(path):
    """The tables, configuration and provenance of a file `sprintsim run`
    (or sprintsim.run) wrote: a Trace."""
    return Trace(path)
