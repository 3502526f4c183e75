#!/bin/sh
# test_mpi.sh - sweeps over MPI ranks: 1, 2 and 3 ranks (oversubscribed on
# this machine) write the single process's files byte for byte; a failing
# point is reported as a single process reports it; an interruption on any
# rank, or kill -9 of the job, keeps the finished points for a resume on
# another rank count.  In a build without MPI: sweep under a launcher is
# refused.  Every build: the commands that cannot share work are refused
# under a launcher with several processes.
#   SPR_HAVE_MPI  yes when configure found MPI (set by make check)
set -u
B=${top_builddir:-.}
EXE="$B/sprintsim"
T="$B/tests/tmp-mpi-$$"
rm -rf "$T" && mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
. "${top_srcdir:-.}/tests/spr_test.sh"
points_in() { if [ -f "$1" ]; then grep -c '^point ' "$1"; else echo 0; fi; }

cat > "$T/m.ini" <<'INI'
[workload]
seq_len = 96
layers = 2
heads = 4
[sweep]
threshold.keep_rate + baselines.topk_fraction = 0.1, 0.2, 0.3
analog.cmp_noise_sigma = 0, 200 nA, 2.385 uA
schemes = sprint, dense, oracle, topk
INI

# a launcher with 3 processes, as its environment says (no launcher needed)
expect 2 "run: started by an MPI launcher with 3 processes: only sweep spreads its work over MPI ranks" \
  "run under a launcher with 3 processes is refused" -- env OMPI_COMM_WORLD_SIZE=3 OMPI_COMM_WORLD_RANK=0 "$EXE" run "$T/m.ini"
env PMI_SIZE=3 PMI_RANK=2 "$EXE" synth -o "$T/x.h5" > "$T/out" 2> "$T/err"
check "synth as rank 2 of 3 (PMI): exit 2, rank 0 alone says why" '[ $? -eq 2 ] && [ ! -s "$T/err" ] && [ ! -e "$T/x.h5" ]'
expect 0 "threshold.keep_rate" "config under a launcher runs (it only prints)" -- env OMPI_COMM_WORLD_SIZE=3 OMPI_COMM_WORLD_RANK=0 "$EXE" config "$T/m.ini"
expect 0 "" "a batch script's own SLURM_NTASKS is no launcher" -- env SLURM_NTASKS=4 SLURM_STEP_NUM_TASKS=4 "$EXE" config "$T/m.ini"

if [ "${SPR_HAVE_MPI:-no}" != yes ]; then
  expect 2 "sweep: started by an MPI launcher with 3 processes, but this sprintsim was built without MPI" \
    "a build without MPI refuses sweep under a launcher" -- env OMPI_COMM_WORLD_SIZE=3 OMPI_COMM_WORLD_RANK=0 "$EXE" sweep "$T/m.ini" -o "$T/n.h5"
  check "... and writes nothing" '[ ! -e "$T/n.h5" ] && [ ! -e "$T/n.journal" ]'
  expect 0 "(36 rows)" "a build without MPI: sweep under a 1-process launcher runs" -- env OMPI_COMM_WORLD_SIZE=1 "$EXE" sweep "$T/m.ini" -o "$T/n.h5" --threads 2
  echo "$pass passed, $fail failed (built without MPI: the runs over ranks are skipped)"
  [ $fail -eq 0 ]
  exit
fi

if ! command -v mpirun > /dev/null 2>&1; then
  bad "built with MPI but no mpirun (Debian package openmpi-bin)"
  echo "$pass passed, $fail failed"
  exit 1
fi
ROOT=""
[ "$(id -u)" -eq 0 ] && ROOT="--allow-run-as-root"
mpi() { n=$1; shift; mpirun $ROOT --oversubscribe -n "$n" "$@"; }

expect 0 "(36 rows)" "single process reference" -- "$EXE" sweep "$T/m.ini" -o "$T/ref.h5" --threads 2
for k in 1 2 3; do
  for th in 1 2; do
    expect 0 "(36 rows)" "$k rank(s) x $th thread(s)" -- mpi $k "$EXE" sweep "$T/m.ini" -o "$T/r$k$th.h5" --threads $th --progress
    check "$k rank(s) x $th thread(s): HDF5 and CSV byte-identical to one process" \
      'cmp -s "$T/r$k$th.h5" "$T/ref.h5" && cmp -s "$T/r$k$th.csv" "$T/ref.csv" && [ ! -e "$T/r$k$th.journal" ]'
  done
done
grep -q "done (point [0-9]* on rank [0-9]" "$T/err" && ok "progress names the rank of each point" || bad "progress names the rank of each point"
check "every rank evaluated points (3 ranks)" 'grep -q "on rank 1:" "$T/err" && grep -q "on rank 2:" "$T/err"'
expect 0 "3 MPI ranks x 1 thread" "the configuration on standard input reaches every rank" -- \
  sh -c "mpirun $ROOT --oversubscribe -n 3 '$EXE' sweep - -o '$T/s.h5' --threads 1 < '$T/m.ini'"
check "... the files of the file's sweep (but for its name)" 'cmp -s "$T/s.csv" "$T/ref.csv"'

# a failing point: the lowest one is reported as by one process, every rank stops
printf '[workload]\nseq_len = 64\nlayers = 2\nheads = 2\n[sweep]\ncrossbar.r_wl = 2.5, 400, 2.5, 400, 2.5, 2.5\nschemes = sprint, dense\n' > "$T/f.ini"
"$EXE" sweep "$T/f.ini" -o "$T/f1.h5" --threads 2 > /dev/null 2> "$T/f1.err"
st1=$?
grep '^sprintsim: ' "$T/f1.err" > "$T/f1.msg"
check "one process: the failing point 2 of 6 is reported, exit 1" '[ $st1 -eq 1 ] && grep -q "point 2 of 6 (crossbar.r_wl = 400): layer 0 head 0" "$T/f1.msg"'
for k in 2 3; do
  mpi $k "$EXE" sweep "$T/f.ini" -o "$T/f$k.h5" --threads 1 > /dev/null 2> "$T/f$k.err"
  st=$?
  grep '^sprintsim: ' "$T/f$k.err" > "$T/f$k.msg"
  check "$k ranks: the failing point reported exactly as by one process, non-zero exit, nothing written" \
    '[ $st -ne 0 ] && cmp -s "$T/f$k.msg" "$T/f1.msg" && [ ! -e "$T/f$k.h5" ] && [ ! -e "$T/f$k.csv" ]'
done

# SIGTERM to one rank: every rank stops, the finished points stay; a
# resume on 3 ranks completes them to the single process's files (points
# of about 0.9 s, so that the signal comes mid-sweep: N = 1024 and 8
# layers; with N = 512 a point took 0.26 s, 8 of the 9 points could end
# before the signal landed and under CI's load all 9 did; N = 256 and 4
# layers before that)
sed 's/seq_len = 96/seq_len = 1024/; s/layers = 2/layers = 8/' "$T/m.ini" > "$T/slow.ini"
expect 0 "(36 rows)" "single process reference of a slower sweep" -- "$EXE" sweep "$T/slow.ini" -o "$T/sref.h5" --threads 2
mpi 2 "$EXE" sweep "$T/slow.ini" -o "$T/i.h5" --threads 1 > /dev/null 2> "$T/i.err" &
pid=$!
n=0
while [ "$(points_in "$T/i.journal")" -lt 2 ] && [ $n -lt 1000 ]; do sleep 0.02; n=$((n + 1)); done
child=$(ps -o pid= --ppid $pid | tail -1 | tr -d ' ')
[ -n "$child" ] && kill -TERM "$child"
wait $pid
kept=$(points_in "$T/i.journal")
check "SIGTERM to one rank: every rank stops, $kept points kept, nothing written" \
  '[ -n "$child" ] && grep -q "interrupted" "$T/i.err" && [ ! -e "$T/i.h5" ] && [ "$kept" -ge 2 ] && [ "$kept" -lt 9 ]'
expect 0 "resuming from .*i.journal: $kept of 9 points finished" "the resume on 3 ranks runs the missing points" -- \
  mpi 3 "$EXE" sweep "$T/slow.ini" -o "$T/i.h5" --threads 1 --resume
check "... and gives the single process's files" 'cmp -s "$T/i.h5" "$T/sref.h5" && cmp -s "$T/i.csv" "$T/sref.csv"'

# kill -9 of the launcher: the job ends, the journal keeps its points, a
# single process resumes it
mpi 3 "$EXE" sweep "$T/slow.ini" -o "$T/k.h5" --threads 1 > /dev/null 2>&1 &
pid=$!
n=0
while [ "$(points_in "$T/k.journal")" -lt 3 ] && [ $n -lt 1000 ]; do sleep 0.02; n=$((n + 1)); done
# $pid is the background shell running mpi(); mpirun is its child and the
# ranks are mpirun's children: all of them are the job
kids=$(ps -o pid= --ppid $pid | tr -d ' ')
for k in $kids; do kids="$kids $(ps -o pid= --ppid $k | tr -d ' ')"; done
kill -9 $pid $kids 2> /dev/null
wait $pid 2> /dev/null
for k in $kids; do # the ranks are mpirun's children, not ours: wait for them to go
  n=0
  while kill -0 "$k" 2> /dev/null && [ $n -lt 500 ]; do sleep 0.02; n=$((n + 1)); done
done
kept=$(points_in "$T/k.journal")
check "kill -9 of the job: $kept points kept, no output" '[ "$kept" -ge 3 ] && [ ! -e "$T/k.h5" ] && [ ! -e "$T/k.csv" ]'
expect 0 "(36 rows)" "a single process resumes it" -- "$EXE" sweep "$T/slow.ini" -o "$T/k.h5" --threads 2 --resume
check "... to the same files" 'cmp -s "$T/k.h5" "$T/sref.h5" && cmp -s "$T/k.csv" "$T/sref.csv"'

# every rank must load the same sweep: the same CONFIG name in two folders
# (mpirun's --wdir per program) with another value is refused naming rank 1
mkdir -p "$T/d1" "$T/d2"
printf '[workload]\nseq_len = 32\nlayers = 1\nheads = 2\n[sweep]\nthreshold.keep_rate = 0.1, 0.2\n' > "$T/d1/s.ini"
printf '[workload]\nseq_len = 32\nlayers = 1\nheads = 2\n[sweep]\nthreshold.keep_rate = 0.1, 0.3\n' > "$T/d2/s.ini"
D1=$(cd "$T/d1" && pwd); D2=$(cd "$T/d2" && pwd); X=$(cd "$B" && pwd)/sprintsim
mpirun $ROOT -n 1 --wdir "$D1" "$X" sweep s.ini -o "$D1/o.h5" : -n 1 --wdir "$D2" "$X" sweep s.ini -o "$D1/o.h5" > "$T/out" 2> "$T/err"
check "a rank that reads another sweep text is refused by name, nothing written" \
  '[ $? -ne 0 ] && grep -q "sweep: on rank 1: s.ini (host .*) resolves to another sweep than on rank 0" "$T/err" && [ ! -e "$D1/o.h5" ] && [ ! -e "$D1/o.journal" ]'
# a file of the same path and other content on another node (a node-local
# copy): rank 1 in its own mount namespace sees another Q/K/V file bound
# over the path (needs unshare -m, i.e. root or user namespaces)
printf '[workload]\nseq_len = 24\nlayers = 1\nheads = 2\nhead_dim = 8\n' > "$T/q.ini"
"$EXE" synth "$T/q.ini" -o "$D1/q.h5" > /dev/null 2>&1
"$EXE" synth "$T/q.ini" -o "$D2/q.h5" --set run.seed=2 > /dev/null 2>&1
cp "$D1/q.h5" "$D2/same.h5"
printf '[workload]\nsource = qkv\nqkv_file = q.h5\n[sweep]\nthreshold.keep_rate = 0.1, 0.2\nschemes = sprint, dense\n' > "$D1/q-sweep.ini"
if unshare -m sh -c "mount --bind '$D2/q.h5' '$D1/q.h5' && ! cmp -s '$D1/q.h5' '$D2/same.h5'" 2> /dev/null; then
  mpirun $ROOT -n 1 "$X" sweep "$D1/q-sweep.ini" -o "$T/q.h5" : \
    -n 1 unshare -m sh -c "mount --bind '$D2/q.h5' '$D1/q.h5' && exec '$X' sweep '$D1/q-sweep.ini' -o '$T/q.h5'" > "$T/out" 2> "$T/err"
  check "a rank whose input file (same path) has other content is refused by name, nothing written" \
    '[ $? -ne 0 ] && grep -q "on rank 1: .*q-sweep.ini (host .*) .*the content of one) differs between the nodes" "$T/err" && [ ! -e "$T/q.h5" ] && [ ! -e "$T/q.journal" ]'
  expect 0 "(4 rows)" "... the same content bound there: the sweep runs" -- \
    mpirun $ROOT -n 1 "$X" sweep "$D1/q-sweep.ini" -o "$T/q.h5" : \
    -n 1 unshare -m sh -c "mount --bind '$D2/same.h5' '$D1/q.h5' && exec '$X' sweep '$D1/q-sweep.ini' -o '$T/q.h5'"
else
  echo "# skipped: a file whose content differs between ranks (unshare -m is not allowed here)"
fi

# errors before any point: every rank agrees, rank 0 prints once
mpi 2 "$EXE" run "$T/m.ini" -o "$T/run.h5" > "$T/out" 2> "$T/err"
check "run under mpirun -n 2 is refused, the reason said once" \
  '[ $? -ne 0 ] && [ "$(grep -c "only sweep spreads its work" "$T/err")" -eq 1 ] && [ ! -e "$T/run.h5" ]'
printf '[sweep]\nanalog.cmp_noise_sgma = 0, 1 nA\n' > "$T/bad.ini"
mpi 2 "$EXE" sweep "$T/bad.ini" -o "$T/b.h5" > "$T/out" 2> "$T/err"
check "a bad [sweep] key under 2 ranks: exit 1, the message once" \
  '[ $? -ne 0 ] && [ "$(grep -c "names no configuration key" "$T/err")" -eq 1 ]'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
