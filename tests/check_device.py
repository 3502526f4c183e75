#!/usr/bin/python3
"""check_device.py DEVICE.h5 - recheck a calibration's fits from the raw data
it stores, independently of sprintsim (h5py + numpy + the standard library):

* cmp_offset_mean / cmp_offset_sigma: mean and unbiased sigma of
  /data/cmp_trip minus i_ref (/data/cmp_reference[0]);
* thermal_excess: the least-squares F of var = F thermal with relative
  residuals (/data/noise_var, /data/noise_thermal): the minimiser of
  sum (1 - F r)^2 with r = thermal / var, F = sum(r) / sum(r^2);
* cmp_noise_sigma: mean of /data/cmp_noise_sigma;
* cmp_energy: mean of the energies in /data/cmp_step;
* imc_mac_energy: the slope of a straight-line fit of /data/read_energy
  with relative residuals;
* ir_alpha_*: recomputing them needs the first-order A, B terms; instead
  the stored ngspice currents must equal the nodal ones to 1e-6;
* every fitted value lies in its 95% interval.
Exit status 0 when every check holds, 1 otherwise (the failures printed)."""
import sys
import h5py
import numpy as np


def main(path):
    f = h5py.File(path, "r")
    P = {k: (float(f["params"][k][()]), f["params"][k].attrs) for k in f["params"]}
    D = f["data"]
    bad = []

    def close(name, got, want, tol):
        if not abs(got - want) <= tol * abs(want):
            bad.append(f"{name}: file {got!r}, recomputed {want!r}")

    for k, (v, a) in P.items():
        if not (a["ci95_lo"] <= v <= a["ci95_hi"]):
            bad.append(f"{k}: {v} outside [{a['ci95_lo']}, {a['ci95_hi']}]")
    iref = D["cmp_reference"][0]
    off = D["cmp_trip"][:] - iref
    close("cmp_offset_mean", P["cmp_offset_mean"][0], off.mean(), 1e-9)
    close("cmp_offset_sigma", P["cmp_offset_sigma"][0], off.std(ddof=1), 1e-9)
    if P["cmp_offset_sigma"][1]["n_points"] != off.size:
        bad.append("cmp_offset_sigma: n_points is not the number of stored trips")
    r = D["noise_thermal"][:] / D["noise_var"][:]
    close("thermal_excess", P["thermal_excess"][0], r.sum() / (r * r).sum(), 1e-9)
    close("cmp_noise_sigma", P["cmp_noise_sigma"][0], D["cmp_noise_sigma"][:].mean(), 1e-12)
    close("cmp_energy", P["cmp_energy"][0], D["cmp_step"][:, 2].mean(), 1e-12)
    e = D["read_energy"][:]
    X = np.column_stack([e[:, 0], np.ones(len(e))]) / e[:, 1:2]
    coef = np.linalg.lstsq(X, np.ones(len(e)), rcond=None)[0]
    close("imc_mac_energy", P["imc_mac_energy"][0], coef[0], 1e-6)
    if "ir_I_spice" in D:
        s = D["ir_I_spice"][:]
        for i in range(0, len(s), 2):
            d = np.abs(s[i] - s[i + 1]).max() / np.abs(s[i + 1]).max()
            if not d <= 1e-6:
                bad.append(f"ir_I_spice: ngspice and nodal differ by {d}")
    for b in bad:
        print("FAILED:", b)
    if not bad:
        print(f"{path}: {len(P)} parameters recomputed from {len(D)} data arrays")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
