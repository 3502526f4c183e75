#!/bin/sh
# test_reliability.sh - the command on hostile and changing inputs, on
# full filesystems, and configurations it writes read back:
#   - every reproducer of tests/data/hdf5-crashers through the command
#     that reads its kind of file (config, run, crossbar), as a model
#     file (run with workload.source = model) and through report: exit 1,
#     one message naming the file, no crash, no hang;
#   - a Q/K/V file truncated while run reads it: refused, no trace;
#   - a model run too large for the memory: refused before it starts;
#   - writers on a full filesystem (see the section below);
#   - resolved configurations with long lines read back.
set -u
if [ "${1:-}" = "--tmpfs" ]; then TMPFS_PART=1; else TMPFS_PART=0; fi
B=${top_builddir:-.}
S=${top_srcdir:-.}
S=$(cd "$S" && pwd)
EXE="$(cd "$B" && pwd)/sprintsim"
T="$(cd "$B" && pwd)/tests/tmp-rel-$$"
[ "$TMPFS_PART" -eq 1 ] && T="$2"
[ "$TMPFS_PART" -eq 1 ] || { rm -rf "$T" && mkdir -p "$T"; }
. "${top_srcdir:-.}/tests/spr_test.sh"

notmp() { ! ls "$1".tmp* > /dev/null 2>&1; }

# --- inputs of the writers ------------------------------------------------
mkinputs() {
  printf '[workload]\nseq_len = 64\nlayers = 2\nheads = 4\nhead_dim = 32\n' > "$T/s.ini"
  printf '[workload]\nseq_len = 64\nlayers = 2\nheads = 2\n[run]\ntrace = masks\n' > "$T/r.ini"
  printf '[workload]\nseq_len = 32\nlayers = 1\nheads = 2\n[sweep]\nthreshold.keep_rate = 0.1, 0.2\nschemes = dense, sprint\n' > "$T/w.ini"
  "$B/tests/test_model" --write-text "$T/lm.h5" > /dev/null 2>&1
  printf '[workload]\nsource = model\nmodel = lm.h5\nwindows = 2\n' > "$T/m.ini"
  printf '[crossbar]\nrows = 8\ncols = 8\n[calibrate]\niv_levels = 2\niv_points = 5\nir_arrays = 1\nir_spice_arrays = 1\nir_inputs = 2\nnoise_arrays = 1\nnoise_cols = 2\ncmp_samples = 3\ncmp_noise_samples = 3\ncmp_overdrives = 0.5 uA, 1 uA, 2 uA\nenergy_sizes = 2, 4, 6\n' > "$T/c.ini"
  "$EXE" synth "$T/s.ini" -o "$T/G-src.h5" > /dev/null 2>&1
  /usr/bin/python3 - "$T" <<'PY' 2> /dev/null
import sys, h5py, numpy as np
r = np.random.default_rng(0)
with h5py.File(sys.argv[1] + "/G.h5", "w") as f: f["G"] = 1e-6 + 99e-6 * r.random((64, 64))
with h5py.File(sys.argv[1] + "/V.h5", "w") as f: f["V"] = 0.2 * (2 * r.random((100, 64)) - 1)
PY
}

# write WHAT OUT [ARG]: run writer WHAT (synth, crossbar, run, model: run
# of a model file, sweep, calibrate) writing OUT in the folder of OUT
write() {
  case $1 in
    synth) "$EXE" synth "$T/s.ini" --batch 2 --pad 4 -o "$2" ;;
    model) "$EXE" run "$T/m.ini" --threads 1 -o "$2" ;;
    crossbar) "$EXE" crossbar --g "$T/G.h5" --v "$T/V.h5" --model ideal -o "$2" ;;
    run) "$EXE" run "$T/r.ini" --threads 1 -o "$2" ;;
    sweep) "$EXE" sweep "$T/w.ini" --threads 1 -o "$2" ${3:+"$3"} ;;
    calibrate) "$EXE" calibrate "$T/c.ini" -o "$2" ;;
  esac
}

# check_failed WHAT OUT STATUS DESCRIPTION: a failure, not a crash; a
# message naming the output; no output and no temporary left. A sweep
# keeps the journal of its finished points (OUT without .h5, .journal;
# docs/sweep.md): the only file it may leave, and resume_sweep checks it.
check_failed() {
  base=$(basename "$2" .h5)
  left=$(ls "$(dirname "$2")" | grep "^$base" | tr '\n' ' ')
  [ "$1" = sweep ] && left=$(printf '%s' "$left" | sed "s/^$base\.journal //")
  if [ "$3" -eq 1 ] && grep -q "$base" "$T/err" && grep -q "No space left on device" "$T/err" && [ -z "$left" ]; then
    if [ "$1" = sweep ]; then ok "$1 $4: exit 1, the file named, nothing left but the journal"
    else ok "$1 $4: exit 1, the file named, nothing left"; fi
  else
    bad "$1 $4: exit $3, left '$left'"; sed 's/^/    /' "$T/err" | tail -3
  fi
}

# resume_sweep OUT DESCRIPTION: with the space back, a sweep that failed
# writing OUT: its journal, if it kept one, resumed with --resume gives the
# files of a sweep without a fault, and nothing else is left
resume_sweep() {
  base=$(basename "$1" .h5)
  dir=$(dirname "$1")
  if [ -e "$dir/$base.journal" ]; then
    write sweep "$1" --resume > "$T/out" 2> "$T/err"
    st=$?
    left=$(ls "$dir" | grep "^$base" | tr '\n' ' ')
    if [ $st -eq 0 ] && grep -q "resuming from .*$base.journal: 2 of 2 points finished, 0 to run" "$T/out" &&
       cmp -s "$1" "$T/good-sweep.h5" && cmp -s "$dir/$base.csv" "$T/good-sweep.csv" &&
       [ "$left" = "$base.csv $base.h5 " ]; then
      ok "sweep $2: the journal kept, --resume writes the files of a sweep without a fault"
    else
      bad "sweep $2: --resume exit $st, left '$left'"; sed 's/^/    /' "$T/out" "$T/err" | tail -3
    fi
    rm -f "$1" "$dir/$base.csv" "$dir/$base.journal"
  fi
}

# --- a full filesystem, for real: a 1 MiB tmpfs in a private mount
# namespace (root only), filled to leave a few KiB (F3, F5) --------------
if [ "$TMPFS_PART" -eq 1 ]; then
  M="$T/mnt"
  mkdir -p "$M"
  mount -t tmpfs -o size=1M tmpfs "$M" || exit 77
  fill() {
    rm -rf "$M"/*
    a=$(df --output=avail -k "$M" | tail -1)
    dd if=/dev/zero of="$M/filler" bs=1k count=$((a - $1)) 2> /dev/null
  }
  for what in synth crossbar run model sweep calibrate; do
    half=$(( $(cat "$T/good-$what".* | wc -c) / 2048 ))
    for kb in 4 16 $half; do
      fill $kb
      write $what "$M/out-$what.h5" > "$T/out" 2> "$T/err"
      check_failed $what "$M/out-$what.h5" $? "on a tmpfs with $kb KiB free"
      rm -f "$M/filler"
      [ $what = sweep ] && resume_sweep "$M/out-$what.h5" "on a tmpfs with $kb KiB free"
    done
  done
  umount "$M"
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
  exit $?
fi

mkinputs

# --- a full disk through the writers' test-only fault hook
# (SPRINTSIM_TEST_FREE_BYTES: writes fail with ENOSPC past that many bytes)
for what in synth crossbar run model sweep calibrate; do
  write $what "$T/good-$what.h5" > /dev/null 2>&1 || bad "$what without a fault"
  size=$(wc -c < "$T/good-$what.h5")
  for fb in 0 1 4096 $((size / 4)) $((size / 2)) $((size * 3 / 4)); do
    SPRINTSIM_TEST_FREE_BYTES=$fb write $what "$T/full-$what.h5" > "$T/out" 2> "$T/err"
    check_failed $what "$T/full-$what.h5" $? "with $fb bytes free"
    [ $what = sweep ] && resume_sweep "$T/full-$what.h5" "with $fb bytes free"
  done
done

# --- the same on a real full filesystem, when this runs as root
if [ "$(id -u)" -eq 0 ] && command -v unshare > /dev/null 2>&1 && unshare -m true 2> /dev/null; then
  unshare -m sh "$0" --tmpfs "$T" > "$T/tmpfs.log" 2>&1
  st=$?
  sed -n 's/^\(ok\|FAILED\) - /tmpfs: &/p' "$T/tmpfs.log"
  n_ok=$(grep -c "^ok - " "$T/tmpfs.log")
  n_bad=$(grep -c "^FAILED - " "$T/tmpfs.log")
  pass=$((pass + n_ok)); fail=$((fail + n_bad))
  [ "$st" -eq 0 ] || [ "$n_bad" -gt 0 ] || bad "tmpfs part: exit $st"
else
  echo "skip - a real full filesystem needs root and unshare (the fault hook above covers the writers)"
fi

# --- configurations sprintsim writes read back, whatever their lines' length
D="$T/$(printf 'a%.0s' $(seq 60))/$(printf 'b%.0s' $(seq 60))/$(printf 'c%.0s' $(seq 60))"
mkdir -p "$D"
cp "$T/good-synth.h5" "$D/qkv.h5"
printf '[workload]\nsource = qkv\nqkv_file = qkv.h5\n[run]\ndevice_model = %s/good-calibrate.h5\n[threshold]\nmode = direct\nvalues = 1.1, 2.2\n' "$T" > "$D/run.ini"
expect 0 "qkv_file = $D/qkv.h5" "config with a path of $(printf %s "$D/qkv.h5" | wc -c) characters" -- "$EXE" config "$D/run.ini"
cp "$T/out" "$T/resolved.ini"
expect 0 "" "the resolved configuration reads back" -- "$EXE" config "$T/resolved.ini"
cmp -s "$T/out" "$T/resolved.ini" && ok "... to the same configuration" || bad "... to the same configuration"

# --- the trace records a checksum of each input file as read -------------
if [ ! -f "$T/noh5py" ]; then
  printf '[workload]\nsource = qkv\nqkv_file = good-synth.h5\n[run]\ndevice_model = good-calibrate.h5\n' > "$T/prov.ini"
  expect 0 "trace:" "run with a Q/K/V file and a device model" -- "$EXE" run "$T/prov.ini" --threads 1 -o "$T/prov.h5"
  /usr/bin/python3 - "$T" <<'PY' > "$T/prov.out" 2>&1 && ok "/inputs: FNV-1a of each input's bytes" || { bad "/inputs: FNV-1a of each input's bytes"; cat "$T/prov.out"; }
import sys, os, h5py
T = sys.argv[1]
def fnv(p):
    h = 14695981039346656037
    for b in open(p, "rb").read():
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "fnv1a64:%016x" % h
with h5py.File(T + "/prov.h5", "r") as f:
    for key, name in (("workload.qkv_file", "good-synth.h5"), ("run.device_model", "good-calibrate.h5")):
        d = f["inputs"][key]
        want = fnv(T + "/" + name)
        got = d.attrs["content_id"].decode()
        assert got == want, (key, got, want)
        assert int(d.attrs["size_bytes"]) == os.path.getsize(T + "/" + name), key
        assert d[()].decode().endswith(name), d[()]
PY
  # a model run records its model file (and the device model) the same way
  printf '[workload]\nsource = model\nmodel = lm.h5\nwindows = 2\n[run]\ndevice_model = good-calibrate.h5\n' > "$T/mprov.ini"
  expect 0 "output:" "model run with a device model" -- "$EXE" run "$T/mprov.ini" --threads 1 -o "$T/mprov.h5"
  /usr/bin/python3 - "$T" <<'PY' > "$T/prov.out" 2>&1 && ok "model run /inputs: FNV-1a of the model and the device model" || { bad "model run /inputs: FNV-1a of the model and the device model"; cat "$T/prov.out"; }
import sys, os, h5py
T = sys.argv[1]
def fnv(p):
    h = 14695981039346656037
    for b in open(p, "rb").read():
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "fnv1a64:%016x" % h
with h5py.File(T + "/mprov.h5", "r") as f:
    assert sorted(f["inputs"]) == ["run.device_model", "workload.model"], list(f["inputs"])
    for key, name in (("workload.model", "lm.h5"), ("run.device_model", "good-calibrate.h5")):
        d = f["inputs"][key]
        assert d.attrs["content_id"].decode() == fnv(T + "/" + name), key
        assert int(d.attrs["size_bytes"]) == os.path.getsize(T + "/" + name), key
        assert d[()].decode().endswith("/" + name), d[()]
PY
fi

# the reader's child gets 1 s of CPU per request: the files that loop
# libhdf5 end in a second or two
SPRINTSIM_H5_LIMITS="cpu=1"
export SPRINTSIM_H5_LIMITS

# --- hostile HDF5 files ---------------------------------------------------
/usr/bin/python3 - "$T" <<'PY' 2> /dev/null || printf 'no h5py\n' > "$T/noh5py"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1] + "/V.h5", "w") as f: f["V"] = 0.1 * np.ones((3, 4))
PY
for f in "$S"/tests/data/hdf5-crashers/*.h5; do
  b=$(basename "$f")
  cp "$f" "$T/$b"
  case $b in
    *qkv*) printf '[workload]\nsource = qkv\nqkv_file = %s\n' "$b" > "$T/c.ini"
           expect 1 "$b" "config with Q/K/V file $b: a clean error" -- "$EXE" config "$T/c.ini"
           expect 1 "$b" "run with Q/K/V file $b: a clean error" -- "$EXE" run "$T/c.ini" -o "$T/r.h5" ;;
    *device*) printf '[run]\ndevice_model = %s\n' "$b" > "$T/c.ini"
           expect 1 "$b" "config with device model $b: a clean error" -- "$EXE" config "$T/c.ini" ;;
    *matrix*) if [ -f "$T/V.h5" ]; then
             expect 1 "$b" "crossbar with G = $b: a clean error" -- "$EXE" crossbar --g "$T/$b" --v "$T/V.h5" --model ideal -o "$T/I.h5"
             [ ! -e "$T/I.h5" ] && ok "crossbar $b: no output" || bad "crossbar $b: no output"
           fi ;;
  esac
  [ "$(wc -l < "$T/err")" -eq 1 ] && ok "$b: one line" || { bad "$b: one line"; cat "$T/err"; }
  printf '[workload]\nsource = model\nmodel = %s\n' "$b" > "$T/mc.ini"
  expect 1 "$b" "run with model file $b: a clean error" -- "$EXE" run "$T/mc.ini" -o "$T/r.h5"
  [ "$(wc -l < "$T/err")" -eq 1 ] && ok "model $b: one line" || { bad "model $b: one line"; cat "$T/err"; }
  expect 1 "$b" "report of $b: a clean error" -- "$EXE" report "$T/$b"
done
[ ! -e "$T/r.h5" ] && notmp "$T/r.h5" && ok "no trace from a hostile input" || bad "no trace from a hostile input"
expect 2 "SPRINTSIM_H5_LIMITS: HDF5 reader limits 'cpu=x'" "bad SPRINTSIM_H5_LIMITS" -- env SPRINTSIM_H5_LIMITS=cpu=x "$EXE" config

# --- a model run too large for the memory: refused before any item runs
# (a text model of 16384 tokens and 64 heads: small weights, about 70 GiB
# of attention data; skipped on machines that hold that)
if [ ! -f "$T/noh5py" ] && [ "$(awk '/^MemTotal/ { print int($2 / 1048576) }' /proc/meminfo)" -lt 60 ]; then
  /usr/bin/python3 - "$T" <<'PY'
import sys, h5py, numpy as np
D, T, H, M, V = 128, 16384, 64, 4, 2
with h5py.File(sys.argv[1] + "/bigattn.h5", "w") as f:
    for k, v in (("format", "sprintsim-model"), ("input", "text"), ("reference", "")): f.attrs[k] = v
    for k, v in (("version", 1), ("causal", 1), ("dim", D), ("depth", 1), ("heads", H), ("mlp", M),
                 ("tokens", T), ("vocab", V)): f.attrs[k] = v
    f.attrs["ln_eps"] = 1e-5
    f["vocab_bytes"] = np.array([97, 98], dtype=np.uint8)
    z = lambda *s: np.full(s, 0.01, dtype=np.float32)
    f["tok_emb"] = z(V, D); f["pos"] = z(T, D)
    for n, s in (("ln1_w", (D,)), ("ln1_b", (D,)), ("qkv_w", (3 * D, D)), ("qkv_b", (3 * D,)),
                 ("proj_w", (D, D)), ("proj_b", (D,)), ("ln2_w", (D,)), ("ln2_b", (D,)),
                 ("fc1_w", (M, D)), ("fc1_b", (M,)), ("fc2_w", (D, M)), ("fc2_b", (D,))):
        f["layer_0/" + n] = z(*s)
    f["ln_w"] = z(D); f["ln_b"] = z(D); f["head_w"] = z(V, D); f["head_b"] = z(V)
    f["eval/tokens"] = (np.arange(T + 8) % V).astype(np.uint8)
PY
  printf '[workload]\nsource = model\nmodel = bigattn.h5\nwindows = 1\n' > "$T/big.ini"
  expect 1 "model: .*bigattn.h5 (16384 tokens, 64 heads, dim 128) on 1 threads needs about .* GiB of memory, more than 80% of the" \
    "model run too large for the memory: refused before any item" -- "$EXE" run "$T/big.ini" --threads 1 -o "$T/big.h5"
  [ ! -e "$T/big.h5" ] && notmp "$T/big.h5" && ok "model run refused for memory: no output" || bad "model run refused for memory: no output"
else
  echo "skip - a model run too large for the memory (no h5py, or 60 GiB or more of memory)"
fi

# --- a Q/K/V file truncated while run reads it (libhdf5 reads zeros past
# the end of a truncated file) --------------------------------------------
printf '[workload]\nseq_len = 256\nlayers = 12\nheads = 12\nhead_dim = 64\n' > "$T/s.ini"
"$EXE" synth "$T/s.ini" -o "$T/q.h5" > /dev/null
printf '[workload]\nsource = qkv\nqkv_file = q.h5\n[threshold]\nmode = direct\nvalues = 40\nrange = 200\n' > "$T/qrun.ini"
"$EXE" run "$T/qrun.ini" --threads 1 -o "$T/qt.h5" > "$T/qt.out" 2> "$T/qt.err" &
pid=$!
n=0
while ! grep -q "^    0 " "$T/qt.out" 2> /dev/null && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
truncate -s $(( $(wc -c < "$T/q.h5") / 2 )) "$T/q.h5"
wait $pid
st=$?
if [ "$st" -eq 1 ] && grep -q "q.h5: the Q/K/V file changed while it was being read" "$T/qt.err" && [ ! -e "$T/qt.h5" ] && notmp "$T/qt.h5"; then
  ok "Q/K/V file truncated during run: refused, no trace"
else
  bad "Q/K/V file truncated during run: exit $st"; cat "$T/qt.err"
fi

rm -rf "$T"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
