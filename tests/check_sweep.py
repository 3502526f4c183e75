#!/usr/bin/python3
"""check_sweep.py - check a sweep's outputs against each other and against
a separate `sprintsim run` of one of its points.

    check_sweep.py SWEEP.h5 SWEEP.csv                  consistency only
    check_sweep.py SWEEP.h5 SWEEP.csv POINT RUN.h5     and point POINT (0-based)
                                                       against RUN.h5, the trace
                                                       of `sprintsim run` of
                                                       /points/config_ini[POINT]

The run's totals are recomputed here from its per-head /schemes tables
(sums of energy, cycles and bytes over heads, means of the rest), not
taken from the sweep code.  Exit status 0 when everything agrees.
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
                              "energy_reduction", "bytes_vs_dense"]:
            assert float(r[col]) == res[col][p, k], (p, r["scheme"], col, r[col], res[col][p, k])
    d = schemes.index("dense") if "dense" in schemes else None
    if d is not None:
        assert np.all(res["speedup"][:, d] == 1) and np.all(res["energy_reduction"][:, d] == 1)
        assert np.allclose(res["speedup"], res["cycles"][:, [d]] / res["cycles"], rtol=1e-15)
    print(f"{csvpath}: {len(rows)} rows agree with {h5path}")
    if len(argv) < 5:
        return 0
    p, run = int(argv[3]), h5py.File(argv[4], "r")
    assert run.attrs["complete"] == 1
    # the run used the point's configuration: same seed and keys
    assert text(run["config/ini"][()]) == text(f["points/config_ini"][p]), "configurations differ"
    fields = {"mass_retained": "mass_retained", "rel_fro": "rel_fro", "top1_recall": "top1_recall",
              "cos_mean": "cos_mean", "keep_rate": "keep_rate"}
    worst = 0.0
    for k, s in enumerate(schemes):
        g = run["schemes/" + s]
        mine = {c: float(next(r for r in rows if int(r["point"]) == p and r["scheme"] == s)[c])
                for c in metrics + ["energy_J", "cycles", "keep_rate", "bytes_fetched"]}
        ref = {c: g[fields[c]][:].mean() for c in fields}
        ref["energy_J"] = g["energy_J"][:].sum()
        ref["cycles"] = g["cycles"][:].sum()
        ref["bytes_fetched"] = float(g["bytes_fetched"][:].sum())
        for c, v in mine.items():
            err = abs(v - ref[c]) / max(abs(ref[c]), 1e-300)
            worst = max(worst, err)
            assert err <= 1e-12, (s, c, v, ref[c])
    print(f"point {p}: every scheme's totals equal the separate run's (worst relative difference {worst:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
