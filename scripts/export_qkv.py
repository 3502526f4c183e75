#!/usr/bin/env python3
"""Export the per-head Q, K, V of a PyTorch model's attention into a
sprintsim-qkv HDF5 file (docs/qkv.md), for `sprintsim run` with
`workload.source = qkv`.

As a library:

    import sys; sys.path.insert(0, "scripts")
    from export_qkv import export_qkv
    info = export_qkv(model, inputs, "model-qkv.h5", mask=None)

`inputs` is what the model is called with: a tensor (model(x)), a tuple
(model(*inputs)) or a dict (model(**inputs)).  `mask` (batch, N) marks
real tokens with 1 and padding with 0; without it, the key_padding_mask
given to the first nn.MultiheadAttention call is used if there is one,
else every token is real.

Attention modules found (in call order, one layer per call):
  * torch.nn.MultiheadAttention: Q, K, V are computed from the module's
    query, key and value inputs with its in_proj (or q/k/v_proj) weights
    and biases, batch_first or not; Q is not scaled by 1/sqrt(d) (sprintsim
    applies the scale);
  * any module with Linear attributes q_proj/k_proj/v_proj or
    query/key/value and a head count attribute (num_heads,
    num_attention_heads, n_heads or n_head): the projections' outputs,
    (batch, N, E) or (N, E), split into heads of E / heads.
The model runs once with gradients enabled (a fused inference fast path,
like nn.TransformerEncoderLayer's, would bypass the attention modules);
the captured tensors are detached.

As a command (a small random demo model, or your own builder):

    /usr/bin/python3 scripts/export_qkv.py --demo mha -o demo-qkv.h5
    /usr/bin/python3 scripts/export_qkv.py --demo proj --batch 2 --pad 3 -o demo-qkv.h5
    /usr/bin/python3 scripts/export_qkv.py --model my_model.py:build -o model-qkv.h5

where build() returns (model, inputs) or (model, inputs, mask).  The demo
models have random weights, so their attention is close to uniform: they
show the format, not realistic attention.  Exit status: 0 success, 1 error,
2 bad command line or PyTorch/h5py/numpy not importable.
"""
import argparse
import importlib.util
import os
import sys
import tempfile
import warnings

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # reported by main(); library use raises below
    torch = None

FORMAT = "sprintsim-qkv"
VERSION = 1
HEAD_ATTRS = ("num_heads", "num_attention_heads", "n_heads", "n_head")
PROJ_NAMES = (("q_proj", "k_proj", "v_proj"), ("query", "key", "value"))


def _need_torch():
    if torch is None:
        raise ImportError("export_qkv needs PyTorch (Debian: apt-get install python3-torch)")


def _heads_of(module):
    for a in HEAD_ATTRS:
        h = getattr(module, a, None)
        if isinstance(h, int) and h > 0:
            return h
    return None


def _projections(module):
    """The (q, k, v) Linear layers of a projection-style attention module."""
    for names in PROJ_NAMES:
        mods = [getattr(module, n, None) for n in names]
        if all(isinstance(m, torch.nn.Linear) for m in mods):
            return mods
    return None


def find_attention(model):
    """(name, module, kind) of every attention module of model, kind 'mha' or 'proj'."""
    _need_torch()
    found = []
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.MultiheadAttention):
            found.append((name, m, "mha"))
        elif _projections(m) is not None and _heads_of(m) is not None:
            found.append((name, m, "proj"))
    return found


def _split_heads(x, heads, name):
    """(B, N, E) -> (B, heads, N, E / heads)."""
    b, n, e = x.shape
    if e % heads:
        raise ValueError(f"{name}: {e} features do not split into {heads} heads")
    return x.reshape(b, n, heads, e // heads).permute(0, 2, 1, 3)


def mha_qkv(m, query, key, value, name="MultiheadAttention"):
    """Per-head Q, K, V (B, H, N, d) of nn.MultiheadAttention m for its inputs."""
    if m.bias_k is not None or m.bias_v is not None:
        raise ValueError(f"{name}: add_bias_kv appends a learned key/value token; not supported")
    if m.add_zero_attn:
        raise ValueError(f"{name}: add_zero_attn appends a zero key/value token; not supported")
    batch_first = getattr(m, "batch_first", False)
    xs = []
    for x in (query, key, value):
        if x.dim() == 2:  # unbatched (N, E)
            x = x.unsqueeze(0)
        elif not batch_first:  # (N, B, E)
            x = x.transpose(0, 1)
        xs.append(x)
    e = m.embed_dim
    if m._qkv_same_embed_dim:
        w = m.in_proj_weight.split(e, dim=0)
    else:
        w = (m.q_proj_weight, m.k_proj_weight, m.v_proj_weight)
    b = m.in_proj_bias.split(e, dim=0) if m.in_proj_bias is not None else (None, None, None)
    out = [_split_heads(F.linear(x, wi, bi), m.num_heads, name) for x, wi, bi in zip(xs, w, b)]
    if out[0].shape[2] != out[1].shape[2]:
        raise ValueError(f"{name}: {out[0].shape[2]} queries but {out[1].shape[2]} keys; "
                         "sprintsim needs self-attention shapes (as many queries as keys)")
    return out


def _as_bld(y, module):
    """A projection's output as (B, N, E)."""
    if y.dim() == 2:
        return y.unsqueeze(0)
    if y.dim() != 3:
        raise ValueError(f"projection output of shape {tuple(y.shape)}; expected (batch, N, E) or (N, E)")
    if getattr(module, "batch_first", True) is False:
        return y.transpose(0, 1)
    return y


class _Capture:
    """Hooks that record Q, K, V per attention call, in call order."""

    def __init__(self, modules):
        self.layers = []  # (name, Q, K, V), each (B, H, N, d)
        self.key_padding_mask = None
        self._undo = []
        for name, m, kind in modules:
            if kind == "mha":
                self._wrap_mha(name, m)
            else:
                self._hook_proj(name, m)

    def _wrap_mha(self, name, m):
        orig = m.forward

        def forward(*args, **kwargs):
            names = ("query", "key", "value")
            qkv = list(args[:3]) + [kwargs.get(n) for n in names[len(args[:3]):]]
            if any(t is None for t in qkv):
                raise ValueError(f"{name}: called without query, key and value")
            q, k, v = mha_qkv(m, *qkv, name=name or "MultiheadAttention")
            self.layers.append((name, q.detach(), k.detach(), v.detach()))
            kpm = kwargs.get("key_padding_mask", args[3] if len(args) > 3 else None)
            am = kwargs.get("attn_mask", args[5] if len(args) > 5 else None)
            if am is not None or kwargs.get("is_causal"):
                warnings.warn(f"{name or 'MultiheadAttention'}: attn_mask/is_causal is not exported; "
                              "sprintsim scores every (query, key) pair (docs/qkv.md)")
            if kpm is not None and self.key_padding_mask is None:
                self.key_padding_mask = kpm.detach()
            return orig(*args, **kwargs)

        m.forward = forward
        self._undo.append(lambda: m.__dict__.pop("forward", None))

    def _hook_proj(self, name, m):
        heads = _heads_of(m)
        projs = _projections(m)
        pending = {}

        def pre(mod, args):
            pending.clear()

        def grab(i):
            def hook(mod, args, out):
                pending[i] = _as_bld(out, m)
            return hook

        def post(mod, args, out):
            if len(pending) != 3:
                raise ValueError(f"{name}: the q/k/v projections did not all run in its forward")
            q, k, v = (_split_heads(pending[i], heads, name) for i in range(3))
            if q.shape != k.shape or q.shape != v.shape:
                raise ValueError(f"{name}: Q {tuple(q.shape)}, K {tuple(k.shape)}, V {tuple(v.shape)} "
                                 "differ (cross-attention or grouped keys are not supported)")
            self.layers.append((name, q.detach(), k.detach(), v.detach()))

        hs = [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
        hs += [p.register_forward_hook(grab(i)) for i, p in enumerate(projs)]
        self._undo += [h.remove for h in hs]

    def close(self):
        for u in self._undo:
            u()


def capture_qkv(model, inputs, modules=None):
    """Run model on inputs; return ([(name, Q, K, V)], key_padding_mask or None)."""
    _need_torch()
    mods = find_attention(model) if modules is None else modules
    if not mods:
        raise ValueError("no attention module found: nn.MultiheadAttention, or a module with "
                         "q_proj/k_proj/v_proj or query/key/value Linear layers and num_heads")
    cap = _Capture(mods)
    try:
        with torch.enable_grad():
            if isinstance(inputs, dict):
                model(**inputs)
            elif isinstance(inputs, (tuple, list)):
                model(*inputs)
            else:
                model(inputs)
    finally:
        cap.close()
    if not cap.layers:
        raise ValueError("no attention module ran during the forward pass (a fused fast path?)")
    return cap.layers, cap.key_padding_mask


def export_qkv(model, inputs, path, mask=None, dtype="float32", modules=None):
    """Write the Q, K, V of every attention call of model(inputs) to path.

    mask: (batch, N) array or tensor, 1 = real token, 0 = padding (or None).
    dtype: "float32" or "float64".  modules: list of (name, module, kind)
    to use instead of find_attention(model).  Returns a dict with layers,
    heads, seq_len, head_dim, batch and the layer names.  Raises ValueError
    on shapes the format cannot hold, non-finite values or a bad mask."""
    _need_torch()
    import h5py
    import numpy as np

    layers, kpm = capture_qkv(model, inputs, modules)
    shape = tuple(layers[0][1].shape)
    for name, q, k, v in layers:
        for t, x in zip("QKV", (q, k, v)):
            if tuple(x.shape) != shape:
                raise ValueError(f"{name}: {t} has shape {tuple(x.shape)} but the first layer's Q has "
                                 f"{shape}; every layer needs one (batch, heads, N, d)")
            # finite as written: a float64 value beyond float32's range
            # would become inf in a float32 file
            xs = x.to(torch.float64 if dtype == "float64" else torch.float32)
            bad = (~torch.isfinite(xs)).nonzero()
            if len(bad):
                raise ValueError(f"{name}: {t} element {tuple(bad[0].tolist())} is not finite "
                                 f"as {dtype}")
    batch, heads, n, d = shape
    # the simulator's limits (docs/qkv.md): refuse here what it would refuse
    for what, val, lo, hi in (("layers", len(layers), 1, 64), ("heads", heads, 1, 64),
                              ("N (tokens)", n, 2, 16384), ("d (head dimension)", d, 1, 1024),
                              ("batch", batch, 1, 1 << 20)):
        if not lo <= val <= hi:
            raise ValueError(f"{what} = {val} is outside sprintsim's [{lo}, {hi}]")
    if mask is None and kpm is not None:
        kpm = kpm.detach().cpu()
        mask = (~kpm) if kpm.dtype == torch.bool else (kpm == 0)
        if mask.dim() == 1:
            mask = mask.unsqueeze(0)
    if mask is not None:
        m = mask.detach().cpu().numpy() if torch.is_tensor(mask) else np.asarray(mask)
        if m.dtype == bool:
            m = m.astype(np.uint8)
        if m.shape != (batch, n):
            raise ValueError(f"mask has shape {m.shape}, expected (batch, N) = {(batch, n)}")
        if not np.isin(m, (0, 1)).all():
            raise ValueError("mask holds values other than 0 and 1")
        empty = np.nonzero(m.sum(axis=1) == 0)[0]
        if len(empty):
            raise ValueError(f"mask: item {empty[0]} is all padding")
        mask = m.astype(np.uint8)
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype {dtype!r}: float32 or float64")
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp.", dir=folder)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # a plain file's mode (mkstemp makes 0600)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["version"] = np.int32(VERSION)
            for l, (name, q, k, v) in enumerate(layers):
                g = f.create_group(f"layer_{l}")
                g.attrs["module"] = name
                for t, x in zip("QKV", (q, k, v)):
                    g.create_dataset(t, data=x.to(torch.float64).cpu().numpy().astype(dtype))
            if mask is not None:
                f.create_dataset("mask", data=mask)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return {"layers": len(layers), "heads": heads, "seq_len": n, "head_dim": d, "batch": batch,
            "names": [x[0] for x in layers]}


# --- demo models -------------------------------------------------------------

def _demo_models():
    nn = torch.nn

    class ProjAttention(nn.Module):
        """Self-attention with query/key/value Linear layers (HF BERT style)."""

        def __init__(self, embed, heads):
            super().__init__()
            self.num_attention_heads = heads
            self.query = nn.Linear(embed, embed)
            self.key = nn.Linear(embed, embed)
            self.value = nn.Linear(embed, embed)
            self.out = nn.Linear(embed, embed)

        def forward(self, x, pad=None):
            b, n, e = x.shape
            h = self.num_attention_heads
            q, k, v = (p(x).reshape(b, n, h, e // h).transpose(1, 2)
                       for p in (self.query, self.key, self.value))
            s = q @ k.transpose(-1, -2) / (e // h) ** 0.5
            if pad is not None:
                s = s.masked_fill(pad[:, None, None, :], float("-inf"))
            self.probs = s.softmax(-1)
            return x + self.out((self.probs @ v).transpose(1, 2).reshape(b, n, e))

    class ProjModel(nn.Module):
        def __init__(self, layers, embed, heads):
            super().__init__()
            self.blocks = nn.ModuleList(ProjAttention(embed, heads) for _ in range(layers))

        def forward(self, x, pad=None):
            for blk in self.blocks:
                x = blk(x, pad)
            return x

    class MhaModel(nn.Module):
        def __init__(self, layers, embed, heads):
            super().__init__()
            layer = nn.TransformerEncoderLayer(embed, heads, dim_feedforward=2 * embed,
                                               dropout=0.0, batch_first=True)
            self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False) \
                if "enable_nested_tensor" in nn.TransformerEncoder.__init__.__code__.co_varnames \
                else nn.TransformerEncoder(layer, layers)

        def forward(self, x, pad=None):
            return self.enc(x, src_key_padding_mask=pad)

    return MhaModel, ProjModel


def demo(kind, layers=2, heads=4, embed=64, batch=1, seq=32, pad=0, seed=1):
    """(model, inputs, mask) of a random demo model; item b has b * pad padding tokens at the end."""
    _need_torch()
    torch.manual_seed(seed)
    MhaModel, ProjModel = _demo_models()
    model = (MhaModel if kind == "mha" else ProjModel)(layers, embed, heads).eval()
    x = torch.randn(batch, seq, embed)
    real = torch.ones(batch, seq, dtype=torch.bool)
    for b in range(batch):
        if b * pad:
            real[b, seq - b * pad:] = False
    return model, (x, ~real), real.to(torch.uint8)


def _load_builder(spec):
    path, _, func = spec.rpartition(":")
    if not path or not func:
        raise ValueError(f"--model {spec!r}: expected FILE.py:FUNCTION")
    s = importlib.util.spec_from_file_location("user_model", path)
    if s is None:
        raise ValueError(f"--model: cannot load {path}")
    mod = importlib.util.module_from_spec(s)
    s.loader.exec_module(mod)
    out = getattr(mod, func)()
    return out if len(out) == 3 else (out[0], out[1], None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--demo", choices=("mha", "proj"),
                     help="random demo model: mha (nn.TransformerEncoder) or proj (query/key/value Linear)")
    src.add_argument("--model", metavar="FILE.py:FUNCTION",
                     help="a function returning (model, inputs) or (model, inputs, mask)")
    ap.add_argument("-o", "--output", required=True, metavar="FILE.h5")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--embed", type=int, default=64, help="model width E (head dim = E / heads)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=32, help="tokens N")
    ap.add_argument("--pad", type=int, default=0, help="padding tokens added per batch item (demo)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--float64", action="store_true", help="write float64 (default float32)")
    args = ap.parse_args(argv)
    if torch is None:
        print("export_qkv.py: PyTorch is not importable by this Python "
              f"({sys.executable}); install it (Debian: apt-get install python3-torch) "
              "or run /usr/bin/python3", file=sys.stderr)
        return 2
    try:
        import h5py  # noqa: F401
        import numpy  # noqa: F401
    except ImportError as e:
        print(f"export_qkv.py: {e}; install python3-h5py and python3-numpy", file=sys.stderr)
        return 2
    try:
        if args.demo:
            model, inputs, mask = demo(args.demo, args.layers, args.heads, args.embed, args.batch,
                                       args.seq, args.pad, args.seed)
        else:
            model, inputs, mask = _load_builder(args.model)
        info = export_qkv(model, inputs, args.output, mask=mask,
                          dtype="float64" if args.float64 else "float32")
    except (ValueError, OSError, ImportError, AttributeError, TypeError) as e:
        print(f"export_qkv.py: {e}", file=sys.stderr)
        return 1
    print(f"export_qkv: {args.output}: {info['layers']} layers x {info['heads']} heads, "
          f"N = {info['seq_len']}, d = {info['head_dim']}, batch {info['batch']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
