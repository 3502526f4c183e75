#!/usr/bin/env python3
"""Train the small Vision Transformer of sprintsim on Fashion-MNIST, then
fine-tune one attention threshold per layer with the pruning in the loop,
and write weights, thresholds and the recorded test accuracy to HDF5.

    /usr/bin/python3 scripts/train_vit.py [-o models/vit-fmnist.h5]
        [--data /usr/share/datasets/fashion-mnist] [--epochs 3]
        [--prune-epochs 1] [--train-subset 60000] [--prune-subset 8000]
        [--threads 2] [--seed 1]

Needs PyTorch (Debian: python3-torch), numpy and h5py (python3-h5py).
PyTorch is an optional dependency of sprintsim: without it this script
says so and exits with status 2.  The model, the file layout and the
pruning rule are documented in docs/vit.md; the C inference
(workloads/spr_vit.c) reads the file this script writes.

Model (pre-norm ViT): 2x2 patches of the 28x28 image (196 tokens, raster
order, the 4 pixels of a patch in raster order) plus a class token: 197
tokens, the length of ViT-Base.  Pixels are x/255 normalised by
(x - mean) / std.  Each layer: x += proj(attn(LN1(x))); x += fc2(GELU(
fc1(LN2(x)))), GELU with erf; the head reads LN(x[cls]).

Pruning in the loop (as SPRINT and LeOPArd learn thresholds): layer l has
a threshold theta_l on the scaled score s = q.k / sqrt(d).  A key j
survives for query i when s_ij >= theta_l; the softmax runs over the
survivors only.  During fine-tuning the mask is soft,
m = sigmoid((s - theta_l) / tau), p_ij = m_ij e^{s_ij} / sum_j m_ij e^{s_ij},
and the loss adds lam * mean(m), the kept fraction, so that training
trades accuracy for sparsity and learns theta_l.  Only the thresholds
learn in that phase: the weights, and so the accuracy with exact
attention, are those of the dense training.
"""
import argparse
import gzip
import math
import os
import struct
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.stderr.write("train_vit.py: PyTorch is not installed (Debian: apt-get install "
                     "python3-torch); it is needed only to retrain the model\n")
    sys.exit(2)
import numpy as np
import h5py

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST training-set pixel mean and std (x/255)
LN_EPS = 1e-5


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data_dir, split):
    pre = "train" if split == "train" else "t10k"
    x = read_idx(os.path.join(data_dir, f"{pre}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(data_dir, f"{pre}-labels-idx1-ubyte.gz"))
    x = (torch.from_numpy(x.astype(np.float32)) / 255.0 - MEAN) / STD
    return x, torch.from_numpy(y.astype(np.int64))


def patches(x, p):
    """(B, 28, 28) -> (B, (28/p)^2, p*p), raster order of patches and pixels."""
    b, h, w = x.shape
    x = x.reshape(b, h // p, p, w // p, p).permute(0, 1, 3, 2, 4)
    return x.reshape(b, (h // p) * (w // p), p * p)


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
        self.theta = nn.Parameter(torch.tensor(-1e4))  # off until fine-tuning

    def attend(self, x, prune, tau):
        b, n, dim = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, H, N, d)
        s = q @ k.transpose(-1, -2) / math.sqrt(self.hd)
        if prune == "off":
            p = s.softmax(-1)
            kept = None
        else:
            if prune == "soft":
                m = torch.sigmoid((s - self.theta) / tau)
            else:  # hard
                m = (s >= self.theta).to(s.dtype)
            e = torch.exp(s - s.amax(-1, keepdim=True)) * m
            p = e / e.sum(-1, keepdim=True).clamp_min(1e-30)
            kept = m.mean()
        o = (p @ v).transpose(1, 2).reshape(b, n, dim)
        return self.proj(o), kept

    def forward(self, x, prune="off", tau=1.0):
        a, kept = self.attend(self.ln1(x), prune, tau)
        x = x + a
        x = x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
        return x, kept


class ViT(nn.Module):
    def __init__(self, patch=2, dim=32, depth=3, heads=2, mlp=64, classes=10):
        super().__init__()
        self.patch, self.dim, self.depth, self.heads, self.mlp = patch, dim, depth, heads, mlp
        n = (28 // patch) ** 2
        self.embed = nn.Linear(patch * patch, dim)
        self.cls = nn.Parameter(torch.zeros(dim))
        self.pos = nn.Parameter(torch.randn(n + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp) for _ in range(depth))
        self.ln = nn.LayerNorm(dim, eps=LN_EPS)
        self.head = nn.Linear(dim, classes)

    def forward(self, img, prune="off", tau=1.0):
        t = self.embed(patches(img, self.patch))
        t = torch.cat([self.cls.expand(t.shape[0], 1, -1), t], 1) + self.pos
        kept = []
        for blk in self.blocks:
            t, k = blk(t, prune, tau)
            kept.append(k)
        return self.head(self.ln(t[:, 0])), kept


def evaluate(model, x, y, prune, bs=500):
    model.eval()
    preds, kept = [], []
    with torch.no_grad():
        for i in range(0, len(x), bs):
            out, k = model(x[i:i + bs], prune)
            preds.append(out.argmax(-1))
            if prune != "off":
                kept.append(torch.stack(k))
    pred = torch.cat(preds)
    acc = (pred == y).float().mean().item()
    kr = torch.stack(kept).mean(0).tolist() if kept else None
    return acc, pred, kr


def train_epochs(model, x, y, epochs, lr, bs, prune, lam, tau, log, params=None):
    opt = torch.optim.AdamW(params if params is not None else model.parameters(), lr=lr,
                            weight_decay=0.05 if params is None else 0.0)
    steps = epochs * ((len(x) + bs - 1) // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=0.1)
    g = torch.Generator().manual_seed(1234 + epochs)
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        t0, tot, n = time.time(), 0.0, 0
        for i in range(0, len(x), bs):
            idx = perm[i:i + bs]
            out, kept = model(x[idx], prune, tau)
            loss = F.cross_entropy(out, y[idx])
            if prune == "soft":
                loss = loss + lam * torch.stack(kept).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(idx)
            n += len(idx)
        log(f"{prune} epoch {ep + 1}/{epochs}: loss {tot / n:.4f} ({time.time() - t0:.0f} s)")


WEIGHTS = [("ln1_w", "ln1.weight"), ("ln1_b", "ln1.bias"), ("qkv_w", "qkv.weight"),
           ("qkv_b", "qkv.bias"), ("proj_w", "proj.weight"), ("proj_b", "proj.bias"),
           ("ln2_w", "ln2.weight"), ("ln2_b", "ln2.bias"), ("fc1_w", "fc1.weight"),
           ("fc1_b", "fc1.bias"), ("fc2_w", "fc2.weight"), ("fc2_b", "fc2.bias")]
TOP = [("embed_w", "embed.weight"), ("embed_b", "embed.bias"), ("cls", "cls"), ("pos", "pos"),
       ("ln_w", "ln.weight"), ("ln_b", "ln.bias"), ("head_w", "head.weight"),
       ("head_b", "head.bias")]


def load_weights(model, path):
    """Weights and thresholds of a file written by save() (for analyses)."""
    sd = {}
    with h5py.File(path, "r") as f:
        for name, key in TOP:
            sd[key] = torch.from_numpy(f[name][()])
        for i in range(model.depth):
            for name, key in WEIGHTS:
                sd[f"blocks.{i}.{key}"] = torch.from_numpy(f[f"layer_{i}/{name}"][()])
            sd[f"blocks.{i}.theta"] = torch.tensor(float(f[f"layer_{i}"].attrs["theta"]))
    model.load_state_dict(sd)


def save(path, model, info, test_y, pred_exact, pred_pruned):
    tmp = path + ".tmp"
    try:
        write_file(tmp, model, info, test_y, pred_exact, pred_pruned)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)  # never leave a partial file behind
        raise


def write_file(tmp, model, info, test_y, pred_exact, pred_pruned):
    sd = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = "sprintsim-vit"
        f.attrs["version"] = 1
        for k, v in info.items():
            f.attrs[k] = v
        for name, key in TOP:
            f[name] = sd[key]
        for i in range(model.depth):
            g = f.create_group(f"layer_{i}")
            p = f"blocks.{i}."
            for name, key in WEIGHTS:
                g[name] = sd[p + key]
            g.attrs["theta"] = float(sd[p + "theta"])
        t = f.create_group("test")
        t["labels"] = test_y.numpy().astype(np.uint8)
        t["pred_exact"] = pred_exact.numpy().astype(np.uint8)
        t["pred_pruned"] = pred_pruned.numpy().astype(np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", default="models/vit-fmnist.h5")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--prune-epochs", type=int, default=1)
    ap.add_argument("--train-subset", type=int, default=60000,
                    help="training images used (the first ones of the training set)")
    ap.add_argument("--prune-subset", type=int, default=8000,
                    help="training images used by the threshold fine-tuning")
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--mlp", type=int, default=64)
    ap.add_argument("--lam", type=float, default=0.1, help="weight of the kept-fraction regulariser")
    ap.add_argument("--tau", type=float, default=0.25, help="temperature of the soft threshold")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    t_start = time.time()

    def log(msg):
        sys.stderr.write(f"[{time.time() - t_start:6.0f} s] {msg}\n")
        sys.stderr.flush()

    for f in ["train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"]:
        if not os.path.exists(os.path.join(a.data, f)):
            sys.stderr.write(f"train_vit.py: {os.path.join(a.data, f)} not found "
                             "(Debian: apt-get install dataset-fashion-mnist)\n")
            sys.exit(1)
    xtr, ytr = load(a.data, "train")
    xte, yte = load(a.data, "test")
    xtr, ytr = xtr[:a.train_subset], ytr[:a.train_subset]
    model = ViT(dim=a.dim, depth=a.depth, heads=a.heads, mlp=a.mlp)
    log(f"{sum(p.numel() for p in model.parameters())} parameters, torch {torch.__version__}")

    train_epochs(model, xtr, ytr, a.epochs, 2e-3, 128, "off", 0.0, 1.0, log)
    acc_dense, _, _ = evaluate(model, xte, yte, "off")
    log(f"dense training done: test top-1 {100 * acc_dense:.2f}%")

    # thresholds start at the 50th percentile of the scaled scores of a batch
    with torch.no_grad():
        t = model.embed(patches(xtr[:256], 2))
        t = torch.cat([model.cls.expand(t.shape[0], 1, -1), t], 1) + model.pos
        for blk in model.blocks:
            h = blk.ln1(t)
            b, n, dim = h.shape
            qkv = blk.qkv(h).reshape(b, n, 3, blk.heads, blk.hd).permute(2, 0, 3, 1, 4)
            s = qkv[0] @ qkv[1].transpose(-1, -2) / math.sqrt(blk.hd)
            blk.theta.fill_(float(s.flatten()[::97].quantile(0.5)))
            t, _ = blk(t)
    # only the thresholds learn: the weights, and so the exact-attention
    # accuracy, stay those of the dense training
    thetas = [b.theta for b in model.blocks]
    for p_ in model.parameters():
        p_.requires_grad_(False)
    for t_ in thetas:
        t_.requires_grad_(True)
    train_epochs(model, xtr[:a.prune_subset], ytr[:a.prune_subset], a.prune_epochs, 2e-2, 128,
                 "soft", a.lam, a.tau, log, params=thetas)

    acc_exact, pred_exact, _ = evaluate(model, xte, yte, "off")
    acc_pruned, pred_pruned, kept = evaluate(model, xte, yte, "hard")
    thetas = [float(b.theta) for b in model.blocks]
    log(f"fine-tuned: exact {100 * acc_exact:.2f}%, hard-pruned {100 * acc_pruned:.2f}%, "
        f"kept {['%.3f' % k for k in kept]}, theta {['%.3f' % t for t in thetas]}")
    info = dict(patch=2, dim=a.dim, depth=a.depth, heads=a.heads, mlp=a.mlp, classes=10,
                tokens=(28 // 2) ** 2 + 1, norm_mean=MEAN, norm_std=STD, ln_eps=LN_EPS,
                test_images=len(xte), test_top1_exact=acc_exact, test_top1_pruned=acc_pruned,
                test_top1_before_finetune=acc_dense, test_kept_pruned=np.array(kept),
                epochs=a.epochs, prune_epochs=a.prune_epochs, lam=a.lam, tau=a.tau,
                seed=a.seed, train_images=len(xtr), prune_images=min(a.prune_subset, len(xtr)), train_seconds=time.time() - t_start,
                torch_version=str(torch.__version__),
                command=" ".join(["scripts/train_vit.py"] + sys.argv[1:]))
    os.makedirs(os.path.dirname(os.path.abspath(a.output)), exist_ok=True)
    save(a.output, model, info, yte, pred_exact, pred_pruned)
    log(f"wrote {a.output}")


if __name__ == "__main__":
    main()
