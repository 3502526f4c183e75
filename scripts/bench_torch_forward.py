#!/usr/bin/env python3
"""PyTorch's CPU time for the exact forward pass of a sprintsim model file
(docs/models.md) on its first ITEMS evaluation items, for bench/bench_model.

    /usr/bin/python3 scripts/bench_torch_forward.py MODEL.h5 ITEMS [--data DIR]
                     [--repeats R] [--threads T]

Image models take the first ITEMS Fashion-MNIST test images (--data, the
Debian dataset-fashion-mnist folder by default), text models the first ITEMS
evaluation windows of the file's /eval/tokens.  Every item goes through one
batched forward (exact attention, torch.no_grad, T intra-op threads, 1 by
default) after one warm-up; the process CPU time of R repeats (3) gives a
median.  Prints one line, "torch VERSION threads T: MS ms per item (median
of R, batch B)", or, without PyTorch, "no torch: ..." and exits 3.
"""
import argparse
import gzip
import os
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("items", type=int)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    try:
        import numpy as np
        import torch
        import h5py
    except ImportError as e:
        print(f"no torch: {sys.executable} cannot import {e.name} (Debian: python3-torch, "
              "python3-h5py)")
        sys.exit(3)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from sprintsim_model import load_model
    torch.set_num_threads(a.threads)
    m = load_model(a.model)
    m.eval()
    if m.input == "image":
        with gzip.open(os.path.join(a.data, "t10k-images-idx3-ubyte.gz")) as f:
            raw = f.read()
        n, rows, cols = (int.from_bytes(raw[4 * k:4 * k + 4], "big") for k in (1, 2, 3))
        img = np.frombuffer(raw, np.uint8, offset=16).reshape(n, rows, cols)
        x = torch.from_numpy(img[:a.items].copy())
    else:
        with h5py.File(a.model, "r") as f:
            ids = torch.from_numpy(f["eval/tokens"][()].astype(np.int64))
        N = m.tokens
        x = torch.stack([ids[w * N:w * N + N] for w in range(a.items)])
    with torch.no_grad():
        m(x)  # warm-up
        t = []
        for _ in range(a.repeats):
            c0 = time.process_time()
            m(x)
            t.append(time.process_time() - c0)
    ms = 1e3 * statistics.median(t) / a.items
    print(f"torch {torch.__version__} threads {a.threads}: {ms:.4f} ms per item "
          f"(median of {a.repeats}, batch {a.items})")


if __name__ == "__main__":
    main()
