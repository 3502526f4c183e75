#!/usr/bin/env python3
"""check_export_qkv.py - scripts/export_qkv.py against torch's own attention.

Usage: check_export_qkv.py SRCDIR SPRINTSIM SCRATCH_DIR   (run by test_export_qkv.sh)

For tiny models (nn.MultiheadAttention batch_first and not, with separate
q/k/v weights; modules with query/key/value and q_proj/k_proj/v_proj Linear
layers) the exported Q, K, V are checked against independent computations:
softmax(Q K^T / sqrt(d)) with the padding masked equals the attention
probabilities torch returns, and the heads' probabilities times V through
the output projection give torch's attention output.  Then sprintsim runs
on the files.  Prints one line per check; exit 1 on the first failure.
"""
import os
import subprocess
import sys

import h5py
import numpy as np
import torch

SRC, EXE, TMP = sys.argv[1:4]
sys.path.insert(0, os.path.join(SRC, "scripts"))
import export_qkv  # noqa: E402

torch.manual_seed(2385)
ATOL = 2e-5


def check(cond, what):
    if not cond:
        print(f"FAILED - {what}")
        sys.exit(1)
    print(f"ok - {what}")


def read(path):
    with h5py.File(path, "r") as f:
        check(f.attrs["format"] in ("sprintsim-qkv", b"sprintsim-qkv") and f.attrs["version"] == 1,
              f"{os.path.basename(path)}: format and version attributes")
        layers = []
        while f"layer_{len(layers)}" in f:
            g = f[f"layer_{len(layers)}"]
            layers.append(tuple(torch.from_numpy(g[t][()]).double() for t in "QKV"))
        mask = f["mask"][()] if "mask" in f else None
    return layers, mask


def probs(Q, K, pad):
    """softmax(Q K^T / sqrt(d)) with padded keys masked: (B, H, N, N)."""
    s = Q @ K.transpose(-1, -2) / Q.shape[-1] ** 0.5
    if pad is not None:
        s = s.masked_fill(torch.as_tensor(pad)[:, None, None, :], float("-inf"))
    return s.softmax(-1)


def run_sim(path, item, tokens, what):
    ini = os.path.join(TMP, "run.ini")
    with open(ini, "w") as f:
        f.write(f"[workload]\nsource = qkv\nqkv_file = {path}\nqkv_item = {item}\n")
    out = os.path.join(TMP, "run.h5")
    r = subprocess.run([EXE, "run", ini, "-o", out, "--threads", "1"], capture_output=True, text=True)
    if r.returncode:
        print(r.stdout, r.stderr)
    check(r.returncode == 0, f"{what}: sprintsim run accepts the file")
    with h5py.File(out, "r") as t:
        check(int(t["summary"].attrs["seq_len"]) == tokens, f"{what}: trace seq_len = {tokens} real tokens")
        qf = t["config/workload/qkv_file"][()].decode()
        check(os.path.samefile(qf, path), f"{what}: trace records the file ({qf})")


# --- nn.MultiheadAttention, batch_first, with padding ----------------------

class MhaStack(torch.nn.Module):
    def __init__(self, layers, e, h, batch_first=True, kdim=None):
        super().__init__()
        self.att = torch.nn.ModuleList(
            torch.nn.MultiheadAttention(e, h, batch_first=batch_first, kdim=kdim, vdim=kdim)
            for _ in range(layers))
        self.batch_first = batch_first
        self.kdim = kdim
        self.seen = []

    def forward(self, x, kv=None, pad=None):
        self.seen = []
        for a in self.att:
            inp = x
            key = kv if kv is not None else x
            y, w = a(inp, key, key, key_padding_mask=pad, need_weights=True, average_attn_weights=False)
            self.seen.append((inp, y, w))
            x = x + y
        return x


B, N, E, H = 2, 9, 16, 4
m = MhaStack(2, E, H).eval()
x = torch.randn(B, N, E)
pad = torch.zeros(B, N, dtype=torch.bool)
pad[1, 6:] = True  # item 1: 6 real tokens
p1 = os.path.join(TMP, "mha.h5")
info = export_qkv.export_qkv(m, (x, None, pad), p1)
check(info["layers"] == 2 and info["heads"] == H and info["seq_len"] == N and info["head_dim"] == E // H,
      "MHA batch_first: 2 layers x 4 heads, N 9, d 4")
layers, mask = read(p1)
check(mask is not None and (mask == (~pad).numpy()).all(), "MHA: /mask from key_padding_mask")
for l, (Q, K, V) in enumerate(layers):
    inp, y, w = m.seen[l]
    P = probs(Q, K, pad.numpy())
    check(torch.allclose(P, w.double(), atol=ATOL), f"MHA layer {l}: softmax(QK^T/sqrt d) = torch's weights")
    o = (w.double() @ V).transpose(1, 2).reshape(B, N, E)
    o = o @ m.att[l].out_proj.weight.double().T + m.att[l].out_proj.bias.double()
    check(torch.allclose(o, y.double(), atol=ATOL), f"MHA layer {l}: weights x V through out_proj = torch's output")
run_sim(p1, 1, 6, "MHA")

# --- nn.MultiheadAttention, sequence first, separate q/k/v weights ---------
m2 = MhaStack(1, E, H, batch_first=False, kdim=12).eval()
xs = torch.randn(N, B, E)
kv = torch.randn(N, B, 12)
p2 = os.path.join(TMP, "mha-sep.h5")
export_qkv.export_qkv(m2, (xs, kv), p2, mask=np.ones((B, N), dtype=np.uint8), dtype="float64")
layers, mask = read(p2)
Q, K, V = layers[0]
inp, y, w = m2.seen[0]
check(Q.shape == (B, H, N, E // H), "MHA seq-first: (batch, heads, N, d) layout")
check(torch.allclose(probs(Q, K, None), w.double(), atol=ATOL), "MHA seq-first, kdim 12: weights match")
o = (w.double() @ V).transpose(1, 2).reshape(B, N, E)
o = o @ m2.att[0].out_proj.weight.double().T + m2.att[0].out_proj.bias.double()
check(torch.allclose(o, y.transpose(0, 1).double(), atol=ATOL), "MHA seq-first: output matches")
with h5py.File(p2, "r") as f:
    check(f["layer_0/Q"].dtype == np.float64, "dtype float64 written")
run_sim(p2, 0, N, "MHA seq-first")


# --- modules with projection Linear layers -------------------------------

class Proj(torch.nn.Module):
    def __init__(self, e, h, names):
        super().__init__()
        self.names = names
        if names[0] == "query":
            self.num_attention_heads = h
        else:
            self.num_heads = h
        for n in names:
            setattr(self, n, torch.nn.Linear(e, e))

    def forward(self, x):
        b, n, e = x.shape
        h = getattr(self, "num_attention_heads", None) or self.num_heads
        q, k, v = (getattr(self, nm)(x).reshape(b, n, h, e // h).transpose(1, 2) for nm in self.names)
        self.direct = (q, k, v)
        self.p = (q @ k.transpose(-1, -2) / (e // h) ** 0.5).softmax(-1)
        return x + (self.p @ v).transpose(1, 2).reshape(b, n, e)


class ProjModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = Proj(E, H, ("query", "key", "value"))
        self.b = Proj(E, H, ("q_proj", "k_proj", "v_proj"))

    def forward(self, x):
        return self.b(self.a(x))


pm = ProjModel().eval()
xp = torch.randn(B, N, E)
p3 = os.path.join(TMP, "proj.h5")
msk = np.ones((B, N), dtype=np.uint8)
msk[0, :2] = 0  # item 0: the first 2 tokens are padding (left padding)
info = export_qkv.export_qkv(pm, xp, p3, mask=msk)
check(info["names"] == ["a", "b"], "projection modules found in call order (query/key/value, q_proj/...)")
layers, mask = read(p3)
check((mask == msk).all(), "explicit mask written")
for l, mod in enumerate((pm.a, pm.b)):
    Q, K, V = layers[l]
    q, k, v = (t.double() for t in mod.direct)
    check(torch.allclose(Q, q, atol=1e-6) and torch.allclose(K, k, atol=1e-6) and torch.allclose(V, v, atol=1e-6),
          f"proj layer {l}: Q, K, V equal the module's own projections")
    check(torch.allclose(probs(Q, K, None), mod.p.double(), atol=ATOL), f"proj layer {l}: weights match")
run_sim(p3, 0, N - 2, "proj")

# --- errors -----------------------------------------------------------------
bad = torch.nn.MultiheadAttention(E, H, add_bias_kv=True, batch_first=True)
try:
    export_qkv.export_qkv(bad, (x, x, x), os.path.join(TMP, "bad.h5"))
    check(False, "add_bias_kv refused")
except ValueError as e:
    check("add_bias_kv" in str(e), f"add_bias_kv refused ({e})")
check(not os.path.exists(os.path.join(TMP, "bad.h5")), "nothing written on error")
try:
    export_qkv.export_qkv(pm, xp, os.path.join(TMP, "bad.h5"), mask=np.zeros((B, N)))
    check(False, "all-padding mask refused")
except ValueError as e:
    check("all padding" in str(e), f"all-padding mask refused ({e})")
try:
    export_qkv.export_qkv(torch.nn.Linear(3, 3), torch.randn(2, 3), os.path.join(TMP, "bad.h5"))
    check(False, "model without attention refused")
except ValueError as e:
    check("no attention module" in str(e), "model without attention refused")
print("all export checks passed")
