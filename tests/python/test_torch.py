"""sprintsim.torch: SPRINT in the loop of PyTorch models, against the C
model evaluator and brute-force PyTorch references.  Skipped without
PyTorch."""
import gzip
import os
import struct
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

import sprintsim  # noqa: E402
import sprintsim.torch as st  # noqa: E402
from conftest import src  # noqa: E402

sys.path.insert(0, src("scripts"))
import sprintsim_model as smod  # noqa: E402

IDEAL = {"crossbar.variation": False, "crossbar.stuck_at": False, "crossbar.drift": False,
         "crossbar.ir_drop": "off", "analog.dac_error": False, "analog.read_noise": False,
         "analog.cmp_offset": False, "analog.cmp_noise": False}
NO_BASELINES = {"baselines.oracle": False, "baselines.topk": False, "baselines.sanger": False,
                "baselines.leopard": False, "baselines.window": False,
                "baselines.dense_tiled": False}


def write_idx(folder, images, labels):
    os.makedirs(folder, exist_ok=True)
    n, h, w = images.shape
    with gzip.open(os.path.join(folder, "t10k-images-idx3-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, h, w) + images.astype(np.uint8).tobytes())
    with gzip.open(os.path.join(folder, "t10k-labels-idx1-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny ViT (12 x 12 images, 2 x 2 patches: N = 37, d = 8, 2 layers
    x 2 heads) with learned thresholds, and 24 test images."""
    d = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(3)
    m = smod.Transformer("image", dim=16, depth=2, heads=2, mlp=32, side=12, patch=2, classes=5,
                         norm_mean=0.3, norm_std=0.35)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(3.0)
        for b, th in zip(m.blocks, (0.15, 0.4)):
            b.theta.fill_(th)
    path = str(d / "tiny.h5")
    smod.save_model(path, m, {"seed": 3}, {}, {})
    rng = np.random.default_rng(5)
    images = (rng.random((24, 12, 12)) ** 3 * 255).astype(np.uint8)
    labels = rng.integers(0, 5, 24)
    write_idx(str(d / "data"), images, labels)
    return path, str(d / "data"), images, labels


def cfg_for(tiny, extra=None):
    path, data, _, _ = tiny
    c = {"workload.source": "model", "workload.model": path, "workload.dataset": data,
         "workload.images": 24, "threshold.mode": "learned", **NO_BASELINES}
    c.update(extra or {})
    return sprintsim.Config(c)


def patch(model, session):
    for layer, blk in enumerate(model.blocks):
        def attend(x, mode, causal, temperature, quant, _blk=blk, _layer=layer):
            b, n, dim = x.shape
            qkv = _blk.qkv(x).reshape(b, n, 3, _blk.heads, _blk.hd).permute(2, 0, 3, 1, 4)
            o = session.attention(qkv[0], qkv[1], qkv[2], _layer, is_causal=causal)
            return o.transpose(1, 2).reshape(b, n, dim), None
        blk.attend = attend


def closed_loop(tiny, cfg, first=0, count=24, batch=8, arith="c"):
    """SPRINT in the loop of the tiny ViT, `batch` images a pass, around
    the attention the C pass's arithmetic (arith="c") or PyTorch's."""
    model = smod.load_model(tiny[0]).eval()
    cm = sprintsim.Model(cfg)
    s = st.Session(cfg, layers=cm.depth, theta=cm.theta, first_trial=first, record_masks=True)
    patch(model, s)
    logits = []
    for b0 in range(first, first + count, batch):
        x = torch.from_numpy(tiny[2][b0:b0 + batch])
        with torch.no_grad(), s.forward():
            logits.append(model(x, arith=arith)[0])
    return torch.cat(logits), s, cm


@pytest.mark.parametrize("extra", [{}, {"analog.cmp_noise_sigma": "1 uA"}])
@pytest.mark.parametrize("batch", [1, 8])
def test_closed_loop_masks_equal_the_c_evaluator(tiny, extra, batch):
    """The C pass's arithmetic around the C library's attention: every mask
    is the C evaluator's; with one image a pass (the C pass's own GEMM
    shapes) the logits are too, bit for bit, and with 8 within float32
    rounding (OpenBLAS sums a product of 8 x 37 rows otherwise)."""
    cfg = cfg_for(tiny, extra)
    logits, s, cm = closed_loop(tiny, cfg, batch=batch)
    for p, masks in enumerate(s.masks):
        for i in range(batch):
            item = batch * p + i
            c_logits, c_masks = cm.infer(item, "sprint")
            py = np.stack([masks[l][i] for l in range(2)])
            np.testing.assert_array_equal(py, c_masks)
            if batch == 1:
                np.testing.assert_array_equal(logits[item].numpy(), c_logits)
            else:
                np.testing.assert_allclose(logits[item].numpy(), c_logits, rtol=1e-5, atol=1e-5)
    # the same top-1 as the C evaluation of the same images
    r = sprintsim.run(cfg, threads=2)
    np.testing.assert_array_equal(logits.argmax(1).numpy(), r.items["sprint"]["pred"])
    assert s.ledger["energy_J"] == pytest.approx(r.schemes["sprint"]["energy_J"], rel=1e-9)
    assert s.ledger["kept"] / s.ledger["pairs"] == pytest.approx(r.schemes["sprint"]["keep_rate"],
                                                                 rel=1e-9)
    assert len(s.passes) == 24 // batch and s.trial == 24


def test_closed_loop_in_torch_arithmetic(tiny):
    """PyTorch's own float32 around the attention: the masks of this tiny
    model still equal the C evaluator's (no value near a quantization
    boundary), the logits within float32 rounding, not bit for bit."""
    cfg = cfg_for(tiny)
    logits, s, cm = closed_loop(tiny, cfg, count=8, arith="torch")
    exact = True
    for i in range(8):
        c_logits, c_masks = cm.infer(i, "sprint")
        np.testing.assert_array_equal(np.stack([s.masks[0][l][i] for l in range(2)]), c_masks)
        np.testing.assert_allclose(logits[i].numpy(), c_logits, rtol=1e-4, atol=1e-4)
        exact = exact and np.array_equal(logits[i].numpy(), c_logits)
    assert not exact  # else the arith="c" test above would prove nothing
    with pytest.raises(ValueError, match="arith 'fast'"):
        smod.load_model(tiny[0])(torch.from_numpy(tiny[2][:1]), arith="fast")


def test_noise_streams_are_keyed_by_the_item(tiny):
    cfg = cfg_for(tiny, {"analog.cmp_noise_sigma": "1 uA"})
    _, s, cm = closed_loop(tiny, cfg, first=8, count=8)
    _, c_masks = cm.infer(9, "sprint")
    np.testing.assert_array_equal(np.stack([s.masks[0][l][1] for l in range(2)]), c_masks)
    _, other = cm.infer(10, "sprint")
    assert (other != c_masks).any()


def test_closed_loop_against_a_brute_force_reference(tiny):
    """No noise: SPRINT's masks are the quantized-score threshold masks
    of scripts/sprintsim_model.py (an independent PyTorch implementation),
    and the outputs those of softmax over the survivors of 8-bit codes."""
    cfg = cfg_for(tiny, IDEAL)
    logits, s, _ = closed_loop(tiny, cfg, count=8)
    model = smod.load_model(tiny[0]).eval()

    def q8(x):  # per head and sequence, symmetric 8 bits
        sc = x.abs().amax(dim=(-1, -2), keepdim=True) / 127
        return torch.round(x / sc).clamp(-127, 127) * sc

    seen = []
    for layer, blk in enumerate(model.blocks):
        def attend(x, mode, causal, temperature, quant, _blk=blk, _layer=layer):
            b, n, dim = x.shape
            qkv = _blk.qkv(x).reshape(b, n, 3, _blk.heads, _blk.hd).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0].double(), qkv[1].double(), qkv[2].double()
            u, level, _ = smod.sprint_scores(qkv[0], qkv[1], False, _blk.theta)
            m = u >= level[..., None, None]
            seen.append(m)
            sc = (q8(q) @ q8(k).transpose(-1, -2)) / np.sqrt(_blk.hd)
            sc = sc.masked_fill(~m, float("-inf"))
            p = torch.softmax(sc, -1).nan_to_num(0.0)
            o = (p @ q8(v)).float()
            return o.transpose(1, 2).reshape(b, n, dim), None
        blk.attend = attend
    with torch.no_grad():
        ref = model(torch.from_numpy(tiny[2][:8]))[0]
    for layer in range(2):
        np.testing.assert_array_equal(s.masks[0][layer], seen[layer].numpy())
        assert 0.05 < seen[layer].float().mean() < 0.95  # the thresholds prune
    np.testing.assert_allclose(logits.numpy(), ref.numpy(), rtol=1e-3, atol=1e-3)


# --- a user's modules ------------------------------------------------------------

def mha_model(batch_first):
    torch.manual_seed(7)
    return torch.nn.MultiheadAttention(32, 4, batch_first=batch_first).eval()


@pytest.mark.parametrize("batch_first", [True, False])
def test_mha_exact_equals_torch(batch_first):
    m = mha_model(batch_first)
    x = torch.randn(3, 20, 32) if batch_first else torch.randn(20, 3, 32)
    with torch.no_grad():
        ref, _ = m(x, x, x)
        s = st.Session(scheme="exact")
        with st.wrap(m, s):
            out, w = m(x, x, x)
    assert w is None
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        again, _ = m(x, x, x)  # restored
    torch.testing.assert_close(again, ref)


def test_mha_padding_equals_the_unpadded_item():
    m = mha_model(True)
    x = torch.randn(2, 24, 32)
    pad = torch.zeros(2, 24, dtype=torch.bool)
    pad[1, 17:] = True
    s = st.Session(dict(IDEAL, **{"threshold.keep_rate": 0.3}), record_masks=True)
    with torch.no_grad(), st.wrap(m, s):
        out, _ = m(x, x, x, key_padding_mask=pad)
    s2 = st.Session(dict(IDEAL, **{"threshold.keep_rate": 0.3}))
    with torch.no_grad(), st.wrap(m, s2):
        alone, _ = m(x[1:, :17], x[1:, :17], x[1:, :17])
    torch.testing.assert_close(out[1, :17], alone[0], rtol=1e-5, atol=1e-6)
    assert torch.all(out[1, 17:] == m.out_proj.bias)  # padded queries: output 0
    assert not s.masks[0][0][1][:, :, 17:].any()
    assert s.ledger["pairs"] == 4 * (24 * 24 + 17 * 17)


def test_mha_causal_and_refused_masks():
    m = mha_model(True)
    x = torch.randn(1, 16, 32)
    causal = torch.ones(16, 16, dtype=torch.bool).triu(1)
    s = st.Session({"threshold.keep_rate": 0.4}, record_masks=True)
    with torch.no_grad(), st.wrap(m, s):
        m(x, x, x, attn_mask=causal)
        m(x, x, x, attn_mask=torch.zeros(16, 16).masked_fill(causal, float("-inf")))
        with pytest.raises(ValueError, match="only a causal mask"):
            m(x, x, x, attn_mask=causal.T.contiguous())
        with pytest.raises(ValueError, match="0 / -inf"):
            m(x, x, x, attn_mask=torch.full((16, 16), 0.5))
    for p in s.masks[:2]:
        assert not p[0][0][:, causal.numpy()].any()
        assert p[0][0].any()
    assert s.passes[0]["pairs"] == 4 * 16 * 17 / 2
    with torch.no_grad(), st.wrap(m, st.Session(scheme="exact")):
        ex, _ = m(x, x, x, attn_mask=causal)
    ref, _ = m(x, x, x, attn_mask=causal)
    torch.testing.assert_close(ex, ref, rtol=1e-4, atol=1e-5)


def test_transformer_encoder_exact_and_ledger():
    torch.manual_seed(1)
    layer = torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    enc = torch.nn.TransformerEncoder(layer, 2).eval()
    x = torch.randn(2, 20, 32)
    with torch.no_grad():
        ref = enc(x)
        with st.wrap(enc, st.Session(scheme="exact")):
            out = enc(x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    # the ledger of a pass is the sum of the heads' ledgers: layer 0's
    # inputs are known, so check it against attend() of the same Q, K, V
    s = st.Session({"threshold.keep_rate": 0.3})
    captured = []
    mha0 = enc.layers[0].self_attn
    h = mha0.register_forward_pre_hook(lambda mod, args: captured.append(args[0].detach()))
    with torch.no_grad(), st.wrap(enc, s):
        enc(x)
    h.remove()
    assert len(s.passes) == 1 and s.passes[0]["items"] == 2
    with torch.no_grad():
        q, k, v = (t.reshape(2, 20, 4, 8).transpose(1, 2) for t in
                   torch.nn.functional.linear(captured[0], mha0.in_proj_weight,
                                              mha0.in_proj_bias).chunk(3, -1))
    a = sprintsim.attend(q[1].contiguous().numpy(), k[1].contiguous().numpy(),
                         v[1].contiguous().numpy(), {"threshold.keep_rate": 0.3}, layer=0, trial=1)
    assert a.ledger["energy_total_J"] > 0
    assert s.passes[0]["energy_J"] > a.ledger["energy_total_J"]


class ProjAttention(torch.nn.Module):
    """A user-style attention module: q/k/v/o projections, num_heads."""

    def __init__(self, dim, heads):
        super().__init__()
        self.num_heads = heads
        self.q_proj, self.k_proj, self.v_proj = (torch.nn.Linear(dim, dim) for _ in range(3))
        self.o_proj = torch.nn.Linear(dim, dim)

    def forward(self, x):
        b, n, e = x.shape
        q, k, v = (p(x).reshape(b, n, self.num_heads, -1).transpose(1, 2)
                   for p in (self.q_proj, self.k_proj, self.v_proj))
        a = torch.softmax(q @ k.transpose(-1, -2) / np.sqrt(q.shape[-1]), -1)
        return self.o_proj((a @ v).transpose(1, 2).reshape(b, n, e))


def test_projection_module_and_errors():
    torch.manual_seed(2)
    m = torch.nn.Sequential(ProjAttention(32, 4), torch.nn.ReLU(), ProjAttention(32, 4)).eval()
    x = torch.randn(2, 12, 32)
    assert [k for _, _, k in st.find_attention(m)] == ["proj", "proj"]
    with torch.no_grad():
        ref = m(x)
        with st.wrap(m, st.Session(scheme="exact")):
            out = m(x)
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
        s = st.Session({"threshold.keep_rate": 0.25})
        with st.wrap(m, s):
            pruned = m(x)
    assert not torch.allclose(pruned, ref, atol=1e-3)
    assert 0.15 < s.ledger["kept"] / s.ledger["pairs"] < 0.4
    with pytest.raises(ValueError, match="no attention module"):
        with st.wrap(torch.nn.Linear(3, 3), st.Session()):
            pass
    with pytest.raises(ValueError, match="theta has 1 values"):
        st.Session({"threshold.mode": "learned", "workload.source": "model"}, theta=[0.1]).attention(
            torch.randn(1, 2, 8, 4), torch.randn(1, 2, 8, 4), torch.randn(1, 2, 8, 4), 1)
    with pytest.raises(ValueError, match="shapes"):
        st.Session().attention(torch.randn(1, 2, 8, 4), torch.randn(1, 2, 7, 4),
                               torch.randn(1, 2, 8, 4), 0)
    with pytest.raises(ValueError, match="element"):
        q = torch.randn(1, 2, 8, 4)
        q[0, 1, 2, 3] = float("nan")
        st.Session().attention(q, q, q, 0)
