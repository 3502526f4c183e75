#!/usr/bin/python3
"""SPRINT in the loop of a user's own model: a torch TransformerEncoder
that nothing in sprintsim knows, with padded batches.

sprintsim.torch.wrap finds its nn.MultiheadAttention modules and runs
their attention through the C library: SPRINT (thresholds calibrated per
layer and sequence to a keep rate, every non-ideality at its default),
then dense on the same ledger.  The script prints, per scheme, how far
the encoder's output moves from exact attention and what the attention
costs.

    PYTHONPATH=python /usr/bin/python3 examples/python/encoder_in_the_loop.py
"""
import argparse

import torch

import sprintsim
import sprintsim.torch as st


def build(seed, dim, heads, depth, n_tokens, batch, pad):
    torch.manual_seed(seed)
    layer = torch.nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=0.0,
                                             batch_first=True, norm_first=True)
    model = torch.nn.TransformerEncoder(layer, depth).eval()
    # inputs with structure (a few repeated "topics"), so attention is peaked
    topics = torch.randn(8, dim) * 3
    x = topics[torch.randint(0, 8, (batch, n_tokens))] + 0.5 * torch.randn(batch, n_tokens, dim)
    padding = torch.zeros(batch, n_tokens, dtype=torch.bool)
    padding[1:, n_tokens - pad:] = True  # items 1.. are shorter
    return model, x, padding


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep-rate", type=float, default=0.25)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--pad", type=int, default=32)
    a = ap.parse_args()
    torch.set_num_threads(1)
    model, x, padding = build(1, 64, 4, 2, a.tokens, a.batch, a.pad)
    with torch.no_grad():
        ref = model(x, src_key_padding_mask=padding)
    real = ~padding
    cfg = {"threshold.mode": "keep_rate", "threshold.keep_rate": a.keep_rate}
    print(f"TransformerEncoder: 2 layers x 4 heads, d = 16, N = {a.tokens} "
          f"(items 1..{a.batch - 1} padded by {a.pad})")
    print(f"{'scheme':8} {'keep%':>6} {'cos.min':>8} {'rel.err':>8} {'energy uJ':>10} {'Mcycles':>8}")
    for scheme in ("sprint", "dense"):
        session = st.Session(cfg, scheme=scheme)
        with torch.no_grad(), st.wrap(model, session):
            out = model(x, src_key_padding_mask=padding)
        o, r = out[real], ref[real]
        cos = torch.nn.functional.cosine_similarity(o, r, dim=-1)
        rel = float(torch.linalg.norm(o - r) / torch.linalg.norm(r))
        led = session.ledger
        print(f"{scheme:8} {100 * led['kept'] / led['pairs']:6.2f} {float(cos.min()):8.4f} "
              f"{rel:8.4f} {led['energy_J'] * 1e6:10.3f} {led['cycles'] / 1e6:8.3f}")


if __name__ == "__main__":
    main()
