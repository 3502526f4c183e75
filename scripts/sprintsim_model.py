"""The small pre-norm transformers of sprintsim in PyTorch, their file
format (docs/models.md) and the attention rules that the training and the
C forward pass share.

One class, Transformer, covers both model kinds of docs/models.md:

  input "image"  a class-token encoder (the ViT on Fashion-MNIST): the
                 side x side image is cut into patch x patch patches
                 (raster order, the pixels of a patch in raster order),
                 pixels x / 255 normalised by (x - norm_mean) / norm_std;
                 x_0 = [cls; patches embed_w^T + embed_b] + pos; the head
                 reads LN(x[0]) into `classes` logits.
  input "text"   a causal decoder over byte-valued tokens (a character
                 language model): x_0 = tok_emb[t] + pos; the head reads
                 LN(x[i]) into next-token logits at every position i.

Each layer: h = LN1(x); [Q | K | V] = h qkv_w^T + qkv_b (head j: columns
j d .. j d + d - 1 of each); O_j = attention; x += [O_0 .. O_{H-1}]
proj_w^T + proj_b; x += fc2(GELU(fc1(LN2(x)))), GELU with erf.

Attention of one head, scaled score s_ij = q_i . k_j / sqrt(d), over the
allowed pairs (every pair; j <= i when causal):
  exact   p_i = softmax_j(s_ij)
  soft    m_ij = sigmoid((s_ij - theta_l) / T)  (Learned Token Pruning's
          soft mask, on SPRINT's pre-softmax score), p_ij = m_ij e^{s_ij} /
          sum_j m_ij e^{s_ij}
  hard    m_ij = [s_ij >= theta_l], the same normalisation; a query with
          no survivor gets the output 0 (the C digital path does the same)
arith="c" (forward only) runs the C forward pass's arithmetic
(workloads/spr_model.c) instead of PyTorch's own: pixels normalised and
LayerNorm statistics and affine computed in double, GELU in double, each
residual added as (x + bias) + o W^T (the C pass adds the bias into x and
lets the GEMM accumulate), the GEMMs those of the same OpenBLAS.  With the
attention computed by the C library (sprintsim.torch) and one item per
call (the C pass runs one item at a time, and OpenBLAS may sum a product
of many rows otherwise than one of a few) its activations, masks and
logits are then those of the C evaluator bit for bit.

With quant (SPRINT's scoring, sim/spr_attend.h), the soft and hard masks
use the scores the comparators see instead of s: per head and sequence
q_int = round(q / s_q) with s_q = max|q| / 7 (4 bits), k8 = round(k / s_k)
with s_k = max|k| / 127 (8 bits), k_msb = floor(k8 / 16) (the 4 MSBs),
u_ij = q_int . k_msb; the threshold theta_l is converted to score units
theta_l sqrt(d) / (s_q s_k 16) and rounded to the 5-bit generator grid
c range / 16, c in -16 .. 15, range = max |u| of the layer (all heads, the
allowed pairs) -- the rule of spr_attend_thresholds in mode learned.  In
the soft mask the quantised score and threshold enter as real values
(u s_q s_k 16 / sqrt(d)), with straight-through gradients.
"""
import math
import os
import sys

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.stderr.write("%s: PyTorch is not installed (Debian: apt-get install python3-torch); "
                     "it is needed only to train or evaluate models in Python\n"
                     % os.path.basename(sys.argv[0] or "sprintsim_model"))
    sys.exit(2)
import numpy as np

FORMAT = "sprintsim-model"
VERSION = 1
LN_EPS = 1e-5
# SPRINT's scoring widths (docs/model.md): 4-bit queries, 8-bit keys of
# which the 4 MSBs are programmed, a 5-bit threshold generator
Q_BITS, K_BITS, K_MSB_BITS, THR_BITS = 4, 8, 4, 5


def patches(x, p):
    """(B, side, side) -> (B, (side/p)^2, p*p), raster order of patches and pixels."""
    b, h, w = x.shape
    x = x.reshape(b, h // p, p, w // p, p).permute(0, 1, 3, 2, 4)
    return x.reshape(b, (h // p) * (w // p), p * p)


def _ste(x_float, x_quant):
    """x_quant in the forward pass, the gradient of x_float in the backward."""
    return x_float + (x_quant - x_float).detach()


def sprint_scores(q, k, causal, theta):
    """SPRINT's view of one layer (q, k: B x H x N x d float).  Returns the
    integer scores u (B, H, N, N), the threshold level in score units per
    (B, H) and the factor f (B, H) with real score = u f (so u f is on the
    scale of q.k / sqrt(d))."""
    d = q.shape[-1]
    qmax = (1 << (Q_BITS - 1)) - 1
    kmax = (1 << (K_BITS - 1)) - 1
    sq = q.detach().abs().amax(dim=(-1, -2)).clamp_min(1e-30) / qmax  # B, H
    sk = k.detach().abs().amax(dim=(-1, -2)).clamp_min(1e-30) / kmax
    qi = torch.round(q.detach() / sq[..., None, None]).clamp(-qmax, qmax)
    k8 = torch.round(k.detach() / sk[..., None, None]).clamp(-kmax, kmax)
    kw = float(1 << (K_BITS - K_MSB_BITS))
    kmsb = torch.floor(k8 / kw)
    u = qi @ kmsb.transpose(-1, -2)  # exact small integers in float32
    n = q.shape[-2]
    if causal:
        allowed = torch.ones(n, n, dtype=torch.bool, device=q.device).tril()
        rng = u.abs().masked_fill(~allowed, 0).amax(dim=(-1, -2))
    else:
        rng = u.abs().amax(dim=(-1, -2))
    rng = rng.amax(dim=1, keepdim=True).clamp_min(1.0).expand_as(sq)  # the layer's range
    half = 1 << (THR_BITS - 1)
    f = sq * sk * kw / math.sqrt(d)
    theta_units = theta.detach() / f
    code = torch.round(theta_units * half / rng).clamp(-half, half - 1)
    level = code * rng / half
    return u, level, f


def layer_norm_c(x, ln):
    """LayerNorm as the C pass computes it: mean, variance and the affine
    map in double, rounded to float32 once."""
    xd = x.double()
    mu = xd.mean(-1, keepdim=True)
    var = ((xd - mu) ** 2).mean(-1, keepdim=True)
    inv = 1.0 / torch.sqrt(var + ln.eps)
    return ((xd - mu) * inv * ln.weight.double() + ln.bias.double()).float()


def gelu_c(f):
    """GELU with erf in double, as the C pass."""
    u = f.double()
    return (0.5 * u * (1.0 + torch.erf(u / math.sqrt(2.0)))).float()


def residual_c(x, o, lin):
    """x + lin(o) as the C pass adds it: (x + bias) + o W^T, the GEMM
    accumulating into x + bias."""
    shape = x.shape
    y = torch.addmm((x + lin.bias).reshape(-1, shape[-1]), o.reshape(-1, o.shape[-1]),
                    lin.weight.t())
    return y.reshape(shape)


class Block(nn.Module):
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.heads, self.hd = heads, dim // heads
        self.ln1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)
        # learned threshold on q.k / sqrt(d); nan = none (a dense model)
        self.theta = nn.Parameter(torch.tensor(float("nan")))

    def attend(self, x, mode, causal, temperature, quant):
        b, n, dim = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # B, H, N, d
        s = q @ k.transpose(-1, -2) / math.sqrt(self.hd)
        allowed = torch.ones(n, n, dtype=torch.bool, device=x.device).tril() if causal else None
        kept = None
        if mode == "exact":
            if causal:
                s = s.masked_fill(~allowed, float("-inf"))
            p = s.softmax(-1)
        else:
            if quant:
                u, level, f = sprint_scores(q, k, causal, self.theta)
                if mode == "soft":
                    # the comparator's score and threshold as real values,
                    # gradients straight through to s and theta
                    sd = _ste(s, u * f[..., None, None])
                    th = _ste(self.theta.expand_as(f), level * f)[..., None, None]
                    m = torch.sigmoid((sd - th) / temperature)
                else:  # hard: compare in score units, as the comparator does
                    m = (u >= level[..., None, None]).to(s.dtype)
            elif mode == "soft":
                m = torch.sigmoid((s - self.theta) / temperature)
            else:  # hard
                m = (s >= self.theta).to(s.dtype)
            if causal:
                m = m * allowed.to(s.dtype)
                s = s.masked_fill(~allowed, float("-inf"))
                npairs = n * (n + 1) / 2
            else:
                npairs = n * n
            e = torch.exp(s - s.amax(-1, keepdim=True)) * m
            p = e / e.sum(-1, keepdim=True).clamp_min(1e-30)
            kept = m.sum(dim=(-1, -2)).mean() / npairs  # kept share of the allowed pairs
        o = (p @ v).transpose(1, 2).reshape(b, n, dim)
        return o, kept  # the heads' outputs side by side, before proj

    def forward(self, x, mode="exact", causal=False, temperature=1.0, quant=False,
                arith="torch"):
        if arith == "c":
            o, kept = self.attend(layer_norm_c(x, self.ln1), mode, causal, temperature, quant)
            x = residual_c(x, o, self.proj)
            return residual_c(x, gelu_c(self.fc1(layer_norm_c(x, self.ln2))), self.fc2), kept
        o, kept = self.attend(self.ln1(x), mode, causal, temperature, quant)
        x = x + self.proj(o)
        x = x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
        return x, kept


class Transformer(nn.Module):
    """input "image": side, patch, classes, norm_mean, norm_std;
    input "text": vocab (list of byte values), context."""

    def __init__(self, input, dim, depth, heads, mlp, *, side=28, patch=2, classes=10,
                 norm_mean=0.0, norm_std=1.0, vocab=None, context=512):
        super().__init__()
        if dim % heads:
            raise ValueError(f"heads {heads} does not divide dim {dim}")
        self.input, self.dim, self.depth, self.heads, self.mlp = input, dim, depth, heads, mlp
        if input == "image":
            self.side, self.patch, self.classes = side, patch, classes
            self.norm_mean, self.norm_std = norm_mean, norm_std
            self.tokens = (side // patch) ** 2 + 1
            self.causal = False
            self.embed = nn.Linear(patch * patch, dim)
            self.cls = nn.Parameter(torch.zeros(dim))
            out = classes
        elif input == "text":
            self.vocab = list(vocab)
            self.tokens = context
            self.causal = True
            self.tok_emb = nn.Embedding(len(self.vocab), dim)
            nn.init.normal_(self.tok_emb.weight, std=0.02)
            out = len(self.vocab)
        else:
            raise ValueError(f"input {input!r}")
        self.pos = nn.Parameter(torch.randn(self.tokens, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp) for _ in range(depth))
        self.ln = nn.LayerNorm(dim, eps=LN_EPS)
        self.head = nn.Linear(dim, out)

    def has_thresholds(self):
        return all(math.isfinite(float(b.theta)) for b in self.blocks)

    def embed_input(self, x, arith="torch"):
        if self.input == "image":
            if arith == "c":  # in double, rounded once
                img = ((x.double() / 255.0 - self.norm_mean) / self.norm_std).float()
            else:
                img = (x.to(torch.float32) / 255.0 - self.norm_mean) / self.norm_std
            t = self.embed(patches(img, self.patch))
            t = torch.cat([self.cls.expand(t.shape[0], 1, -1), t], 1)
            return t + self.pos
        n = x.shape[1]
        return self.tok_emb(x) + self.pos[:n]

    def forward(self, x, mode="exact", temperature=1.0, quant=False, arith="torch"):
        """x: (B, side, side) uint8 images or (B, n) token ids.  Returns the
        logits ((B, classes) or (B, n, vocab)) and the kept share of each
        layer (None in mode exact).  arith: "torch", or "c" for the C
        pass's arithmetic (above; for inference)."""
        if arith not in ("torch", "c"):
            raise ValueError(f"arith {arith!r}: 'torch' or 'c'")
        t = self.embed_input(x, arith)
        kept = []
        for blk in self.blocks:
            t, k = blk(t, mode, self.causal, temperature, quant, arith)
            kept.append(k)
        if self.input == "image":
            t = t[:, :1]  # the head reads the class token alone
        h = layer_norm_c(t, self.ln) if arith == "c" else self.ln(t)
        return self.head(h[:, 0] if self.input == "image" else h), kept


# ---- the file format (docs/models.md) ------------------------------------

LAYER = [("ln1_w", "ln1.weight"), ("ln1_b", "ln1.bias"), ("qkv_w", "qkv.weight"),
         ("qkv_b", "qkv.bias"), ("proj_w", "proj.weight"), ("proj_b", "proj.bias"),
         ("ln2_w", "ln2.weight"), ("ln2_b", "ln2.bias"), ("fc1_w", "fc1.weight"),
         ("fc1_b", "fc1.bias"), ("fc2_w", "fc2.weight"), ("fc2_b", "fc2.bias")]
TOP_IMAGE = [("embed_w", "embed.weight"), ("embed_b", "embed.bias"), ("cls", "cls")]
TOP_TEXT = [("tok_emb", "tok_emb.weight")]
TOP = [("pos", "pos"), ("ln_w", "ln.weight"), ("ln_b", "ln.bias"), ("head_w", "head.weight"),
       ("head_b", "head.bias")]


def _h5py():
    try:
        import h5py
    except ImportError:
        sys.stderr.write("h5py is not installed (Debian: apt-get install python3-h5py)\n")
        sys.exit(2)
    return h5py


def save_model(path, model, train_attrs, eval_data, eval_attrs, reference=""):
    """Write model (docs/models.md) to path through a temporary renamed
    when complete.  train_attrs: the /train record; eval_data: datasets of
    /eval; eval_attrs: its attributes; reference: file name of the dense
    reference model, relative to path's folder ("" for a dense model)."""
    h5py = _h5py()
    tmp = path + ".tmp"
    try:
        with h5py.File(tmp, "w") as f:
            _write(f, model, train_attrs, eval_data, eval_attrs, reference)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)  # never leave a partial file behind
        raise


def _write(f, model, train_attrs, eval_data, eval_attrs, reference):
    sd = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    a = f.attrs
    a["format"] = FORMAT
    a["version"] = VERSION
    a["input"] = model.input
    a["causal"] = int(model.causal)
    for k in ("dim", "depth", "heads", "mlp", "tokens"):
        a[k] = int(getattr(model, k))
    a["ln_eps"] = LN_EPS
    a["reference"] = reference
    if model.input == "image":
        for k in ("side", "patch", "classes"):
            a[k] = int(getattr(model, k))
        a["norm_mean"] = float(model.norm_mean)
        a["norm_std"] = float(model.norm_std)
        top = TOP_IMAGE + TOP
    else:
        a["vocab"] = len(model.vocab)
        f["vocab_bytes"] = np.array(model.vocab, dtype=np.uint8)
        top = TOP_TEXT + TOP
    for name, key in top:
        f[name] = sd[key]
    for i in range(model.depth):
        g = f.create_group(f"layer_{i}")
        for name, key in LAYER:
            g[name] = sd[f"blocks.{i}.{key}"]
    if model.has_thresholds():
        f["theta"] = np.array([float(b.theta) for b in model.blocks], dtype=np.float64)
    t = f.create_group("train")
    for k, v in train_attrs.items():
        t.attrs[k] = v
    e = f.create_group("eval")
    for k, v in eval_data.items():
        e[k] = v
    for k, v in eval_attrs.items():
        e.attrs[k] = v


def _str(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def load_model(path):
    """The Transformer of a file written by save_model (thresholds included)."""
    h5py = _h5py()
    with h5py.File(path, "r") as f:
        a = f.attrs
        if _str(a["format"]) != FORMAT:
            raise ValueError(f"{path}: format {a['format']!r}, expected {FORMAT!r}")
        inp = _str(a["input"])
        kw = dict(dim=int(a["dim"]), depth=int(a["depth"]), heads=int(a["heads"]),
                  mlp=int(a["mlp"]))
        if inp == "image":
            m = Transformer("image", side=int(a["side"]), patch=int(a["patch"]),
                            classes=int(a["classes"]), norm_mean=float(a["norm_mean"]),
                            norm_std=float(a["norm_std"]), **kw)
            top = TOP_IMAGE + TOP
        else:
            m = Transformer("text", vocab=[int(x) for x in f["vocab_bytes"][()]],
                            context=int(a["tokens"]), **kw)
            top = TOP_TEXT + TOP
        sd = {}
        for name, key in top:
            sd[key] = torch.from_numpy(f[name][()])
        theta = f["theta"][()] if "theta" in f else None
        for i in range(m.depth):
            for name, key in LAYER:
                sd[f"blocks.{i}.{key}"] = torch.from_numpy(f[f"layer_{i}/{name}"][()])
            sd[f"blocks.{i}.theta"] = torch.tensor(float(theta[i]) if theta is not None
                                                   else float("nan"))
        m.load_state_dict(sd)
    return m
