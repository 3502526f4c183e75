#!/usr/bin/python3
"""check_sweep.py - check a sweep's outputs against each other and against
a separate `sprintsim run` of one of its points.

    check_sweep.py SWEEP.h5 SWEEP.csv                  consistency only
    check_sweep.py SWEEP.h5 SWEEP.csv POINT RUN.h5 ... and point POINT (0-based)
                                                       against RUN.h5, the output
                                                       of `sprintsim run` of
                                                       /points/config_ini[POINT]
                                                       (any number of pairs)

Attention sweeps: the run's totals are recomputed here from its per-head
/schemes tables (sums of energy, cycles and bytes over heads, means of the
rest), not taken from the sweep code.  Model sweeps (evaluators
"image-model", "text-model"): top-1, agreement, bits per character and the
losses against the reference are recomputed from the run's per-item
predictions, labels and nats, energy, cycles and bytes summed from its
per-item arrays, and every value must equal the sweep's (exactly, or to
1e-12 for sums of nats; the point ran the same items in the same order).
Exit status 0 when everything agrees.
"""
import csv
import sys

import h5py
import numpy as np


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def main(argv):
    h5path, csvpath = argv[1], argv[2]
    f = h5py.File(h5path, "r")
    assert f.attrs["complete"] == 1 and text(f.attrs["kind"]) == "sweep"
    schemes = [text(s) for s in f["results/scheme"][:]]
    metrics = text(f.attrs["accuracy_metrics"]).split(",")
    P = int(f.attrs["n_points"])
    res = {k: f["results/" + k][:] for k in f["results"] if k != "scheme"}
    rows = list(csv.DictReader(open(csvpath, newline="")))
    assert len(rows) == P * len(schemes), (len(rows), P, len(schemes))
    nax = len(f["axes"])
    axes = [text(f[f"axes/axis_{a}"].attrs["key"]) for a in range(nax)]
    vidx = f["points/value_index"][:]
    for r in rows:  # CSV and HDF5 hold the same numbers
        p, k = int(r["point"]), schemes.index(r["scheme"])
        for a, key in enumerate(axes):
            assert r[key] == text(f[f"axes/axis_{a}/value"][vidx[p, a]]), (p, key)
        for col in metrics + ["energy_J", "cycles", "keep_rate", "bytes_fetched", "speedup",
                              "energy_reduction", "bytes_vs_dense", "speedup_vs_tiled",
                              "energy_reduction_vs_tiled"]:
            a, b = float(r[col]), res[col][p, k]
            assert a == b or (np.isnan(a) and np.isnan(b)), (p, r["scheme"], col, r[col], b)
    d = schemes.index("dense") if "dense" in schemes else None
    if d is not None:
        assert np.all(res["speedup"][:, d] == 1) and np.all(res["energy_reduction"][:, d] == 1)
        assert np.allclose(res["speedup"], res["cycles"][:, [d]] / res["cycles"], rtol=1e-15)
    t = schemes.index("dense_tiled") if "dense_tiled" in schemes else None
    if t is not None:  # ratios against dense_tiled, recomputed
        assert np.all(res["speedup_vs_tiled"][:, t] == 1)
        assert np.allclose(res["energy_reduction_vs_tiled"],
                           res["energy_J"][:, [t]] / res["energy_J"], rtol=1e-15)
        assert np.allclose(res["speedup_vs_tiled"], res["cycles"][:, [t]] / res["cycles"], rtol=1e-15)
    else:
        assert np.all(np.isnan(res["speedup_vs_tiled"]))
    print(f"{csvpath}: {len(rows)} rows agree with {h5path}")
    if len(argv) < 5:
        return 0
    for i in range(3, len(argv) - 1, 2):
        p, run = int(argv[i]), h5py.File(argv[i + 1], "r")
        if text(f.attrs["evaluator"]) in ("image-model", "text-model"):
            check_model_point(f, rows, schemes, metrics, p, run)
        else:
            check_attention_point(f, rows, schemes, metrics, p, run)
    return 0


def row_of(rows, p, s, cols):
    r = next(r for r in rows if int(r["point"]) == p and r["scheme"] == s)
    return {c: float(r[c]) for c in cols}


def check_attention_point(f, rows, schemes, metrics, p, run):
    assert run.attrs["complete"] == 1
    # the run used the point's configuration: same seed and keys
    assert text(run["config/ini"][()]) == text(f["points/config_ini"][p]), "configurations differ"
    fields = {"mass_retained": "mass_retained", "rel_fro": "rel_fro", "top1_recall": "top1_recall",
              "cos_mean": "cos_mean", "keep_rate": "keep_rate"}
    worst = 0.0
    for k, s in enumerate(schemes):
        g = run["schemes/" + s]
        mine = row_of(rows, p, s, metrics + ["energy_J", "cycles", "keep_rate", "bytes_fetched"])
        ref = {c: g[fields[c]][:].mean() for c in fields}
        ref["energy_J"] = g["energy_J"][:].sum()
        ref["cycles"] = g["cycles"][:].sum()
        ref["bytes_fetched"] = float(g["bytes_fetched"][:].sum())
        for c, v in mine.items():
            err = abs(v - ref[c]) / max(abs(ref[c]), 1e-300)
            worst = max(worst, err)
            assert err <= 1e-12, (s, c, v, ref[c])
    print(f"point {p}: every scheme's totals equal the separate run's (worst relative difference {worst:.1e})")


def check_model_point(f, rows, schemes, metrics, p, run):
    assert text(run.attrs["format"]) == "sprintsim-model-eval"
    assert text(run["config/ini"][()]) == text(f["points/config_ini"][p]), "configurations differ"
    image = text(run.attrs["input"]) == "image"
    has_ref = "reference" in run["schemes"]
    n = int(run.attrs["items"])
    if image:
        labels = run["labels"][:]
        exact = run["schemes/exact/pred"][:]
        ok_exact = int((exact == labels).sum())
        ok_ref = int((run["schemes/reference/pred"][:] == labels).sum()) if has_ref else None
        ok_base = ok_ref if has_ref else ok_exact
    else:
        bits = n * int(run.attrs["tokens"]) * np.log(2)
        nats_exact = run["schemes/exact/nats"][:].sum()
        nats_ref = run["schemes/reference/nats"][:].sum() if has_ref else None
        nats_base = nats_ref if has_ref else nats_exact
    for s in schemes:
        g = run["schemes/" + s]
        ref = {
            "energy_J": g.attrs["energy_J"],  # the run's own total, in item order
            "cycles": g.attrs["cycles"],
            "keep_rate": g.attrs["keep_rate"],
            "bytes_fetched": float(g["bytes_fetched"][:].sum()),
        }
        if image:
            pred = g["pred"][:]
            ok = int((pred == labels).sum())
            ref.update(top1=ok / n, agreement=int((pred == exact).sum()) / n,
                       top1_exact=ok_exact / n, top1_reference=ok_ref / n if has_ref else np.nan,
                       loss_pp=100.0 * (ok_base - ok) / n)
        else:
            nats = g["nats"][:].sum()
            ref.update(bpc=nats / bits, bpc_exact=nats_exact / bits,
                       bpc_reference=nats_ref / bits if has_ref else np.nan,
                       loss_pct=100.0 * (nats - nats_base) / nats_base)
        # the per-item arrays add up to the totals (independent of the order of a sum)
        assert np.isclose(g["energy_J"][:].sum(), ref["energy_J"], rtol=1e-12, atol=0)
        assert np.isclose(g["cycles"][:].sum(), ref["cycles"], rtol=1e-12, atol=0)
        mine = row_of(rows, p, s, metrics + ["energy_J", "cycles", "keep_rate", "bytes_fetched"])
        for c, v in mine.items():
            if np.isnan(ref[c]):
                assert np.isnan(v), (p, s, c, v)
            elif image or c in ("energy_J", "cycles", "keep_rate", "bytes_fetched"):
                assert v == ref[c], (p, s, c, v, ref[c])
            else:
                assert abs(v - ref[c]) <= 1e-12 * max(1.0, abs(ref[c])), (p, s, c, v, ref[c])
    what = (f"{n} images, exact top-1 {ok_exact / n:.4f}" if image
            else f"{n} windows, exact {nats_exact / bits:.4f} bits/char")
    print(f"point {p}: every scheme's row equals the separate run's ({what})")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
