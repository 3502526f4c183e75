#!/usr/bin/env python3
"""Recompute every decision and count of a `full` sprintsim trace with h5py
and numpy, independently of the C code (used by tests/test_cli.sh when
h5py is available).

    tests/check_trace.py FILE.h5
"""
import sys

import h5py
import numpy as np


def main(path):
    with h5py.File(path, "r") as f:
        assert f.attrs["complete"] == 1, "trace not marked complete"
        assert f.attrs["program"].decode() == "sprintsim"
        assert f.attrs["trace_level"].decode() == "full"
        s = f["summary"]
        L, H, n = int(s.attrs["layers"]), int(s.attrs["heads"]), int(s.attrs["seq_len"])
        shift = int(f["config/crossbar/key_bits"][()]) - int(f["config/crossbar/key_msb_bits"][()])
        # causal heads decide the pairs j <= i only (older traces: not causal)
        causal = int(s.attrs["causal"]) if "causal" in s.attrs else 0
        tri = np.tril(np.ones((n, n), dtype=bool)) if causal else np.ones((n, n), dtype=bool)
        checked = 0
        for l in range(L):
            for h in range(H):
                g = f[f"layers/layer_{l:02d}/head_{h:02d}"]
                thr = g.attrs["threshold"]
                assert thr == s["threshold"][l, h]
                assert int(g.attrs.get("causal", 0)) == causal
                q = g["q_int"][:].astype(np.int64)
                k = g["k_int"][:].astype(np.int64)
                km = g["k_msb"][:].astype(np.int64)
                assert np.array_equal(km, np.floor_divide(k, 2 ** shift)), "k_msb != floor(k_int / 2^shift)"
                ideal = g["ideal_scores"][:].astype(np.int64)
                assert np.array_equal(ideal, q @ km.T), "ideal scores != q_int k_msb^T"
                analog = g["analog_scores"][:]
                ma = np.unpackbits(g["mask_analog"][:], axis=1, bitorder="little")[:, :n].astype(bool)
                mi = np.unpackbits(g["mask_ideal"][:], axis=1, bitorder="little")[:, :n].astype(bool)
                assert np.array_equal(np.isnan(analog), ~tri), "NaN scores are not the undecided pairs"
                with np.errstate(invalid="ignore"):
                    assert np.array_equal(ma, tri & (analog.astype(np.float64) >= thr)), "analog mask != analog_scores >= threshold"
                assert np.array_equal(mi, tri & (ideal >= thr)), "ideal mask != ideal_scores >= threshold"
                assert ma.sum() == s["n_kept"][l, h]
                assert mi.sum() == s["n_ideal_kept"][l, h]
                assert (mi & ~ma).sum() == s["false_prunes"][l, h]
                assert (ma & ~mi).sum() == s["false_keeps"][l, h]
                assert abs(ma.sum() / tri.sum() - s["keep_rate"][l, h]) < 1e-12
                checked += 1
    print(f"check_trace: {checked} {'causal ' if causal else ''}heads recomputed, all decisions and counts agree")


if __name__ == "__main__":
    main(sys.argv[1])
