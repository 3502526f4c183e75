#!/bin/sh
# make_seeds.sh - (re)generate the seed corpora of tests/fuzz/corpus/ from
# the examples, small files written by sprintsim and h5py, and seeded
# random recipes.  Run from the source tree after a build:
#   tests/fuzz/make_seeds.sh [BUILD_DIR]
# The corpora are committed; this script documents where they came from.
set -eu
cd "$(dirname "$0")/../.."
B=${1:-.}
EXE="$B/sprintsim"
C=tests/fuzz/corpus
rm -rf "$C"
for h in ini calibrate sweep qkv_bytes qkv_struct device_bytes device_struct matrix_bytes \
  matrix_struct model_bytes model_struct; do
  mkdir -p "$C/$h"
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# configurations: the examples and a few long or listed ones
for f in examples/*.ini; do cp "$f" "$C/ini/"; done
long=$(printf '/%s' $(seq -f 'folder%03g' 1 40))
printf '[workload]\nsource = qkv\nqkv_file = %s/q.h5 ; a long path\n[threshold]\nmode = direct\nvalues = 1.5, 2.385,\n  3.25\n' "$long" > "$C/ini/long-path.ini"
printf '[run]\nseed = 18446744073709551615\ntrace = full\n[crossbar]\ng_max = 80 uS\nrows = 128\n[analog]\ncmp_noise_sigma = 200 nA\n' > "$C/ini/units.ini"
cp examples/calibrate.ini "$C/calibrate/"
printf '[crossbar]\nrows = 8\ncols = 8\n[calibrate]\ncmp_overdrives = 0.5 uA, 0.6 uA, 0.7 uA, 0.8 uA, 0.9 uA, 1 uA, 2 uA, 3 uA\nenergy_sizes = 2, 4, 6\n' > "$C/calibrate/overdrives.ini"
printf '[calibrate]\ncmp_samples = 5\ntimeout = 10 s\n' > "$C/calibrate/small.ini"
cp examples/sweep.ini "$C/sweep/"
printf '[workload]\nseq_len = 32\nlayers = 1\nheads = 2\n[sweep]\nthreshold.keep_rate + baselines.topk_fraction = 0.1, 0.2\nschemes = dense, sprint\n' > "$C/sweep/linked.ini"
printf '[workload]\nseq_len = 32\nlayers = 2\nheads = 1\n[threshold]\nmode = direct\n[sweep]\nthreshold.values = 1, 2 | 3, 4\nmax_points = 4\n' > "$C/sweep/lists.ini"
printf '[workload]\nsource = vit\nmodel = model.h5\nimages = 2\n[sweep]\nanalog.cmp_noise_sigma = 0, 1 uA\nschemes = sprint, dense\n' > "$C/sweep/model.ini"

# Q/K/V files: from synth (unbatched, batched with padding), h5py's NULLPAD
printf '[workload]\nseq_len = 4\nlayers = 1\nheads = 2\nhead_dim = 4\n' > "$T/s.ini"
"$EXE" synth "$T/s.ini" -o "$C/qkv_bytes/synth-1x2x4x4.h5" > /dev/null
printf '[workload]\nseq_len = 6\nlayers = 2\nheads = 1\nhead_dim = 2\n' > "$T/s2.ini"
"$EXE" synth "$T/s2.ini" --batch 2 --pad 2 -o "$C/qkv_bytes/synth-batch-pad.h5" > /dev/null
cp tests/data/qkv-nullpad-format.h5 "$C/qkv_bytes/h5py-nullpad.h5"

# device model (the unit tests' model), matrices (float64, float32)
"$B/tests/test_device" --write "$C/device_bytes/model.h5" > /dev/null
# model files: the unit tests' synthetic text and image models (tests/spr_test_model.h)
"$B/tests/test_model" --write-text "$C/model_bytes/text.h5"
"$B/tests/test_model" --write-image "$C/model_bytes/image.h5"
/usr/bin/python3 - "$C" <<'PY'
import sys, shutil, h5py, numpy as np, random
C = sys.argv[1]
with h5py.File(C + "/matrix_bytes/g64.h5", "w") as f: f["G"] = 1e-6 * np.arange(1, 7).reshape(2, 3)
with h5py.File(C + "/matrix_bytes/g32.h5", "w") as f:
    f["G"] = (1e-5 * np.ones((3, 3))).astype(np.float32)
    f["G"].attrs["unit"] = np.bytes_("S")
# the text model with h5py's strings: NULLPAD format and input, a
# variable-length reference
shutil.copy(C + "/model_bytes/text.h5", C + "/model_bytes/h5py-strings.h5")
with h5py.File(C + "/model_bytes/h5py-strings.h5", "r+") as f:
    for k in ("format", "input"):
        v = f.attrs[k]
        del f.attrs[k]
        f.attrs[k] = np.bytes_(v)
    del f.attrs["reference"]
    f.attrs["reference"] = "text-dense.h5"
r = random.Random(2385)
for h in ("qkv_struct", "device_struct", "matrix_struct", "model_struct"):
    for k in range(8):
        open("%s/%s/seed-%d" % (C, h, k), "wb").write(bytes(r.randrange(256) for _ in range(64)))
PY
ls -R "$C" | head -60
