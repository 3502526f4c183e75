"""The numpy side of `import sprintsim`: configurations, run, attend,
sweep, read_trace and every error path, against the C program's own
results and brute-force numpy references."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import sprintsim
from conftest import run_cli, src

# a small attention workload: 2 layers x 2 heads, N = 48, d = 16
SMALL = {"workload.layers": 2, "workload.heads": 2, "workload.seq_len": 48,
         "workload.head_dim": 16, "threshold.keep_rate": 0.23, "run.seed": 7,
         "baselines.topk": True}
# every non-ideality off: the analog decisions are the ideal ones
IDEAL = {"crossbar.variation": False, "crossbar.stuck_at": False, "crossbar.drift": False,
         "crossbar.ir_drop": "off", "analog.dac_error": False, "analog.read_noise": False,
         "analog.cmp_offset": False, "analog.cmp_noise": False}


def sets(d):
    out = []
    for k, v in d.items():
        out += ["--set", f"{k}={sprintsim.config.format_value(v)}"]
    return out


# --- configurations ----------------------------------------------------------

def test_version_is_the_programs():
    r = run_cli("--version", check=False)
    assert sprintsim.__version__ in (r.stdout + r.stderr)
    assert sprintsim.__version__.count(".") == 2


def test_config_defaults_overrides_and_types():
    c = sprintsim.Config({"threshold.keep_rate": 0.385, "analog.cmp_noise_sigma": "20 nA",
                          "crossbar.variation": False, "run.seed": 2385})
    assert c["threshold.keep_rate"] == 0.385
    assert c["analog.cmp_noise_sigma"] == pytest.approx(20e-9)
    assert c["crossbar.variation"] is False
    assert c["run.seed"] == 2385
    d = sprintsim.Config()
    assert d["threshold.keep_rate"] != 0.385
    ini = c.to_ini()
    assert "keep_rate" in ini and "0.385" in ini


def test_config_ini_path_plus_overrides():
    c = sprintsim.Config(src("examples", "vit.ini"), {"workload.images": 17})
    assert c["workload.images"] == 17
    assert c["threshold.mode"] == "learned"
    assert c["workload.model"].endswith("models/vit-fmnist.h5")


def test_bad_value_carries_the_c_message():
    with pytest.raises(ValueError) as e:
        sprintsim.Config({"threshold.keep_rate": 2.385})
    assert isinstance(e.value, sprintsim.ConfigError)
    msg = str(e.value)
    assert "threshold.keep_rate" in msg and "2.385" in msg
    # the command line reports the same message after its own prefix
    r = run_cli("config", "--set", "threshold.keep_rate=2.385", check=False)
    cli_msg = r.stderr.strip().split("--set threshold.keep_rate=2.385: ", 1)[-1]
    assert msg.endswith(cli_msg), (msg, r.stderr)


def test_unknown_key_is_a_key_error():
    with pytest.raises(KeyError) as e:
        sprintsim.Config({"threshold.keep_rat": 0.2})
    assert "keep_rat" in str(e.value)
    with pytest.raises(KeyError):
        sprintsim.Config()["crossbar.nonsense"]
    with pytest.raises(KeyError):
        sprintsim.key_doc("nosection.key")
    with pytest.raises(TypeError):
        sprintsim.Config({3: 1})


def test_bad_enum_and_missing_file():
    with pytest.raises(ValueError) as e:
        sprintsim.Config({"threshold.mode": "sometimes"})
    assert "sometimes" in str(e.value)
    with pytest.raises(OSError) as e:
        sprintsim.Config("/nonexistent/dir/run.ini")
    assert "/nonexistent/dir/run.ini" in str(e.value)
    with pytest.raises(TypeError):
        sprintsim.Config(3.5)


# --- runs ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    trace = tmp_path_factory.mktemp("run") / "small.h5"
    return sprintsim.run(SMALL, threads=2, trace=trace)


def test_run_matches_the_cli_json(small_run, tmp_path):
    r = run_cli("run", "--format", "json", "-o", str(tmp_path / "cli.h5"), "--threads", "1",
                *sets(SMALL))
    doc = json.loads(r.stdout)
    cli_schemes = {row["scheme"]: row for row in doc["schemes"]}
    assert list(cli_schemes) == list(small_run.schemes)
    assert {"sprint", "dense", "topk"} <= set(small_run.schemes)
    for name, row in cli_schemes.items():
        mine = small_run.schemes[name]
        for k in ("keep_rate", "bytes_fetched", "energy_J", "cycles", "speedup",
                  "energy_reduction", "rel_fro", "cos_mean", "cos_min", "mass_retained",
                  "top1_recall"):
            assert mine[k] == pytest.approx(row[k], rel=1e-12, abs=1e-300), (name, k)
    layers = doc["layers"]
    assert len(layers) == len(small_run.layers) == 3
    for row, mine in zip(layers, small_run.layers):
        for k in ("keep_rate", "ideal_keep_rate", "false_prune_rate", "mass_retained",
                  "threshold_min", "threshold_max"):
            assert mine[k] == pytest.approx(row[k], rel=1e-12), k
    assert small_run.heads.shape == (4,)
    assert list(small_run.heads["layer"]) == [0, 0, 1, 1]
    assert list(small_run.scheme_rows["scheme"]) == list(cli_schemes)


def test_run_is_thread_count_independent(small_run):
    one = sprintsim.run(SMALL, threads=1)
    for name in small_run.schemes:
        assert one.schemes[name] == small_run.schemes[name]


def test_read_trace_gives_the_run_back(small_run):
    t = sprintsim.read_trace(small_run.trace)
    assert t.kind == "run"
    assert t.provenance["version"] == sprintsim.__version__
    assert t.provenance["complete"] == 1
    assert t.config["run.seed"] == 7 and t.config["threshold.keep_rate"] == 0.23
    s = t.tables["summary"]
    np.testing.assert_array_equal(s["threshold"], small_run.heads["threshold"])
    np.testing.assert_array_equal(s["keep_rate"], small_run.heads["analog_keep_rate"])
    np.testing.assert_array_equal(s["false_prunes"], small_run.heads["false_prunes"])
    sp = t.tables["schemes/sprint"]
    np.testing.assert_array_equal(sp["energy_J"], small_run.scheme_heads["sprint"]["energy_J"])
    assert "[threshold]" in t.ini


def test_read_trace_masks_at_level_masks(tmp_path):
    p = tmp_path / "m.h5"
    sprintsim.run(dict(SMALL, **{"run.trace": "masks", "workload.layers": 1}), threads=1, trace=p)
    t = sprintsim.read_trace(p)
    m = t.masks(0, 1)
    assert m.shape == (48, 48) and m.dtype == bool
    assert m.sum() == t.tables["summary"]["n_kept"][1]


def test_read_trace_errors(tmp_path):
    with pytest.raises(OSError):
        sprintsim.read_trace(tmp_path / "none.h5")
    import h5py
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(ValueError, match="neither a run trace"):
        sprintsim.read_trace(tmp_path / "other.h5")


def test_run_errors(tmp_path):
    with pytest.raises(ValueError, match="threads"):
        sprintsim.run(SMALL, threads=0)
    with pytest.raises(OSError) as e:
        sprintsim.run(SMALL, threads=1, trace=tmp_path / "no" / "dir" / "t.h5")
    assert "no/dir" in str(e.value)
    # a model configuration whose model file does not exist
    with pytest.raises(OSError) as e:
        sprintsim.run({"workload.source": "model", "workload.model": str(tmp_path / "m.h5")},
                      threads=1)
    assert "m.h5" in str(e.value)


# --- single heads --------------------------------------------------------------

def qkv_layer(layer=0):
    import h5py
    with h5py.File(src("examples", "qkv-example.h5"), "r") as f:
        g = f[f"layer_{layer}"]
        return g["Q"][0], g["K"][0], g["V"][0]  # item 0: (H, N, d)


def test_attend_layer_equals_the_run_of_the_same_qkv():
    cfg = {"workload.source": "qkv", "workload.qkv_file": src("examples", "qkv-example.h5"),
           "threshold.keep_rate": 0.3, "run.seed": 11}
    r = sprintsim.run(cfg, threads=1)
    for layer in (0, 1):
        Q, K, V = qkv_layer(layer)
        a = sprintsim.attend(Q, K, V, cfg, layer=layer)
        rows = r.heads[r.heads["layer"] == layer]
        np.testing.assert_array_equal(a.stats["threshold"], rows["threshold"])
        np.testing.assert_array_equal(a.stats["analog_keep_rate"], rows["analog_keep_rate"])
        np.testing.assert_array_equal(a.stats["false_keeps"], rows["false_keeps"])
        sp = r.scheme_heads["sprint"]
        np.testing.assert_array_equal(a.stats["energy_J"], sp[sp["layer"] == layer]["energy_J"])
        assert a.mask.shape == Q.shape[:2] + (Q.shape[1],)
        assert a.mask.sum(axis=(1, 2)).tolist() == rows["n_kept"].astype(int).tolist()


def quant(x, bits):
    qmax = (1 << (bits - 1)) - 1
    m = np.float32(np.abs(x).max())
    s = np.float32(m / np.float32(qmax))
    return np.clip(np.rint(x / s), -qmax, qmax).astype(np.int64), s


def test_attend_ideal_head_against_brute_force():
    rng = np.random.default_rng(2385)
    n, d = 40, 16
    Q = rng.standard_normal((n, d)).astype(np.float32)
    K = (Q[rng.permutation(n)] + 0.3 * rng.standard_normal((n, d))).astype(np.float32)
    V = rng.standard_normal((n, d)).astype(np.float32)
    cfg = dict(IDEAL, **{"threshold.keep_rate": 0.3})
    a = sprintsim.attend(Q, K, V, cfg, layer=0, head=0)
    # SPRINT's scores: 4-bit queries, the 4 MSBs of 8-bit keys (floor)
    q, _ = quant(Q, 4)
    k8, _ = quant(K, 8)
    kmsb = np.floor_divide(k8, 16)
    u = q @ kmsb.T
    thr = a.stats["threshold"][0]
    np.testing.assert_array_equal(a.mask, u >= thr)
    np.testing.assert_array_equal(a.ideal_mask, a.mask)
    assert a.stats["n_kept"][0] == a.mask.sum()
    # the recompute: 8-bit Q, K and V codes, softmax over the survivors
    q8, sq = quant(Q, 8)
    v8, sv = quant(V, 8)
    _, sk = quant(K, 8)
    s = (q8 @ k8.T).astype(np.float64) * float(sq) * float(sk) / np.sqrt(d)
    s = np.where(a.mask, s, -np.inf)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p = np.where(a.mask, p, 0)
    p /= p.sum(axis=1, keepdims=True)
    ref = p @ (v8 * float(sv))
    np.testing.assert_allclose(a.output, ref, rtol=2e-4, atol=2e-5)
    # ledger: components add up to the total
    assert sum(a.ledger["energy_J"].values()) == pytest.approx(a.ledger["energy_total_J"], rel=1e-12)
    assert a.ledger["energy_total_J"] > 0


def test_attend_exact_and_dense():
    Q, K, V = (x[0] for x in qkv_layer(0))
    ex = sprintsim.attend(Q, K, V, scheme="exact")
    s = Q.astype(np.float64) @ K.T / np.sqrt(Q.shape[1])
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(ex.output, p @ V, rtol=1e-4, atol=1e-5)
    assert ex.mask is None
    dn = sprintsim.attend(Q, K, V, scheme="dense")
    assert dn.stats["keep_rate"][0] == 1.0
    assert dn.ledger["energy_total_J"] > 0
    # the recompute's 8-bit codes move the output by a few percent at most
    assert np.linalg.norm(dn.output - ex.output) / np.linalg.norm(ex.output) < 0.05


def test_attend_streams_follow_layer_head_trial():
    Q, K, V = (x[1] for x in qkv_layer(0))
    noisy = {"analog.cmp_noise_sigma": "10 uA", "threshold.keep_rate": 0.4}
    a = sprintsim.attend(Q, K, V, noisy, trial=3)
    b = sprintsim.attend(Q, K, V, noisy, trial=3)
    c = sprintsim.attend(Q, K, V, noisy, trial=4)
    h = sprintsim.attend(Q, K, V, noisy, trial=3, head=1)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert (a.mask != c.mask).any() and (a.mask != h.mask).any()
    # a head of a layer is the same as that head alone at its index
    two = sprintsim.attend(np.stack([Q, Q]), np.stack([K, K]), np.stack([V, V]),
                           dict(noisy, **{"threshold.per_head": True}), trial=3)
    np.testing.assert_array_equal(two.mask[1], h.mask)


@pytest.mark.parametrize("bad, match", [
    (lambda Q: Q.astype(np.int32), "Q: dtype int32"),
    (lambda Q: Q.astype(np.complex64), "Q: dtype complex64"),
    (lambda Q: np.asfortranarray(Q), "Q: the array is not C-contiguous"),
    (lambda Q: Q[:, ::2], "Q: the array is not C-contiguous"),
    (lambda Q: Q[0], r"Q: shape \(16,\)"),
    (lambda Q: np.where(np.arange(Q.size).reshape(Q.shape) == 37, np.nan, Q).astype(np.float32),
     r"Q: element \(2, 5\) is nan"),
    (lambda Q: Q.tolist(), "Q: expected a numpy array"),
])
def test_attend_bad_arrays(bad, match):
    Q, K, V = (x[0] for x in qkv_layer(0))
    Q = np.ascontiguousarray(Q[:, :16])
    K, V = np.ascontiguousarray(K[:, :16]), np.ascontiguousarray(V[:, :16])
    with pytest.raises(ValueError, match=match):
        sprintsim.attend(bad(Q), K, V)


def test_attend_other_errors():
    Q, K, V = (x[0] for x in qkv_layer(0))
    with pytest.raises(ValueError, match="K: element"):
        K2 = K.copy()
        K2[3, 1] = np.inf
        sprintsim.attend(Q, K2, V)
    with pytest.raises(ValueError, match="differ"):
        sprintsim.attend(Q, K[:-1], V)
    with pytest.raises(ValueError, match="n >= 2"):
        sprintsim.attend(Q[:1], K[:1], V[:1])
    with pytest.raises(ValueError, match="scheme 'sprnt'"):
        sprintsim.attend(Q, K, V, scheme="sprnt")
    with pytest.raises(ValueError, match="layer=-1"):
        sprintsim.attend(Q, K, V, layer=-1)
    # a baseline switched off in the configuration: the C message
    with pytest.raises(sprintsim.ConfigError, match="oracle"):
        sprintsim.attend(Q, K, V, {"baselines.oracle": False}, scheme="oracle")
    # learned thresholds need theta
    # learned thresholds are a model file's: the key table wants source model
    with pytest.raises(ValueError, match="needs workload.source = model"):
        sprintsim.attend(Q, K, V, {"threshold.mode": "learned"})
    learned = {"threshold.mode": "learned", "workload.source": "model"}
    with pytest.raises(ValueError, match="learned threshold is nan"):
        sprintsim.attend(Q, K, V, learned)
    # direct thresholds outside the generator's range: the C message
    with pytest.raises(ValueError, match="threshold"):
        sprintsim.attend(Q, K, V, {"threshold.mode": "direct", "threshold.values": 1e9,
                                   "threshold.range": 100})
    # float64 is converted, learned theta used
    a = sprintsim.attend(Q.astype(np.float64), K.astype(np.float64), V.astype(np.float64),
                         learned, theta=0.25)
    assert 0 < a.stats["analog_keep_rate"][0] < 1


def test_missing_library_gives_an_import_error():
    env = dict(os.environ, SPRINTSIM_LIB="/nonexistent/libsprintsim.so")
    r = subprocess.run([sys.executable, "-c", "import sprintsim"], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 1
    assert "ImportError" in r.stderr and "scripts/setup" in r.stderr
    assert "/nonexistent/libsprintsim.so" in r.stderr


# --- sweeps ---------------------------------------------------------------------

def test_sweep_rows_equal_runs_of_the_points():
    base = dict(SMALL, **{"workload.layers": 1, "baselines.topk": False})
    rows = sprintsim.sweep(base, {"threshold.keep_rate": [0.1, 0.35]}, threads=2,
                           schemes=["sprint", "dense"])
    assert list(rows["point"]) == [0, 0, 1, 1]
    assert list(rows["scheme"]) == ["sprint", "dense"] * 2
    assert list(rows["threshold.keep_rate"]) == ["0.1", "0.1", "0.35", "0.35"]
    for p, kr in enumerate((0.1, 0.35)):
        r = sprintsim.run(dict(base, **{"threshold.keep_rate": kr}), threads=1)
        for row in rows[rows["point"] == p]:
            s = r.schemes[row["scheme"]]
            assert row["energy_J"] == pytest.approx(s["energy_J"], rel=1e-12)
            assert row["keep_rate"] == pytest.approx(s["keep_rate"], rel=1e-12)
            assert row["mass_retained"] == pytest.approx(s["mass_retained"], rel=1e-12)
    assert rows.to_pandas if hasattr(rows, "to_pandas") else False


def test_sweep_errors():
    with pytest.raises(ValueError, match="grid"):
        sprintsim.sweep(SMALL, {"threshold.keep_rate": []})
    with pytest.raises(ValueError) as e:
        sprintsim.sweep(SMALL, {"threshold.keep_rate": [0.1, 7]})
    assert "threshold.keep_rate" in str(e.value)
    with pytest.raises(KeyError):
        sprintsim.sweep({"threshold.kep": 0.1}, {"threshold.keep_rate": [0.1]})
    with pytest.raises(ValueError, match="schemes"):
        sprintsim.sweep(SMALL, {"threshold.keep_rate": [0.1]}, schemes=["nonsense"])


def test_to_pandas_or_a_clear_import_error(small_run):
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="python3-pandas"):
            small_run.scheme_rows.to_pandas()
    else:
        df = small_run.scheme_rows.to_pandas()
        assert list(df["scheme"]) == list(small_run.schemes)
