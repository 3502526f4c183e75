#!/usr/bin/env python3
"""Where the ViT's per-layer thresholds prune: for each threshold offset,
PyTorch top-1 with hard pruning, the fraction of (query, key) pairs kept,
and the fraction kept in the class token's query row (the only row the
classifier reads after the last layer).

    /usr/bin/python3 scripts/vit_threshold_stats.py [--model models/vit-fmnist.h5]
        [--images 1000] [--offsets -3,-2,-1,0]

Needs PyTorch (optional dependency, as scripts/train_vit.py, whose model
class it uses); exits with status 2 without it.
"""
import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_vit as tv  # exits 2 with a message when torch is missing
import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="models/vit-fmnist.h5")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--offsets", default="-3,-2,-1,0")
    a = ap.parse_args()
    torch.set_num_threads(1)
    import h5py
    with h5py.File(a.model, "r") as f:
        dims = {k: int(f.attrs[k]) for k in ("dim", "depth", "heads", "mlp")}
    m = tv.ViT(**dims)
    tv.load_weights(m, a.model)
    with h5py.File(a.model, "r") as f:
        theta = [float(f[f"layer_{i}"].attrs["theta"]) for i in range(m.depth)]
    x, y = tv.load(a.data, "test")
    x, y = x[:a.images], y[:a.images]
    acc, _, _ = tv.evaluate(m, x, y, "off")
    print(f"exact attention: top-1 {100 * acc:.2f}% on the first {len(x)} test images")
    print("offset  top1%   kept    cls-row kept")
    for off in [float(v) for v in a.offsets.split(",")]:
        stats = []
        for i, b in enumerate(m.blocks):
            b.theta.data.fill_(theta[i] + off)

            def att(xx, prune, tau, blk=b, orig=b.attend):
                n = xx.shape[1]
                qkv = blk.qkv(xx).reshape(xx.shape[0], n, 3, blk.heads, blk.hd).permute(2, 0, 3, 1, 4)
                keep = (qkv[0] @ qkv[1].transpose(-1, -2) / math.sqrt(blk.hd)) >= blk.theta
                stats.append((keep.float().mean().item(), keep[:, :, 0, :].float().mean().item()))
                return orig(xx, prune, tau)
            b.attend = att
        acc, _, _ = tv.evaluate(m, x, y, "hard", bs=500)
        for b in m.blocks:
            del b.attend
        kept = sum(s[0] for s in stats) / len(stats)
        cls = sum(s[1] for s in stats) / len(stats)
        print(f"{off:6g} {100 * acc:6.2f} {kept:7.4f} {cls:11.4f}")


if __name__ == "__main__":
    main()
