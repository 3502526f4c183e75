#!/usr/bin/python3
"""SPRINT in the loop of the repository's ViT, run by PyTorch.

The ViT of models/vit-fmnist.h5 (docs/vit.md) is loaded as a PyTorch
module (scripts/sprintsim_model.py); each block's attention is replaced by
sprintsim.torch's: every head's scores are decided by the C analog model
with the layer's learned threshold, survivors are recomputed as SPRINT
recomputes them, and the pruned outputs flow on to the next layer.  The
script evaluates the first test images, prints

    top1 sprint <percent>      the model with SPRINT in the loop
    top1 exact <percent>       the same model with PyTorch's exact attention

and compares every SPRINT mask with the C model evaluator's (the one
`./sprintsim run examples/vit.ini` runs) on the same images and
configuration, and the predictions with that run's.  By default the
model runs the C forward pass's arithmetic around the attention
(scripts/sprintsim_model.py, arith="c"), so every mask must equal the C
evaluator's and the script exits 1 when one differs; with --arith torch
(PyTorch's own float32) it exits 1 only when a prediction differs, or
with --strict-masks when a mask does.

    PYTHONPATH=python /usr/bin/python3 examples/python/closed_loop_vit.py
    ... --config examples/vit.ini --images 1000 --first 0 --threads 2
"""
import argparse
import os
import sys
import time

import numpy as np

import sprintsim
import sprintsim.torch as st
import torch


def load_torch_model(path):
    sys.path.insert(0, sprintsim.data_path("scripts"))
    import sprintsim_model
    return sprintsim_model.load_model(path)


def patch_attention(model, session):
    """Replace Block.attend (fused qkv Linear, the heads) by SPRINT's."""
    for layer, blk in enumerate(model.blocks):
        def attend(x, mode, causal, temperature, quant, _blk=blk, _layer=layer):
            b, n, dim = x.shape
            qkv = _blk.qkv(x).reshape(b, n, 3, _blk.heads, _blk.hd).permute(2, 0, 3, 1, 4)
            o = session.attention(qkv[0], qkv[1], qkv[2], _layer, is_causal=causal)
            return o.transpose(1, 2).reshape(b, n, dim), None
        blk.attend = attend


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=sprintsim.data_path("examples", "vit.ini"),
                    help="configuration (default: examples/vit.ini)")
    ap.add_argument("--model", help="model file (default: the configuration's workload.model)")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--batch", type=int,
                    help="images a forward pass (default: 1 with --arith c, the C pass's own "
                    "GEMM shapes, so the logits are the C evaluator's bit for bit; 100 with "
                    "--arith torch)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-check", action="store_true",
                    help="skip the comparison with the C evaluator")
    ap.add_argument("--arith", choices=("c", "torch"), default="c",
                    help="the model's arithmetic around attention: the C forward pass's (double "
                    "LayerNorm and GELU, its residual order; the masks then equal the C "
                    "evaluator's bit for bit) or PyTorch's own float32 (a few masks differ "
                    "where a value sits on a quantization boundary; docs/python.md)")
    ap.add_argument("--strict-masks", action="store_true",
                    help="with --arith torch: exit 1 when any mask differs from the C "
                    "evaluator's (by default only when a prediction differs)")
    a = ap.parse_args()
    if a.batch is None:
        a.batch = 1 if a.arith == "c" else 100
    if a.batch < 1:
        ap.error(f"--batch {a.batch}: at least 1")
    torch.set_num_threads(1)
    over = {"workload.images": a.images, "workload.first_image": a.first}
    if a.model:
        over["workload.model"] = os.path.abspath(a.model)
    cfg = sprintsim.Config(a.config, over)
    cmodel = sprintsim.Model(cfg)  # the C side: test images, thresholds, forward pass
    model = load_torch_model(cfg["workload.model"]).eval()
    theta = cmodel.theta if np.all(np.isfinite(cmodel.theta)) else None
    session = st.Session(cfg, layers=cmodel.depth, theta=theta, first_trial=a.first,
                         record_masks=not a.no_check)
    patch_attention(model, session)
    images = np.stack([cmodel.input_of(i).reshape(cmodel.side, cmodel.side)
                       for i in range(a.first, a.first + a.images)])
    labels = None
    t0 = time.time()
    pred_sprint, pred_exact = [], []
    same = decisions = differ_images = same_logits = 0
    differ_layer = [0] * cmodel.depth
    for b0 in range(0, a.images, a.batch):
        x = torch.from_numpy(images[b0:b0 + a.batch])
        with torch.no_grad(), session.forward():
            logits, _ = model(x, arith=a.arith)
        sprint_logits = logits.numpy()
        pred_sprint.append(logits.argmax(1).numpy())
        with torch.no_grad():
            # exact float attention: the unpatched Block.attend of the class
            for blk in model.blocks:
                blk.__dict__.pop("attend")
            logits, _ = model(x, mode="exact")
            patch_attention(model, session)
        pred_exact.append(logits.argmax(1).numpy())
        if not a.no_check:
            masks = session.masks.pop()  # this pass: layer -> (B, H, N, N)
            for i in range(x.shape[0]):
                clog, cm = cmodel.infer(a.first + b0 + i, "sprint")
                same_logits += bool(np.array_equal(sprint_logits[i], clog))
                py = np.stack([masks[l][i] for l in range(cmodel.depth)])
                eq = int(np.sum(py == cm))
                same += eq
                decisions += cm.size
                differ_images += eq != cm.size
                for l in range(cmodel.depth):
                    differ_layer[l] += int(np.sum(py[l] != cm[l]))
    pred_sprint, pred_exact = np.concatenate(pred_sprint), np.concatenate(pred_exact)
    res = sprintsim.run(cfg.with_overrides({"baselines.oracle": False, "baselines.topk": False,
                                            "baselines.sanger": False, "baselines.leopard": False,
                                            "baselines.window": False,
                                            "baselines.dense_tiled": False}),
                        threads=a.threads) if not a.no_check else None
    labels = res.labels if res is not None else None
    if labels is None:
        # the test labels, from the evaluation of exact attention alone
        labels = sprintsim.run(cfg, threads=a.threads).labels
    print(f"images {a.first}..{a.first + a.images - 1}, model {cfg['workload.model']}, "
          f"{time.time() - t0:.1f} s")
    print(f"top1 sprint {100 * np.mean(pred_sprint == labels):.2f}")
    print(f"top1 exact {100 * np.mean(pred_exact == labels):.2f}")
    led = session.ledger
    print(f"keep rate {led['kept'] / led['pairs']:.4f}, energy {led['energy_J'] / a.images * 1e6:.3f} "
          f"uJ/image, {led['cycles'] / a.images / 1e3:.2f} kcycles/image")
    if res is not None:
        c = res.schemes["sprint"]
        print(f"masks identical to the C evaluator: {a.images - differ_images}/{a.images} images "
              f"({same}/{decisions} decisions; differing per layer: "
              f"{', '.join(str(x) for x in differ_layer)}); logits identical: "
              f"{same_logits}/{a.images}")
        print(f"sprintsim run: top1 sprint {100 * c['top1']:.2f}, exact "
              f"{100 * res.schemes['exact']['top1']:.2f}; predictions identical to the loop: "
              f"{int(np.sum(res.items['sprint']['pred'] == pred_sprint))}/{a.images}; "
              f"energy {c['energy_J'] / a.images * 1e6:.3f} uJ/image")
        differ_pred = a.images - int(np.sum(res.items['sprint']['pred'] == pred_sprint))
        if differ_pred or ((a.arith == "c" or a.strict_masks) and differ_images):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
