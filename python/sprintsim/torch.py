"""SPRINT in the loop of a PyTorch model.

Every attention head of the wrapped model is decided by the C analog model
(quantized crossbar scores, every enabled non-ideality, the comparators
and the layer's threshold) and recomputed over its survivors as SPRINT's
digital path recomputes them (8-bit codes, softmax over the survivors);
the head outputs go back into the model, so later layers see the pruned
outputs and errors propagate as on the chip.  Inference only: outputs are
detached (no gradients flow through the C library).

    import sprintsim, sprintsim.torch as st
    session = st.Session({"threshold.mode": "keep_rate", "threshold.keep_rate": 0.3})
    with st.wrap(model, session):            # nn.MultiheadAttention and
        logits = model(x)                    # q/k/v-projection modules
    session.ledger, session.passes[-1]       # energy and cycles per pass

    o = session.attention(q, k, v, layer=0)  # the function: (B, H, N, d)

Random streams are keyed by (run.seed, layer, head, trial) with trial the
batch item's index in the stream of items the session has seen
(first_trial, first_trial + 1, ... across passes), as the C model
evaluator keys them by the test image's index, so the same item gives
the same decisions in Python and in `sprintsim run`.
"""
import contextlib

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - exercised by the tests without torch
    raise ImportError("sprintsim.torch needs PyTorch (Debian: apt-get install python3-torch)") from None

from . import _lib
from .api import Layers, STATS
from .config import as_config

HEAD_ATTRS = ("num_heads", "num_attention_heads", "n_heads", "n_head")
PROJ_NAMES = (("q_proj", "k_proj", "v_proj"), ("query", "key", "value"))
OUT_NAMES = ("out_proj", "o_proj", "proj", "c_proj", "dense", "out")

_E = [n for n in STATS if n.startswith("energy_") and n != "energy_J"]
_C = [n for n in STATS if n.startswith("cycles_")]


class Session:
    """The C side of a wrapped model: the configuration, the workspaces,
    the learned thresholds and the ledger.

    config   a Config, dict, INI path or None (sprintsim.Config).
    layers   attention layers of the model (wrap() sets it to the number
             of attention modules it finds); layer indices key the random
             streams and threshold.values.
    theta    learned thresholds on q.k / sqrt(d), one per layer
             (threshold.mode = learned).
    scheme   "sprint" (default), "dense", a baseline or "exact".
    first_trial  the trial of the first batch item (e.g. the index of the
             first test image); record_masks: keep SPRINT's masks of every
             pass in .masks[pass][layer] ((B, H, N, N) bool).

    .ledger  totals over every pass: energy_J, cycles, bytes_fetched,
             kept and pairs, and "energy_J_by" / "cycles_by" per ledger
             component; .passes: the same per forward pass (a pass is one
             call of the wrapped model, or a `with session.forward():`)."""

    def __init__(self, config=None, layers=None, theta=None, scheme="sprint", first_trial=0,
                 record_masks=False):
        self.config = as_config(config)
        self.scheme = scheme
        self.theta = None if theta is None else [float(t) for t in theta]
        self.layers = layers
        self.trial = int(first_trial)
        self.record_masks = record_masks
        self.masks = []
        self.passes = []
        self.ledger = self._empty()
        self._layers = None
        self._pass = None
        self._depth = 0

    @staticmethod
    def _empty():
        return {"energy_J": 0.0, "cycles": 0.0, "bytes_fetched": 0.0, "kept": 0.0, "pairs": 0.0,
                "items": 0, "energy_J_by": {n[7:-2]: 0.0 for n in _E},
                "cycles_by": {n[7:]: 0.0 for n in _C}, "theta_saturated": 0}

    def _engine(self, layer):
        need = max(layer + 1, self.layers or 1)
        if self._layers is None or self._layers.layers < need:
            if self._layers is not None:
                self._layers.close()
            self._layers = Layers(self.config, layers=need)
        return self._layers

    @contextlib.contextmanager
    def forward(self):
        """One forward pass: trials of its batch items follow the session's
        counter; the pass's ledger is appended to .passes.  Nested passes
        (a wrapped module inside a wrapped model) join the outer one."""
        self._depth += 1
        outer = self._depth == 1
        if outer:
            self._pass = self._empty()
            self._pass["batch"] = None
            if self.record_masks:
                self.masks.append({})
        try:
            yield self._pass
        finally:
            self._depth -= 1
            if outer:
                p = self._pass
                self._pass = None
                self.passes.append(p)
                self.trial += p["batch"] or 0
                for k in ("energy_J", "cycles", "bytes_fetched", "kept", "pairs", "items",
                          "theta_saturated"):
                    self.ledger[k] += p[k]
                for k in ("energy_J_by", "cycles_by"):
                    for c, v in p[k].items():
                        self.ledger[k][c] += v

    def attention(self, q, k, v, layer, attn_mask=None, key_padding_mask=None, is_causal=False):
        """Attention of one layer of heads: q, k, v (B, H, N, d) tensors
        (or (H, N, d)); returns the heads' outputs, same shape, q's dtype
        and device.  key_padding_mask (B, N) bool, True = padding: padded
        keys are removed before scoring (the C model sees the item's real
        tokens only) and padded query rows get the output 0.
        attn_mask: only a causal mask ((N, N) bool with True above the
        diagonal, or float with -inf there) or is_causal=True is
        accepted: SPRINT's causal mode scores, fetches and prices keys
        j <= i only."""
        if self._pass is None:
            with self.forward():
                return self.attention(q, k, v, layer, attn_mask, key_padding_mask, is_causal)
        if q.dim() == 3:
            out = self.attention(q[None], k[None], v[None], layer, attn_mask,
                                 None if key_padding_mask is None else key_padding_mask[None],
                                 is_causal)
            return out[0]
        if q.dim() != 4 or q.shape != k.shape or q.shape != v.shape:
            raise ValueError(f"q, k, v: shapes {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}; "
                             "expected equal (B, H, N, d) (self-attention, as many queries as keys)")
        B, H, N, d = q.shape
        causal = bool(is_causal) or _is_causal(attn_mask, N, "attn_mask")
        if key_padding_mask is not None:
            kpm = key_padding_mask
            if kpm.shape != (B, N):
                raise ValueError(f"key_padding_mask: shape {tuple(kpm.shape)}, expected {(B, N)}")
            if kpm.dtype != torch.bool:
                if kpm.is_floating_point():
                    kpm = torch.isinf(kpm) & (kpm < 0)
                else:
                    raise ValueError(f"key_padding_mask: dtype {kpm.dtype}; expected bool "
                                     "(True = padding) or float (-inf = padding)")
            kpm = kpm.cpu().numpy()
        else:
            kpm = None
        p = self._pass
        if p["batch"] is None:
            p["batch"] = B
        elif p["batch"] != B:
            raise ValueError(f"layer {layer}: batch {B} differs from the pass's first attention "
                             f"call ({p['batch']}); trials follow batch items")
        theta = None
        if self.theta is not None:
            if layer >= len(self.theta):
                raise ValueError(f"layer {layer}: theta has {len(self.theta)} values")
            theta = self.theta[layer]
        eng = self._engine(layer)
        Qn, Kn, Vn = (t.detach().to("cpu", torch.float32).contiguous().numpy() for t in (q, k, v))
        out = np.zeros((B, H, N, d), np.float32)
        rec = np.zeros((B, H, N, N), bool) if self.record_masks and self.scheme == "sprint" else None
        for b in range(B):
            if kpm is not None and kpm[b].any():
                idx = np.flatnonzero(~kpm[b])
                if len(idx) < 2:
                    raise ValueError(f"key_padding_mask: batch item {b} has {len(idx)} real "
                                     "token(s); SPRINT needs 2 or more")
                Qb, Kb, Vb = (np.ascontiguousarray(x[b][:, idx]) for x in (Qn, Kn, Vn))
            else:
                idx = None
                Qb, Kb, Vb = Qn[b], Kn[b], Vn[b]
            O, mask, _, stats, sat = eng(Qb, Kb, Vb, self.scheme, layer, 0, self.trial + b, theta,
                                         causal, want_masks=rec is not None)
            if idx is None:
                out[b] = O
                if rec is not None:
                    rec[b] = mask.astype(bool)
            else:
                out[b][:, idx] = O
                if rec is not None:
                    rec[b][np.ix_(np.arange(H), idx, idx)] = mask.astype(bool)
            n = len(idx) if idx is not None else N
            self._account(p, stats, H * (n * (n + 1) / 2 if causal else float(n) * n), sat)
        p["items"] = B
        if rec is not None:
            self.masks[-1][layer] = rec
        return torch.from_numpy(out).to(device=q.device, dtype=q.dtype)

    def _account(self, p, stats, pairs, sat):
        col = {n: i for i, n in enumerate(STATS)}
        p["pairs"] += pairs
        p["theta_saturated"] += sat
        if self.scheme == "exact":
            p["kept"] += pairs
            return
        s = stats
        p["kept"] += float(np.sum(s[:, col["keep_rate"]])) * pairs / len(s)
        p["energy_J"] += float(np.sum(s[:, col["energy_J"]]))
        p["cycles"] += float(np.sum(s[:, col["cycles"]]))
        p["bytes_fetched"] += float(np.sum(s[:, col["bytes_fetched"]]))
        for n in _E:
            p["energy_J_by"][n[7:-2]] += float(np.sum(s[:, col[n]]))
        for n in _C:
            p["cycles_by"][n[7:]] += float(np.sum(s[:, col[n]]))

    def close(self):
        if self._layers is not None:
            self._layers.close()
            self._layers = None


def _is_causal(mask, N, name):
    """True for a causal mask, False for None; ValueError for any other."""
    if mask is None:
        return False
    m = mask
    if m.dim() == 3 and m.shape[0] >= 1:
        if not all(torch.equal(m[0], m[i]) for i in range(1, m.shape[0])):
            raise ValueError(f"{name}: per-item or per-head masks differ; only a causal mask is "
                             "supported")
        m = m[0]
    if m.shape != (N, N):
        raise ValueError(f"{name}: shape {tuple(mask.shape)}; expected ({N}, {N})")
    blocked = m if m.dtype == torch.bool else torch.isinf(m) & (m < 0)
    if m.dtype != torch.bool and not torch.all((m == 0) | blocked):
        raise ValueError(f"{name}: additive float masks other than 0 / -inf are not supported")
    tri = torch.ones(N, N, dtype=torch.bool, device=m.device).triu(1)
    if torch.equal(blocked.to(torch.bool), tri):
        return True
    if not blocked.any():
        return False
    raise ValueError(f"{name}: only a causal mask (True or -inf above the diagonal) is supported; "
                     "SPRINT prunes by its thresholds, not by arbitrary masks")


def _heads_of(m):
    for a in HEAD_ATTRS:
        h = getattr(m, a, None)
        if isinstance(h, int) and h > 0:
            return h
    return None


def _projections(m):
    for names in PROJ_NAMES:
        mods = [getattr(m, n, None) for n in names]
        if all(isinstance(x, torch.nn.Linear) for x in mods):
            return mods
    return None


def _out_proj(m):
    for n in OUT_NAMES:
        x = getattr(m, n, None)
        if isinstance(x, torch.nn.Linear):
            return x
    return None


def find_attention(model):
    """(name, module, kind) of the attention modules wrap() replaces:
    nn.MultiheadAttention ("mha") and modules with q/k/v (or
    query/key/value) Linear projections, a head count attribute and an
    output projection (out_proj, o_proj, proj, c_proj, dense or out:
    "proj"), in module order (the layer index)."""
    found = []
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.MultiheadAttention):
            found.append((name, m, "mha"))
        elif _projections(m) is not None and _heads_of(m) is not None and _out_proj(m) is not None:
            found.append((name, m, "proj"))
    return found


def mha_forward(m, session, layer, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
    """nn.MultiheadAttention.forward with SPRINT's attention: the module's
    input and output projections, the session's attention in between.
    Returns (output, None): no attention weights."""
    if m.bias_k is not None or m.bias_v is not None or m.add_zero_attn:
        raise ValueError("MultiheadAttention: add_bias_kv and add_zero_attn append key/value "
                         "tokens; not supported")
    bf = m.batch_first
    unbatched = query.dim() == 2
    xs = []
    for x in (query, key, value):
        if unbatched:
            x = x.unsqueeze(0)
        elif not bf:
            x = x.transpose(0, 1)
        xs.append(x)
    if not (xs[0] is xs[1] or xs[0].shape == xs[1].shape):
        raise ValueError("MultiheadAttention: SPRINT needs self-attention shapes")
    e, H = m.embed_dim, m.num_heads
    if m._qkv_same_embed_dim:
        w = m.in_proj_weight.split(e, dim=0)
    else:
        w = (m.q_proj_weight, m.k_proj_weight, m.v_proj_weight)
    bias = m.in_proj_bias.split(e, dim=0) if m.in_proj_bias is not None else (None, None, None)
    B, N = xs[0].shape[0], xs[0].shape[1]
    q, k, v = (F.linear(x, wi, bi).reshape(B, -1, H, e // H).transpose(1, 2)
               for x, wi, bi in zip(xs, w, bias))
    if unbatched and key_padding_mask is not None:
        key_padding_mask = key_padding_mask.unsqueeze(0)
    o = session.attention(q, k, v, layer, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                          is_causal=is_causal)
    o = m.out_proj(o.transpose(1, 2).reshape(B, N, e))
    if unbatched:
        o = o[0]
    elif not bf:
        o = o.transpose(0, 1)
    return o, None


class SprintMultiheadAttention(torch.nn.Module):
    """A drop-in nn.MultiheadAttention whose attention runs in sprintsim:
    the wrapped module's weights, the session's decisions.  forward has
    MultiheadAttention's signature and returns (output, None)."""

    def __init__(self, mha, session, layer):
        super().__init__()
        if not isinstance(mha, torch.nn.MultiheadAttention):
            raise ValueError(f"expected nn.MultiheadAttention, not {type(mha).__name__}")
        self.mha, self.session, self.layer = mha, session, layer

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        return mha_forward(self.mha, self.session, self.layer, query, key, value,
                           key_padding_mask, need_weights, attn_mask, average_attn_weights,
                           is_causal)


class _ProjHook:
    """A q/k/v-projection module: its projections' outputs are captured by
    hooks and its output replaced by out_proj(SPRINT attention)."""

    def __init__(self, name, m, session, layer):
        self.name, self.m, self.session, self.layer = name, m, session, layer
        self.heads, self.projs, self.out = _heads_of(m), _projections(m), _out_proj(m)
        self.pending = {}
        self.handles = [m.register_forward_pre_hook(self.pre, with_kwargs=True)
                        if _hook_kwargs() else m.register_forward_pre_hook(self.pre_nokw),
                        m.register_forward_hook(self.post)]
        self.handles += [p.register_forward_hook(self.grab(i)) for i, p in enumerate(self.projs)]
        self.kpm = None
        self.causal = False

    def pre(self, mod, args, kwargs):
        self.pending.clear()
        self.kpm = kwargs.get("key_padding_mask")
        self.causal = bool(kwargs.get("is_causal", False))
        return None

    def pre_nokw(self, mod, args):
        self.pending.clear()
        return None

    def grab(self, i):
        def hook(mod, args, out):
            self.pending[i] = out
        return hook

    def post(self, mod, args, out):
        if len(self.pending) != 3:
            raise ValueError(f"{self.name}: the q/k/v projections did not all run in its forward")
        q, k, v = (self.pending[i] for i in range(3))
        if q.dim() == 2:
            q, k, v = q[None], k[None], v[None]
        B, N, E = q.shape
        H = self.heads
        if E % H or k.shape != q.shape or v.shape != q.shape:
            raise ValueError(f"{self.name}: Q {tuple(q.shape)}, K {tuple(k.shape)}, V {tuple(v.shape)} "
                             f"do not split into {H} equal heads")
        q, k, v = (x.reshape(B, N, H, E // H).transpose(1, 2) for x in (q, k, v))
        o = self.session.attention(q, k, v, self.layer, key_padding_mask=self.kpm,
                                   is_causal=self.causal)
        o = self.out(o.transpose(1, 2).reshape(B, N, E))
        if self.pending[0].dim() == 2:
            o = o[0]
        if isinstance(out, tuple):
            return (o,) + tuple(None for _ in out[1:])
        return o

    def remove(self):
        for h in self.handles:
            h.remove()


def _hook_kwargs():
    import inspect
    return "with_kwargs" in inspect.signature(torch.nn.Module.register_forward_pre_hook).parameters


@contextlib.contextmanager
def wrap(model, session, modules=None):
    """Within the block, every attention module of model (find_attention,
    or the given (name, module, kind) list) runs its attention through
    session, in module order as layers 0, 1, ...; each call of model is
    one forward pass of the session (trials of its batch items follow
    the session's counter).  The model is restored on exit.
    nn.TransformerEncoderLayer's fused fast path is disabled inside the
    block (it would bypass the attention module)."""
    found = find_attention(model) if modules is None else list(modules)
    if not found:
        raise ValueError("wrap: no attention module found (nn.MultiheadAttention, or q/k/v "
                         "projections with a head count and an output projection)")
    if session.layers is None or session.layers < len(found):
        session.layers = len(found)
    undo = []
    try:
        for layer, (name, m, kind) in enumerate(found):
            if kind == "mha":
                def fwd(*args, _m=m, _l=layer, **kw):
                    return mha_forward(_m, session, _l, *args, **kw)
                m.forward = fwd
                undo.append(lambda _m=m: _m.__dict__.pop("forward", None))
            else:
                hk = _ProjHook(name, m, session, layer)
                undo.append(hk.remove)
        # each call of model is one pass, closed also when it raises
        prev = model.__dict__.get("forward")
        inner = model.forward

        def top(*args, **kwargs):
            with session.forward():
                return inner(*args, **kwargs)
        model.forward = top
        undo.append(lambda: model.__dict__.__setitem__("forward", prev) if prev is not None
                    else model.__dict__.pop("forward", None))
        fast = getattr(torch.backends, "mha", None)
        if fast is not None and hasattr(fast, "set_fastpath_enabled"):
            prev = fast.get_fastpath_enabled()
            fast.set_fastpath_enabled(False)
            undo.append(lambda: fast.set_fastpath_enabled(prev))
        with _no_fastpath(model, undo):
            yield session
    finally:
        for u in reversed(undo):
            u()


@contextlib.contextmanager
def _no_fastpath(model, undo):
    """nn.TransformerEncoderLayer / nn.TransformerEncoder call a fused
    kernel in eval mode without calling the attention module; a
    training-mode flag on those modules alone (dropout set to 0 by eval()
    elsewhere stays as it is) keeps them on the module path."""
    changed = []
    for m in model.modules():
        if isinstance(m, (torch.nn.TransformerEncoderLayer, torch.nn.TransformerEncoder)):
            for a in ("use_nested_tensor", "enable_nested_tensor"):
                if getattr(m, a, False):
                    changed.append((m, a, True))
                    object.__setattr__(m, a, False)
            if isinstance(m, torch.nn.TransformerEncoderLayer) and not m.training:
                # the fast path needs `not self.training`; dropout modules
                # inside keep their own (eval) mode
                changed.append((m, "training", m.training))
                object.__setattr__(m, "training", True)
    try:
        yield
    finally:
        for m, a, v in changed:
            object.__setattr__(m, a, v)
