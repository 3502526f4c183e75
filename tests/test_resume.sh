#!/bin/sh
# test_resume.sh - a sweep's journal: kill -9 at random moments, then
# --resume, gives the uninterrupted run's files byte for byte, and no
# output file exists while a point is missing; SIGINT and SIGTERM keep the
# finished points; every refusal of --resume names what differs.
#   SPR_KILL_TRIALS  trials of kill -9 (default 20; .ci/run runs more)
set -u
B=${top_builddir:-.}
S=${top_srcdir:-.}
S=$(cd "$S" && pwd)
EXE="$B/sprintsim"
T="$B/tests/tmp-resume-$$"
rm -rf "$T" && mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
. "${top_srcdir:-.}/tests/spr_test.sh"
rnd() { od -An -N2 -tu2 /dev/urandom | tr -d ' '; } # 0 .. 65535
now_ms() { date +%s%3N; }

# 12 points of a few tenths of a second each (long enough against the
# polling below, which takes tens of milliseconds a round under load)
cat > "$T/r.ini" <<'INI'
[workload]
seq_len = 256
layers = 2
heads = 4
[sweep]
threshold.keep_rate + baselines.topk_fraction = 0.1, 0.2, 0.3
analog.cmp_noise_sigma = 0, 200 nA, 1 uA, 2.385 uA
schemes = sprint, dense, topk
INI
P=12
t0=$(now_ms)
expect 0 "(36 rows)" "reference sweep" -- "$EXE" sweep "$T/r.ini" -o "$T/ref.h5" --threads 2
dur=$(($(now_ms) - t0))
check "a finished sweep leaves no journal" '[ ! -e "$T/ref.journal" ]'

# points in the journal (0 when it is gone)
points_in() { if [ -f "$1" ]; then grep -c '^point ' "$1"; else echo 0; fi; }
# every output that exists equals the reference; none exists while the
# journal lacks a point (the sweep is complete when the journal is gone)
outputs_ok() {
  for ext in h5 csv; do
    if [ -e "$T/o.$ext" ]; then
      [ -e "$T/o.journal" ] && [ "$(points_in "$T/o.journal")" -lt $P ] && return 1
      cmp -s "$T/o.$ext" "$T/ref.$ext" || return 1
    fi
  done
  return 0
}

# one sweep started, killed with SIGKILL at a random moment: once a random
# number k of points (0 .. P - 2) are in the journal, after a further
# random delay in [0, the time per point] (the reference run's, or this
# run's own up to k when shorter; counting
# points, not only time, keeps the kills inside the sweep when the
# machine's load changes between the reference run and the trials)
kill_at_random() {
  "$EXE" sweep "$T/r.ini" -o "$T/o.h5" --threads 2 "$@" > /dev/null 2> "$T/kill.err" &
  pid=$!
  k=$(($(rnd) % (P - 1)))
  n=0
  ts=$(now_ms)
  while [ "$(points_in "$T/o.journal")" -lt $k ] && kill -0 $pid 2> /dev/null && [ $n -lt 3000 ]; do
    sleep 0.02; n=$((n + 1))
  done
  # the time per point: the reference run's, or this run's so far when
  # the machine has become faster since
  per=$((dur / P))
  if [ $k -gt 0 ]; then
    own=$((($(now_ms) - ts) / k))
    [ $own -lt $per ] && per=$own
  fi
  d=$(($(rnd) * per / 65535))
  sleep "$(printf '%d.%03d' $((d / 1000)) $((d % 1000)))"
  kill -9 $pid 2> /dev/null
  wait $pid 2> /dev/null
}

trials=${SPR_KILL_TRIALS:-20}
mid=0; whole=0; broken=0; resumed_pts=0
i=0
while [ $i -lt "$trials" ]; do
  i=$((i + 1))
  rm -f "$T"/o.*
  kill_at_random
  outputs_ok || { broken=$((broken + 1)); echo "    trial $i: an output before the sweep completed or unlike the reference"; ls -l "$T"; }
  # a second kill, during the resume
  if [ -e "$T/o.journal" ]; then
    mid=$((mid + 1))
    resumed_pts=$((resumed_pts + $(points_in "$T/o.journal")))
    kill_at_random --resume
    outputs_ok || { broken=$((broken + 1)); echo "    trial $i: after the second kill"; ls -l "$T"; }
  else
    whole=$((whole + 1))
  fi
  "$EXE" sweep "$T/r.ini" -o "$T/o.h5" --threads 2 --resume > /dev/null 2> "$T/res.err" ||
    { broken=$((broken + 1)); echo "    trial $i: the resume failed"; cat "$T/res.err"; }
  if ! cmp -s "$T/o.h5" "$T/ref.h5" || ! cmp -s "$T/o.csv" "$T/ref.csv" || [ -e "$T/o.journal" ] ||
     ls "$T"/o.*.tmp.* > /dev/null 2>&1; then
    broken=$((broken + 1)); echo "    trial $i: the resumed files differ from the reference, or a journal or temporary is left"
  fi
done
echo "    $trials trials: $mid killed mid-sweep ($resumed_pts finished points kept in all), $whole after the end"
check "kill -9 at $trials random moments, then --resume: the reference files byte for byte, no early output" '[ $broken -eq 0 ]'
check "most kills land mid-sweep" '[ $((mid * 2)) -ge "$trials" ]'

# SIGINT and SIGTERM: exit 130, the finished points kept, the resume runs
# only the missing ones; a resume on other thread counts gives the same files
for sig in INT TERM; do
  rm -f "$T"/o.*
  "$EXE" sweep "$T/r.ini" -o "$T/o.h5" --threads 1 > /dev/null 2> "$T/sig.err" &
  pid=$!
  n=0
  while [ "$(points_in "$T/o.journal")" -lt 3 ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n + 1)); done
  kill -$sig $pid
  wait $pid
  st=$?
  kept=$(points_in "$T/o.journal")
  check "SIG$sig: exit 130, no output, $kept finished points kept" \
    '[ $st -eq 130 ] && [ ! -e "$T/o.h5" ] && [ ! -e "$T/o.csv" ] && [ "$kept" -ge 3 ] && grep -q "add --resume to go on" "$T/sig.err"'
  expect 0 "$((P - kept)) to run" "SIG$sig: --resume runs only the missing points" -- \
    "$EXE" sweep "$T/r.ini" -o "$T/o.h5" --threads 2 --resume
  check "SIG$sig: the resumed files equal the reference" 'cmp -s "$T/o.h5" "$T/ref.h5" && cmp -s "$T/o.csv" "$T/ref.csv"'
done

# refusals: a journal without --resume; another text; another version; a
# damaged record; an input changed
rm -f "$T"/o.*
"$EXE" sweep "$T/r.ini" -o "$T/o.h5" --threads 1 > /dev/null 2>&1 &
pid=$!
n=0
while [ "$(points_in "$T/o.journal")" -lt 2 ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n + 1)); done
kill -9 $pid; wait $pid 2> /dev/null
cp "$T/o.journal" "$T/saved.journal"
expect 1 "o.journal: exists already (the journal of an unfinished sweep): resume it with --resume" \
  "a journal without --resume is refused" -- "$EXE" sweep "$T/r.ini" -o "$T/o.h5"
sed 's/2.385 uA/2.386 uA/' "$T/r.ini" > "$T/r2.ini"
cp "$T/r2.ini" "$T/r.ini.new"
cp "$T/r.ini" "$T/r.ini.orig"
mv "$T/r.ini.new" "$T/r.ini"
expect 1 "the sweep .*r.ini differs from the journal's at line 7: 'analog.cmp_noise_sigma = 0, 200 nA, 1 uA, 2.385 uA' then, 'analog.cmp_noise_sigma = 0, 200 nA, 1 uA, 2.386 uA' now" \
  "--resume of a changed sweep is refused naming the line" -- "$EXE" sweep "$T/r.ini" -o "$T/o.h5" --resume
mv "$T/r.ini.orig" "$T/r.ini"
expect 1 "records the sweep '.*r.ini', not '.*r2.ini'" "--resume with another CONFIG is refused" -- \
  "$EXE" sweep "$T/r2.ini" -o "$T/o.h5" --resume
expect 1 "differs from the journal's at line 9: '' then, '; overrides applied over the text above:' now" "--resume with another --set is refused" -- \
  "$EXE" sweep "$T/r.ini" -o "$T/o.h5" --resume --set workload.head_dim=32
if [ -x /usr/bin/python3 ]; then
  # the header of another version, its checksum recomputed
  /usr/bin/python3 - "$T/o.journal" <<'PYEOF'
import sys, zlib
p = sys.argv[1]
t = open(p, 'rb').read()
end = t.index(b'\nend ') + 1
head = t[:end].replace(b'\nversion ', b'\nversion 0.0.1-old\nX', 1)
head = b'\n'.join(l for l in head.split(b'\n') if not l.startswith(b'X')) 
rest = t[t.index(b'\n', end) + 1:]
open(p, 'wb').write(head + b'end %08x\n' % zlib.crc32(head) + rest)
PYEOF
  expect 1 "written by sprintsim 0.0.1-old, this is sprintsim" "--resume of another version's journal is refused" -- \
    "$EXE" sweep "$T/r.ini" -o "$T/o.h5" --resume
  cp "$T/saved.journal" "$T/o.journal"
fi
# a damaged record: one hex digit of the last line changed
last=$(wc -l < "$T/o.journal")
awk -v n="$last" 'NR == n { c = substr($0, 40, 1); $0 = substr($0, 1, 39) (c == "0" ? "1" : "0") substr($0, 41) } { print }' \
  "$T/saved.journal" > "$T/o.journal"
expect 1 "o.journal: line $last: the record's checksum does not match (a damaged record)" \
  "--resume of a damaged journal names it, the line and what to keep" -- "$EXE" sweep "$T/r.ini" -o "$T/o.h5" --resume
grep -q "head -n $((last - 1)) " "$T/err" && ok "the message says which lines to keep" || bad "the message says which lines to keep"
# what it says to do works
head -n $((last - 1)) "$T/o.journal" > "$T/o.journal.ok" && mv "$T/o.journal.ok" "$T/o.journal"
expect 0 "(36 rows)" "the journal's good lines kept as told: the resume runs" -- "$EXE" sweep "$T/r.ini" -o "$T/o.h5" --resume
check "... and gives the reference files" 'cmp -s "$T/o.h5" "$T/ref.h5" && cmp -s "$T/o.csv" "$T/ref.csv"'
# a cut record (a full disk)
cp "$T/saved.journal" "$T/o.journal"
sz=$(wc -c < "$T/o.journal")
head -c $((sz - 100)) "$T/saved.journal" > "$T/o.journal"
expect 1 "the last record is cut short" "--resume of a cut journal is refused" -- "$EXE" sweep "$T/r.ini" -o "$T/o.h5" --resume
rm -f "$T"/o.*
expect 0 "no journal .*o.journal: --resume starts from the first point" "--resume without a journal starts the sweep" -- \
  "$EXE" sweep "$T/r.ini" -o "$T/o.h5" --resume
check "... and gives the reference files" 'cmp -s "$T/o.h5" "$T/ref.h5"'
# an input changed between the runs: a Q/K/V file of the sweep rewritten
printf '[workload]\nseq_len = 128\nlayers = 2\nheads = 4\n' > "$T/q.ini"
"$EXE" synth "$T/q.ini" -o "$T/q.h5" > /dev/null 2>&1
printf '[workload]\nsource = qkv\nqkv_file = q.h5\n[sweep]\nthreshold.keep_rate = 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8\nschemes = sprint, dense\n' > "$T/qs.ini"
"$EXE" sweep "$T/qs.ini" -o "$T/qo.h5" --threads 1 > /dev/null 2>&1 &
pid=$!
n=0
while [ "$(points_in "$T/qo.journal")" -lt 1 ] && [ $n -lt 600 ]; do sleep 0.02; n=$((n + 1)); done
kill -9 $pid; wait $pid 2> /dev/null
if [ -e "$T/qo.journal" ]; then
  printf '[workload]\nseq_len = 128\nlayers = 2\nheads = 4\n[run]\nseed = 2\n' > "$T/q.ini"
  "$EXE" synth "$T/q.ini" -o "$T/q.h5" > /dev/null 2>&1
  expect 1 "the sweep's input workload.qkv_file .*q.h5 changed since the journal was written" \
    "--resume after an input file changed is refused naming it" -- "$EXE" sweep "$T/qs.ini" -o "$T/qo.h5" --resume
else
  bad "the Q/K/V sweep finished before it could be interrupted"
fi
# the journal, like the outputs, may not be an input
cp "$T/r.ini" "$T/in.journal"
expect 2 "the journal beside -o, $T/in.journal names an input of the sweep: the configuration" \
  "a journal path naming the sweep file is refused" -- "$EXE" sweep "$T/in.journal" -o "$T/in.h5"
# a second sweep into the same output while the first runs
rm -f "$T"/o.*
"$EXE" sweep "$T/r.ini" -o "$T/o.h5" --threads 1 > /dev/null 2>&1 &
pid=$!
n=0
while [ ! -e "$T/o.journal" ] && [ $n -lt 600 ]; do sleep 0.02; n=$((n + 1)); done
expect 1 "o.journal: in use by another sweep into the same output" "a second sweep into a running one's output is refused" -- \
  "$EXE" sweep "$T/r.ini" -o "$T/o.h5" --resume
wait $pid
check "the first sweep finishes regardless" 'cmp -s "$T/o.h5" "$T/ref.h5"'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
