#!/usr/bin/env python3
"""Train sprintsim's models as the pruning papers train them, and write
them in the model format of docs/models.md.

    # the dense reference model (the papers' baseline): no pruning
    /usr/bin/python3 scripts/train_model.py --task vit --stage dense -o models/vit-fmnist-dense.h5
    # the pruning-trained model, from the dense one: stage 1 + stage 2
    /usr/bin/python3 scripts/train_model.py --task vit --stage prune \\
        --init models/vit-fmnist-dense.h5 -o models/vit-fmnist.h5 [--quant]
    # the same for the character-level language model
    /usr/bin/python3 scripts/train_model.py --task lm --stage dense -o models/lm-kjv-dense.h5
    /usr/bin/python3 scripts/train_model.py --task lm --stage prune --init models/lm-kjv-dense.h5 \\
        -o models/lm-kjv.h5

Tasks:
  vit  the small ViT on Fashion-MNIST (Debian: dataset-fashion-mnist): 2 x 2
       patches, 197 tokens; metric top-1 on the test split.
  lm   a character-level causal language model on the King James Bible
       as `bible -l80 gen1:1-rev22:21` prints it (Debian: bible-kjv and
       bible-kjv-text; the text is in the public domain, the package's code
       GPL-2+): every 20th chapter (the 20th, 40th, ...) is the evaluation
       split, the rest the training split; windows of --context characters;
       metric bits per character on the evaluation split.

Recipe (stage prune), as Learned Token Pruning trains (Kim et al., KDD 2022,
github.com/kssteven418/LTP: README "soft threshold" and "hard threshold"
stages, trainer.py) and as LeOPArd learns SPRINT's thresholds (Li et al.,
ISCA 2022: thresholds and weights co-optimised with a soft threshold and a
sparsity term):
  stage 1  weights and one threshold per layer on the scaled score
           q.k/sqrt(d) train together with the soft mask
           m = sigmoid((s - theta) / T) and loss = task loss + lambda *
           sum over layers of mean(m) (LTP's regulariser: the kept share of
           each layer, summed); the thresholds have their own optimiser and
           learning rate with no weight decay (LTP: --lr_threshold,
           weight_decay_threshold 0); they start at a quantile of the
           layer's scores on a training batch;
  stage 2  the thresholds are frozen, the mask is hard (s >= theta), and the
           weights are fine-tuned (LTP: masking_mode hard).
--quant (beyond the papers) makes both stages use the scores SPRINT's
comparators see: 4-bit queries, the 4 MSBs of 8-bit keys and the threshold
rounded to the 5-bit generator grid (scripts/sprintsim_model.py).

The file records the recipe, every hyperparameter, the data, the training
time, the PyTorch version and PyTorch's exact and hard-threshold metrics
on the evaluation split (with --quant also the quantised-scoring ones), so
the C forward pass can be checked against them (tests/test_model.c).

Needs PyTorch (Debian: python3-torch), numpy and h5py; without PyTorch the
script says so and exits 2.  Progress goes to stderr.
"""
import argparse
import gzip
import math
import os
import re
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sprintsim_model as sm  # exits 2 with a message when torch is missing
import torch
import torch.nn.functional as F
import numpy as np

FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530  # training-set pixel mean and std (x / 255)
KJV_COMMAND = ["bible", "-l80", "gen1:1-rev22:21"]
KJV_EVAL_EVERY = 20


# ---- data -------------------------------------------------------------------

def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = struct.unpack(">I", data[:4])[0] & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fmnist(data_dir):
    out = {}
    for split, pre in (("train", "train"), ("test", "t10k")):
        paths = [os.path.join(data_dir, f"{pre}-{k}-idx{n}-ubyte.gz")
                 for k, n in (("images", 3), ("labels", 1))]
        for p in paths:
            if not os.path.exists(p):
                sys.exit(f"train_model.py: {p} not found (Debian: apt-get install "
                         "dataset-fashion-mnist)")
        out[split] = (torch.from_numpy(read_idx(paths[0]).copy()),
                      torch.from_numpy(read_idx(paths[1]).astype(np.int64)))
    return out


def kjv_text():
    try:
        text = subprocess.run(KJV_COMMAND, check=True, capture_output=True,
                              env=dict(os.environ, COLUMNS="80")).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"train_model.py: `{' '.join(KJV_COMMAND)}` failed ({e}); Debian: apt-get "
                 "install bible-kjv bible-kjv-text")
    return text


def kjv_split(text):
    """(train bytes, eval bytes, chapters, eval chapters): chapters start at a
    line '<Book> <n>'; chapter c (0-based) is in the evaluation split when
    (c + 1) % KJV_EVAL_EVERY == 0."""
    starts = [m.start() for m in re.finditer(rb"\n(?=[1-3]?[A-Za-z ]+ \d+\n)", text)]
    bounds = starts + [len(text)]
    train, ev = [text[:starts[0]]], []
    for c in range(len(starts)):
        (ev if (c + 1) % KJV_EVAL_EVERY == 0 else train).append(text[bounds[c]:bounds[c + 1]])
    return b"".join(train), b"".join(ev), len(starts), len(ev)


def encode(text, vocab):
    lut = np.full(256, -1, dtype=np.int64)
    lut[np.array(vocab)] = np.arange(len(vocab))
    ids = lut[np.frombuffer(text, dtype=np.uint8)]
    if (ids < 0).any():
        raise ValueError("a byte of the text is not in the vocabulary")
    return torch.from_numpy(ids)


def load_kjv():
    text = kjv_text()
    train, ev, nch, nev = kjv_split(text)
    vocab = sorted(set(text))
    return dict(train=encode(train, vocab), eval=encode(ev, vocab), vocab=vocab,
                chapters=nch, eval_chapters=nev, chars=len(text))


# ---- batches, loss, evaluation --------------------------------------------------

class Batches:
    """Training batches: shuffled images (vit) or random windows (lm)."""

    def __init__(self, task, data, bs, context, seed):
        self.task, self.data, self.bs, self.context = task, data, bs, context
        self.g = torch.Generator().manual_seed(seed)
        self.perm, self.pos = None, 0

    def next(self):
        if self.task == "vit":
            x, y = self.data
            if self.perm is None or self.pos + self.bs > len(x):
                self.perm, self.pos = torch.randperm(len(x), generator=self.g), 0
            idx = self.perm[self.pos:self.pos + self.bs]
            self.pos += self.bs
            return x[idx], y[idx]
        ids = self.data
        n = self.context
        start = torch.randint(0, len(ids) - n - 1, (self.bs,), generator=self.g)
        w = torch.stack([ids[s:s + n + 1] for s in start.tolist()])
        return w[:, :-1], w[:, 1:]


def task_loss(task, logits, y):
    if task == "vit":
        return F.cross_entropy(logits, y)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def evaluate(model, task, data, mode, quant=False, bs=None):
    """vit: (top-1, predictions, kept per layer) on the test split;
    lm: (bits per character, nats per window, kept per layer) on the
    evaluation windows (window w: inputs ids[w N .. w N + N - 1], targets
    ids[w N + 1 .. w N + N])."""
    model.eval()
    kept = []
    with torch.no_grad():
        if task == "vit":
            x, y = data
            bs = bs or 500
            preds = []
            for i in range(0, len(x), bs):
                out, k = model(x[i:i + bs], mode, quant=quant)
                preds.append(out.argmax(-1))
                if mode != "exact":
                    kept.append(torch.stack(k) * len(out))
            pred = torch.cat(preds)
            kr = (torch.stack(kept).sum(0) / len(x)).tolist() if kept else None
            return (pred == y).double().mean().item(), pred, kr
        ids, n = data, model.tokens
        W = (len(ids) - 1) // n
        bs = bs or 16
        nats = []
        for w0 in range(0, W, bs):
            ws = range(w0, min(W, w0 + bs))
            x = torch.stack([ids[w * n:w * n + n] for w in ws])
            y = torch.stack([ids[w * n + 1:w * n + n + 1] for w in ws])
            out, k = model(x, mode, quant=quant)
            lp = F.log_softmax(out.double(), -1)
            nats.append(-lp.gather(-1, y[..., None]).squeeze(-1).sum(-1))
            if mode != "exact":
                kept.append(torch.stack(k) * len(ws))
        nats = torch.cat(nats)
        kr = (torch.stack(kept).sum(0) / W).tolist() if kept else None
        return nats.sum().item() / (W * n * math.log(2)), nats.numpy(), kr


def lr_at(step, steps, lr, warmup):
    """Linear warm-up over `warmup` steps, then linear decay to 0 (the
    schedule of Hugging Face's Trainer, which LTP uses)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    return lr * max(0.0, (steps - step) / max(1, steps - warmup))


def train_steps(model, batches, steps, task, mode, log, *, lr, wd, warmup, temperature=1.0,
                lam=0.0, theta_lr=0.0, quant=False, label=""):
    """`steps` optimiser steps.  mode "exact" (dense), "soft" (stage 1:
    weights and thresholds) or "hard" (stage 2: weights, thresholds frozen)."""
    thetas = [b.theta for b in model.blocks]
    weights = [p for n_, p in model.named_parameters() if not n_.endswith(".theta")]
    for t in thetas:
        t.requires_grad_(mode == "soft")
    opt = torch.optim.AdamW(weights, lr=lr, weight_decay=wd)
    opt_t = torch.optim.AdamW(thetas, lr=theta_lr, weight_decay=0.0) if mode == "soft" else None
    t0, tot, kept_acc, n = time.time(), 0.0, None, 0
    every = max(1, steps // 20)
    model.train()
    for step in range(steps):
        for o, base in ((opt, lr), (opt_t, theta_lr)):
            if o is not None:
                for gr in o.param_groups:
                    gr["lr"] = lr_at(step, steps, base, warmup)
        x, y = batches.next()
        out, kept = model(x, mode, temperature=temperature, quant=quant)
        loss = task_loss(task, out, y)
        if mode == "soft":
            loss = loss + lam * torch.stack(kept).sum()
        opt.zero_grad()
        if opt_t:
            opt_t.zero_grad()
        loss.backward()
        opt.step()
        if opt_t:
            opt_t.step()
        tot += loss.item()
        n += 1
        if mode != "exact":
            k = torch.stack(kept).detach()
            kept_acc = k if kept_acc is None else kept_acc + k
        if (step + 1) % every == 0 or step + 1 == steps:
            el = time.time() - t0
            msg = f"{label} step {step + 1}/{steps}: loss {tot / n:.4f}"
            if kept_acc is not None:
                msg += " kept " + " ".join(f"{v:.3f}" for v in (kept_acc / n).tolist())
            if mode == "soft":
                msg += " theta " + " ".join(f"{float(t):.3f}" for t in thetas)
            log(msg + f" ({el:.0f} s, eta {el / (step + 1) * (steps - step - 1):.0f} s)")
            tot, kept_acc, n = 0.0, None, 0
    for t in thetas:
        t.requires_grad_(False)
    model.eval()


def init_thresholds(model, x, quantile):
    """Each layer's threshold at `quantile` of its scaled scores (allowed
    pairs) on the batch x, layer by layer through the exact model."""
    with torch.no_grad():
        t = model.embed_input(x)
        for blk in model.blocks:
            h = blk.ln1(t)
            b, n, dim = h.shape
            qkv = blk.qkv(h).reshape(b, n, 3, blk.heads, blk.hd).permute(2, 0, 3, 1, 4)
            s = qkv[0] @ qkv[1].transpose(-1, -2) / math.sqrt(blk.hd)
            if model.causal:
                s = s[..., torch.ones(n, n, dtype=torch.bool).tril()]
            flat = s.flatten()
            flat = flat[torch.randperm(len(flat), generator=torch.Generator().manual_seed(3))[:200000]]
            blk.theta.fill_(float(flat.quantile(quantile)))
            t, _ = blk(t, "exact", model.causal)


# ---- main ---------------------------------------------------------------------

def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--task", choices=["vit", "lm"], required=True)
    ap.add_argument("--stage", choices=["dense", "prune"], required=True,
                    help="dense: train the reference model from scratch; prune: stage 1 + "
                         "stage 2 from --init")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--init", help="stage prune: the dense reference model to start from "
                                   "(recorded as the reference of the output)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    g = ap.add_argument_group("architecture (stage dense; stage prune takes --init's)")
    g.add_argument("--dim", type=int, help="model width (vit 32, lm 128)")
    g.add_argument("--depth", type=int, help="layers (vit 2, lm 3)")
    g.add_argument("--heads", type=int, help="heads per layer (vit 2, lm 4: head dim 32)")
    g.add_argument("--mlp", type=int, help="MLP width (vit 64, lm 512)")
    g.add_argument("--context", type=int, default=512, help="lm: context N in characters")
    g = ap.add_argument_group("data")
    g.add_argument("--data", default="/usr/share/datasets/fashion-mnist",
                   help="vit: folder of the Fashion-MNIST IDX files")
    g.add_argument("--train-subset", type=int, default=60000,
                   help="vit: training images used (the first ones)")
    g.add_argument("--eval-limit", type=int, default=0,
                   help="evaluate (and store) only the first N test images or evaluation "
                        "windows (0: all; for quick checks)")
    g = ap.add_argument_group("stage dense")
    g.add_argument("--steps", type=int, help="optimiser steps (vit 1875 = 4 epochs of 60000 at "
                                             "batch 128; lm 1500)")
    g.add_argument("--batch", type=int, help="batch (vit 128 images, lm 16 windows)")
    g.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW)")
    g.add_argument("--weight-decay", type=float, default=0.05)
    g = ap.add_argument_group("stage prune (sources: LTP README/trainer.py; LeOPArd)")
    g.add_argument("--lam", type=float, default=0.05,
                   help="lambda, weight of the kept-share regulariser (LTP: 0.01-0.2)")
    g.add_argument("--temperature", type=float, default=0.25,
                   help="T of the soft mask, in units of the scaled score q.k/sqrt(d) (LTP "
                        "uses 1e-5..2e-3 on its probability-scale importance scores; a "
                        "pre-softmax score spreads over a few units)")
    g.add_argument("--theta-quantile", type=float, default=0.5,
                   help="thresholds start at this quantile of each layer's scores")
    g.add_argument("--soft-steps", type=int, help="stage 1 steps (vit 469 = 1 epoch, lm 400)")
    g.add_argument("--soft-lr", type=float, default=5e-4, help="stage 1 weight learning rate")
    g.add_argument("--theta-lr", type=float, default=2e-2,
                   help="stage 1 threshold learning rate (LTP: --lr_threshold)")
    g.add_argument("--hard-steps", type=int, help="stage 2 steps (vit 469, lm 400)")
    g.add_argument("--hard-lr", type=float, default=3e-4, help="stage 2 weight learning rate")
    g.add_argument("--prune-batch", type=int, help="stage 1 and 2 batch (as --batch)")
    g.add_argument("--warmup", type=int, default=50, help="warm-up steps of each stage")
    g.add_argument("--quant", action="store_true",
                   help="beyond the papers: SPRINT's quantised scoring and threshold grid in "
                        "the forward pass of both stages")
    return ap.parse_args()


def main():
    a = parse()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    t_start = time.time()
    c_start = time.process_time()

    def log(msg):
        sys.stderr.write(f"[{time.time() - t_start:6.0f} s] {msg}\n")
        sys.stderr.flush()

    vit = a.task == "vit"
    if vit:
        d = load_fmnist(a.data)
        xtr, ytr = d["train"][0][:a.train_subset], d["train"][1][:a.train_subset]
        train_data, eval_data = (xtr, ytr), d["test"]
        data_attrs = dict(data="Fashion-MNIST (Debian dataset-fashion-mnist): training images "
                               f"0..{len(xtr) - 1}, evaluation: the 10000 test images",
                          train_items=len(xtr))
    else:
        d = load_kjv()
        train_data, eval_data = d["train"], d["eval"]
        data_attrs = dict(data=f"King James Bible, `{' '.join(KJV_COMMAND)}` (Debian bible-kjv, "
                               "bible-kjv-text; text public domain): every "
                               f"{KJV_EVAL_EVERY}th chapter is the evaluation split",
                          corpus_chars=d["chars"], chapters=d["chapters"],
                          eval_chapters=d["eval_chapters"], train_chars=len(d["train"]),
                          eval_chars=len(d["eval"]))
    dflt = dict(vit=dict(dim=32, depth=2, heads=2, mlp=64, steps=1875, batch=128,
                         soft_steps=469, hard_steps=469),
                lm=dict(dim=128, depth=3, heads=4, mlp=512, steps=1500, batch=16,
                        soft_steps=400, hard_steps=400))[a.task]
    for k, v in dflt.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if a.prune_batch is None:
        a.prune_batch = a.batch

    command = " ".join(["scripts/train_model.py"] + sys.argv[1:])
    hyper = {}
    if a.stage == "dense":
        if vit:
            model = sm.Transformer("image", a.dim, a.depth, a.heads, a.mlp, side=28, patch=2,
                                   classes=10, norm_mean=FMNIST_MEAN, norm_std=FMNIST_STD)
        else:
            model = sm.Transformer("text", a.dim, a.depth, a.heads, a.mlp, vocab=d["vocab"],
                                   context=a.context)
        log(f"{a.task}: {sum(p.numel() for p in model.parameters()) - a.depth} parameters, "
            f"torch {torch.__version__}, {a.threads} threads")
        batches = Batches(a.task, train_data, a.batch, model.tokens, a.seed)
        train_steps(model, batches, a.steps, a.task, "exact", log, lr=a.lr, wd=a.weight_decay,
                    warmup=max(1, a.steps // 10), label="dense")
        hyper = dict(recipe="dense: no pruning (the reference model)", steps=a.steps,
                     batch=a.batch, lr=a.lr, weight_decay=a.weight_decay,
                     schedule="AdamW, linear warm-up over 10% of the steps, linear decay to 0")
        reference = ""
    else:
        if not a.init:
            sys.exit("train_model.py: --stage prune needs --init DENSE.h5")
        model = sm.load_model(a.init)
        if (model.input == "image") != vit:
            sys.exit(f"train_model.py: {a.init} is not a {a.task} model")
        log(f"{a.task}: from {a.init}, torch {torch.__version__}, {a.threads} threads")
        batches = Batches(a.task, train_data, a.prune_batch, model.tokens, a.seed + 1)
        x0, _ = batches.next()
        init_thresholds(model, x0, a.theta_quantile)
        log("thresholds start at " + " ".join(f"{float(b.theta):.3f}" for b in model.blocks))
        train_steps(model, batches, a.soft_steps, a.task, "soft", log, lr=a.soft_lr, wd=0.0,
                    warmup=a.warmup, temperature=a.temperature, lam=a.lam, theta_lr=a.theta_lr,
                    quant=a.quant, label="stage 1 (soft, weights + thresholds)")
        t_soft = time.time() - t_start
        train_steps(model, batches, a.hard_steps, a.task, "hard", log, lr=a.hard_lr, wd=0.0,
                    warmup=a.warmup, quant=a.quant, label="stage 2 (hard, weights)")
        hyper = dict(recipe="LTP two-stage: stage 1 soft mask sigmoid((s - theta)/T), weights "
                            "and per-layer thresholds together, loss + lambda * sum_l mean(m_l); "
                            "stage 2 thresholds frozen, hard mask, weights fine-tuned",
                     lam=a.lam, temperature=a.temperature, theta_quantile=a.theta_quantile,
                     soft_steps=a.soft_steps, soft_lr=a.soft_lr, theta_lr=a.theta_lr,
                     hard_steps=a.hard_steps, hard_lr=a.hard_lr, batch=a.prune_batch,
                     warmup=a.warmup, quant=int(a.quant), stage1_end_seconds=t_soft,
                     schedule="AdamW (weights: no weight decay; thresholds: their own "
                              "optimiser, no weight decay), linear warm-up then linear decay "
                              "to 0 per stage",
                     init=os.path.basename(a.init))
        reference = os.path.relpath(os.path.abspath(a.init),
                                    os.path.dirname(os.path.abspath(a.output)))
    train_seconds = time.time() - t_start
    train_cpu = time.process_time() - c_start
    if a.eval_limit > 0:
        if vit:
            eval_data = (eval_data[0][:a.eval_limit], eval_data[1][:a.eval_limit])
        else:
            eval_data = eval_data[:a.eval_limit * model.tokens + 1]
        data_attrs["eval_limit"] = a.eval_limit
    log("evaluating")
    ev_attrs, ev_data = {}, {}
    metric = "top1" if vit else "bpc"
    m_exact, out_exact, _ = evaluate(model, a.task, eval_data, "exact")
    ev_attrs[f"{metric}_exact"] = m_exact
    if vit:
        ev_data["labels"] = eval_data[1].numpy().astype(np.uint8)
        ev_data["pred_exact"] = out_exact.numpy().astype(np.uint8)
    else:
        ev_data["tokens"] = eval_data.numpy().astype(np.uint8)
        ev_data["nats_exact"] = out_exact
        ev_attrs["windows"] = len(out_exact)
    msg = f"{metric} exact {m_exact:.4f}"
    if model.has_thresholds():
        for quant, tag in ((False, "hard"), (True, "hard_quant")):
            m, out, kept = evaluate(model, a.task, eval_data, "hard", quant=quant)
            ev_attrs[f"{metric}_{tag}"] = m
            ev_attrs[f"kept_{tag}"] = np.array(kept)
            ev_data[("pred_" if vit else "nats_") + tag] = (out.numpy().astype(np.uint8) if vit
                                                           else out)
            msg += f", {tag} {m:.4f} (kept {' '.join(f'{k:.3f}' for k in kept)})"
    log(msg)
    train_attrs = dict(hyper, seed=a.seed, threads=a.threads, train_seconds=train_seconds,
                       train_cpu_seconds=train_cpu,
                       torch_version=str(torch.__version__), command=command, **data_attrs)
    out_dir = os.path.dirname(os.path.abspath(a.output))
    os.makedirs(out_dir, exist_ok=True)
    sm.save_model(a.output, model, train_attrs, ev_data, ev_attrs, reference=reference)
    log(f"wrote {a.output} ({train_seconds:.0f} s of training, {train_cpu:.0f} s of CPU)")


if __name__ == "__main__":
    main()
