#!/bin/sh
# test_cmd.sh - what the sprintsim commands share (sim/cmd_common.c): the
# help topics, --set and a configuration on standard input, --format, -o
# naming an input, the signals and limits (a file-size limit, SIGTERM to
# a calibration and its ngspice child), report's file types, config of a
# sweep, the docs/trace.md example.  test_cli.sh tests each command's own
# behaviour.
set -u
B=${top_builddir:-.}
S=${top_srcdir:-.}
S=$(cd "$S" && pwd) # absolute: file names in a configuration file are taken from its folder
EXE="$B/sprintsim"
case $EXE in /*) ;; *) EXE="$PWD/$EXE" ;; esac # absolute: some checks run in other folders
T="$B/tests/tmp-cmd-$$"
rm -rf "$T" && mkdir -p "$T"
T=$(cd "$T" && pwd)
PY=/usr/bin/python3
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "FAILED - $1"; }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
notmp() { ! ls "$1".tmp* > /dev/null 2>&1; }
have_h5py() { [ -x "$PY" ] && "$PY" -c 'import h5py, numpy' 2> /dev/null; }

# expect STATUS PATTERN DESCRIPTION -- command...   (PATTERN: grep, in stdout or stderr)
expect() {
  want=$1; pat=$2; what=$3; shift 4
  "$@" > "$T/out" 2> "$T/err" < /dev/null
  got=$?
  if [ "$got" -ne "$want" ]; then
    bad "$what: exit $got, expected $want"; sed 's/^/    /' "$T/out" "$T/err" | head -20; return
  fi
  if [ -n "$pat" ] && ! grep -q -- "$pat" "$T/out" "$T/err"; then
    bad "$what: output lacks '$pat'"; sed 's/^/    /' "$T/out" "$T/err" | head -20; return
  fi
  ok "$what"
}

cat > "$T/small.ini" <<'INI'
; a small run: 2 layers x 2 heads of 32 tokens
[workload]
seq_len = 32
layers = 2
heads = 2
INI

# --- signals and limits ------------------------------------------------------
# a write past the file-size limit (ulimit -f) stops the run: exit 1, the
# limit named, neither the trace nor its temporary left (F9)
printf '[workload]\nseq_len = 128\nlayers = 4\n[run]\ntrace = masks\n' > "$T/fsize.ini"
(ulimit -f 100; "$EXE" run "$T/fsize.ini" -o "$T/fsize.h5" > "$T/out" 2> "$T/err"; echo $? > "$T/st")
check "run past the file-size limit: exit 1, the limit named, no file" \
  '[ "$(cat "$T/st")" -eq 1 ] && grep -q "file size limit (ulimit -f) was reached; .*fsize.h5 not written" "$T/err" && [ ! -e "$T/fsize.h5" ] && notmp "$T/fsize.h5"'

# a sweep checks the memory of the points it runs at once before any runs
# (the parts: tests/test_sysmem, test_sweep)
printf '[workload]\nlayers = 1\nheads = 64\n[sweep]\nworkload.seq_len = 64, 16384\n' > "$T/swmem.ini"
expect 1 "point 2 of 2 (workload.seq_len = 16384) needs about .* GiB of memory, more than 80% of the .* GiB this process may use" \
  "sweep: a point too large for the memory refused before any runs" -- "$EXE" sweep "$T/swmem.ini" -o "$T/swmem.h5" --threads 1
check "sweep refused for memory: no point ran, nothing written" \
  '! grep -q "done (point" "$T/err" && [ ! -e "$T/swmem.h5" ] && [ ! -e "$T/swmem.csv" ] && notmp "$T/swmem.h5" && notmp "$T/swmem.csv"'

# calibrate checks its output before the minutes of SPICE (F8)
t0=$(date +%s%N)
expect 1 "$T/nodir/d.h5: cannot write into the folder $T/nodir" "calibrate: output in a missing folder refused up front" -- \
  "$EXE" calibrate "$S/examples/calibrate.ini" -o "$T/nodir/d.h5"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "calibrate: the refusal comes before any SPICE job ($ms ms)" '[ "$ms" -lt 2000 ] && ! grep -q "\[1/7\]" "$T/err"'
expect 1 "the output is a folder" "calibrate: output naming a folder refused up front" -- "$EXE" calibrate "$S/examples/calibrate.ini" -o "$T/"

# SIGTERM during a calibration's long ngspice job: the child is killed and
# reaped at once, exit 130 within a second, no file, no temporary folder (F7)
mkdir "$T/tmpdir"
printf '[crossbar]\nrows = 8\ncols = 8\n[calibrate]\niv_levels = 2\niv_points = 5\nir_arrays = 1\nir_spice_arrays = 1\nir_inputs = 2\nir_rows = 256\nir_cols = 256\nnoise_arrays = 1\nnoise_cols = 2\ncmp_samples = 3\ncmp_noise_samples = 3\ncmp_overdrives = 0.5 uA, 1 uA, 2 uA\nenergy_sizes = 2, 4, 6\ntimeout = 60 s\n' > "$T/callong.ini"
TMPDIR="$T/tmpdir" "$EXE" calibrate "$T/callong.ini" -o "$T/callong.h5" > /dev/null 2> "$T/callong.err" &
pid=$!
i=0 # wait for step 2's ngspice job on a 256 x 256 array, which takes minutes
while [ $i -lt 200 ] && { ! grep -q "\[2/7\] IR drop \.\.\." "$T/callong.err" || [ -z "$(pgrep -P $pid)" ]; }; do
  sleep 0.1; i=$((i + 1))
done
sleep 0.2
child=$(pgrep -P $pid | head -1)
t0=$(date +%s%N)
kill -TERM $pid
wait $pid
st=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
gone=1
[ -n "$child" ] && ps -o stat= -p "$child" 2> /dev/null | grep -qv Z && gone=0
check "calibrate SIGTERM during an ngspice job: exit 130 in $ms ms, child gone, no file, no temporary folder" \
  '[ "$st" -eq 130 ] && [ -n "$child" ] && [ "$gone" -eq 1 ] && [ "$ms" -lt 1000 ] && [ ! -e "$T/callong.h5" ] && notmp "$T/callong.h5" && [ -z "$(ls -A "$T/tmpdir")" ] && grep -q "interrupted in step 2" "$T/callong.err"'

rm -rf "$T"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
