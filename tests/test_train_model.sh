#!/bin/sh
# test_train_model.sh - scripts/train_model.py end to end at toy size: a
# dense reference and a pruning-trained model of each kind (a few steps,
# a short evaluation), read by sprintsim, whose exact inference must equal
# PyTorch's recorded predictions (image) and bits per character (text),
# and whose SPRINT with every non-ideality off must keep in layer 0 what
# PyTorch's --quant emulation of the comparators keeps there (the same
# inputs, the same quantisation and threshold grid); the message and exit
# status 2 without PyTorch.  SKIPs (77) when /usr/bin/python3 cannot
# import torch, h5py and numpy, or the data packages are absent.
set -u
B=${top_builddir:-.}
S=${top_srcdir:-.}
PY=/usr/bin/python3
if [ ! -x "$PY" ] || ! "$PY" -c 'import torch, h5py, numpy' 2> /dev/null; then
  echo "SKIP: $PY cannot import torch, h5py and numpy"
  exit 77
fi
T="$B/tests/tmp-train-$$"
rm -rf "$T" && mkdir -p "$T"
T=$(cd "$T" && pwd)
fail=0
ok() { echo "ok - $1"; }
bad() { fail=1; echo "FAILED - $1"; }
TRAIN="$S/scripts/train_model.py"

# without PyTorch (site packages off): a clear message and exit 2
"$PY" -S "$TRAIN" --task vit --stage dense -o "$T/none.h5" > "$T/out" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && grep -q "PyTorch is not installed (Debian: apt-get install python3-torch)" "$T/out" \
   && [ ! -e "$T/none.h5" ]; then
  ok "without torch: exit 2 and how to install it"
else
  bad "without torch: exit $rc"; cat "$T/out"
fi
"$PY" "$TRAIN" --task lm --stage prune -o "$T/x.h5" > "$T/out" 2>&1
[ $? -ne 0 ] && grep -q "needs --init" "$T/out" && [ ! -e "$T/x.h5" ] \
  && ok "prune without --init refused" || bad "prune without --init refused"

# compare a run's exact and SPRINT rows with PyTorch's record (check.py
# below) for model $1, run output $2
cat > "$T/check.py" <<'PYEOF'
import sys, h5py, numpy as np
m, r = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
kind = r.attrs["input"].decode() if isinstance(r.attrs["input"], bytes) else r.attrs["input"]
n = int(r.attrs["items"])
if kind == "image":
    same = (m["eval/pred_exact"][:n] == r["schemes/exact/pred"][:]).mean()
    assert same == 1.0, f"C and PyTorch exact predictions differ on {1 - same:.3f} of the images"
else:
    pt, c = m["eval/nats_exact"][:n], r["schemes/exact/nats"][:]
    err = abs(pt.sum() - c.sum()) / (n * int(r.attrs["tokens"]) * np.log(2))
    assert err < 1e-4, f"bits per character differ by {err}"
if "theta" in m:
    # layer 0 sees the same inputs in C and PyTorch: with every effect off
    # SPRINT keeps what the --quant emulation keeps (up to float rounding at
    # the quantisation boundaries)
    c0 = r["schemes/sprint/keep_rate_layer"][0]
    p0 = m["eval"].attrs["kept_hard_quant"][0]
    assert abs(c0 - p0) < 2e-3, f"layer 0 keep: C {c0}, PyTorch {p0}"
print("ok", f"layer-0 keep C {c0:.5f} PyTorch {p0:.5f}" if "theta" in m else "")
PYEOF

for task in vit lm; do
  if [ $task = vit ]; then
    [ -r /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || { echo "skip - vit: no Fashion-MNIST"; continue; }
    arch="--dim 16 --depth 2 --heads 2 --mlp 16 --batch 32 --eval-limit 40"
    items="images = 40"
  else
    command -v bible > /dev/null 2>&1 || { echo "skip - lm: no bible-kjv"; continue; }
    arch="--dim 16 --depth 2 --heads 2 --mlp 16 --context 64 --batch 4 --eval-limit 6"
    items="windows = 6"
  fi
  # shellcheck disable=SC2086
  if "$PY" "$TRAIN" --task $task --stage dense -o "$T/$task-dense.h5" --steps 12 $arch --threads 1 > "$T/out" 2>&1 \
     && "$PY" "$TRAIN" --task $task --stage prune --init "$T/$task-dense.h5" -o "$T/$task.h5" --quant \
          --soft-steps 8 --hard-steps 8 --warmup 2 $arch --threads 1 > "$T/out" 2>&1; then
    ok "$task: dense and pruning-trained toy models"
  else
    bad "$task: training"; cat "$T/out"; continue
  fi
  printf '[workload]\nsource = model\nmodel = %s.h5\n%s\n[threshold]\nmode = learned\n[crossbar]\nvariation = off\nstuck_at = off\ndrift = off\nir_drop = off\n[analog]\ndac_error = off\nread_noise = off\ncmp_offset = off\ncmp_noise = off\n[baselines]\noracle = off\ntopk = off\nsanger = off\nleopard = off\nwindow = off\n' "$task" "$items" > "$T/$task.ini"
  if "$B/sprintsim" run "$T/$task.ini" -o "$T/$task-run.h5" --threads 2 > "$T/out" 2>&1 \
     && grep -q "^reference " "$T/out"; then
    ok "$task: sprintsim runs the trained files (reference row from the file's attribute)"
  else
    bad "$task: sprintsim run"; cat "$T/out"; continue
  fi
  "$PY" "$T/check.py" "$T/$task.h5" "$T/$task-run.h5" > "$T/out" 2>&1 \
    && ok "$task: C exact = PyTorch; SPRINT's layer-0 keep = PyTorch's quantised emulation ($(cat "$T/out"))" \
    || { bad "$task: C against PyTorch"; cat "$T/out"; }
done

rm -rf "$T"
exit $fail
