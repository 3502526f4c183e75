#!/bin/sh
# test_cli.sh - the sprintsim command: help, runs, every command-line and
# configuration error path, atomic output, interruption.
set -u
B=${top_builddir:-.}
S=${top_srcdir:-.}
S=$(cd "$S" && pwd) # absolute: file names in a configuration file are taken from its folder
EXE="$B/sprintsim"
T="$B/tests/tmp-cli-$$"
rm -rf "$T" && mkdir -p "$T"
. "${top_srcdir:-.}/tests/spr_test.sh"


cat > "$T/small.ini" <<'INI'
; a small run: 2 layers x 2 heads of 64 tokens
[workload]
seq_len = 64
layers = 2
heads = 2
[crossbar]
g_max = 80 uS
INI

expect 0 "sprintsim COMMAND" "--help" -- "$EXE" --help
expect 0 "--trace LEVEL" "help run" -- "$EXE" help run
expect 0 "--threads" "run --help" -- "$EXE" run --help
expect 0 "sprintsim 0" "--version" -- "$EXE" --version
expect 2 "usage" "no arguments" -- "$EXE"
expect 2 "unknown command 'frobnicate'" "unknown command" -- "$EXE" frobnicate

# a good run writes the file atomically and prints the table
expect 0 "all" "small run" -- "$EXE" run "$T/small.ini" -o "$T/a.h5" --threads 1
[ -f "$T/a.h5" ] && ok "trace written" || bad "trace written"
notmp() { ! ls "$1".tmp* > /dev/null 2>&1; }
notmp "$T/a.h5" && ok "no temporary left" || bad "no temporary left"
grep -q "^    1 " "$T/out" && ok "layer rows printed" || bad "layer rows printed"

# same seed, other thread count: identical file; other seed: different
"$EXE" run "$T/small.ini" -o "$T/b.h5" --threads 2 > /dev/null 2>&1
cmp -s "$T/a.h5" "$T/b.h5" && ok "1 and 2 threads give identical files" || bad "1 and 2 threads give identical files"
"$EXE" run "$T/small.ini" -o "$T/c.h5" --seed 99 > /dev/null 2>&1
cmp -s "$T/a.h5" "$T/c.h5" && bad "--seed changes the file" || ok "--seed changes the file"
expect 0 "seed 99" "--seed is reported" -- "$EXE" run "$T/small.ini" -o "$T/c.h5" --seed 99 --trace masks

# crossbar.ir_drop = nodal: 16 x 16 arrays at 60 ohm, which the first-order
# model refuses, run; 1 and 2 threads give identical files
{ cat "$T/small.ini"; printf 'rows = 16\ncols = 16\nr_wl = 61.3\nr_bl = 57.9\n'; } > "$T/wires.ini"
expect 1 "crossbar.ir_drop = nodal" "first order refused beyond its range" -- "$EXE" run "$T/wires.ini" -o "$T/x.h5"
{ cat "$T/wires.ini"; printf 'ir_drop = nodal\n'; } > "$T/nodal.ini"
expect 0 "all" "nodal run beyond the first-order range" -- "$EXE" run "$T/nodal.ini" -o "$T/n1.h5" --threads 1
"$EXE" run "$T/nodal.ini" -o "$T/n2.h5" --threads 2 > /dev/null 2>&1
cmp -s "$T/n1.h5" "$T/n2.h5" && ok "nodal: 1 and 2 threads give identical files" || bad "nodal: 1 and 2 threads give identical files"

# command-line errors: exit 2, message naming the value
expect 2 "'0' is not an integer" "--threads 0" -- "$EXE" run "$T/small.ini" -o "$T/x.h5" --threads 0
expect 2 "'abc'" "--threads abc" -- "$EXE" run "$T/small.ini" -o "$T/x.h5" --threads abc
expect 2 "needs a value" "--seed without value" -- "$EXE" run "$T/small.ini" --seed
expect 2 "'-5'" "--seed -5" -- "$EXE" run "$T/small.ini" -o "$T/x.h5" --seed -5
expect 2 "'everything' is not one of summary|masks|full" "--trace bogus" -- "$EXE" run "$T/small.ini" -o "$T/x.h5" --trace everything
expect 2 "unknown option '--fast'" "unknown option" -- "$EXE" run --fast
expect 2 "unexpected argument" "two configs" -- "$EXE" run "$T/small.ini" "$T/small.ini"
expect 2 "needs a file name" "-o without file" -- "$EXE" run "$T/small.ini" -o
[ ! -e "$T/x.h5" ] && ok "no output after usage errors" || bad "no output after usage errors"

# configuration errors: exit 1, file:line, key and value
expect 1 "$T/missing.ini: cannot open" "missing config" -- "$EXE" run "$T/missing.ini" -o "$T/x.h5"
printf '[crossbar]\nrows = 64\ng_max = 5 V\n' > "$T/unit.ini"
expect 1 "unit.ini:3: key 'crossbar.g_max': value '5 V' has unit 'V', expected S" "bad unit" -- "$EXE" run "$T/unit.ini" -o "$T/x.h5"
printf '[analog]\nvread = 0.2\n' > "$T/key.ini"
expect 1 "key.ini:2: unknown key 'analog.vread'" "unknown key" -- "$EXE" run "$T/key.ini" -o "$T/x.h5"
printf '[threshold]\nkeep_rate = 1.5\n' > "$T/range.ini"
expect 1 "range.ini:2: key 'threshold.keep_rate': value '1.5' out of range" "out of range" -- "$EXE" run "$T/range.ini" -o "$T/x.h5"
printf '[crossbar]\ncols = 63\n' > "$T/odd.ini"
expect 1 "'crossbar.cols': value 63 is odd" "odd cols" -- "$EXE" run "$T/odd.ini" -o "$T/x.h5"
printf '[crossbar]\nthis line is wrong\n' > "$T/syntax.ini"
expect 1 "syntax.ini:2: syntax error" "syntax error" -- "$EXE" run "$T/syntax.ini" -o "$T/x.h5"
# issue 10: an endurance of 0, a buffer too small for dense_tiled's query
# block (at d = 64: 328 B a query + 128 B a token), shared scoring arrays
# smaller than one head (2 x 64 x 64 = 8192 cells)
printf '[wear]\nendurance = 0\n' > "$T/endurance.ini"
expect 1 "endurance.ini:2: key 'wear.endurance': value '0' out of range" "endurance 0" -- "$EXE" run "$T/endurance.ini" -o "$T/x.h5"
printf '[wear]\nendurance = -1e6\n' > "$T/endurance2.ini"
expect 1 "key 'wear.endurance': value '-1e6' out of range" "negative endurance" -- "$EXE" run "$T/endurance2.ini" -o "$T/x.h5"
printf '[workload]\nseq_len = 64\nlayers = 1\n[digital]\nbuffer_bytes = 400\n' > "$T/tiny-buffer.ini"
expect 1 "digital.buffer_bytes = 400 is too small for dense_tiled: one query block needs at least 456 bytes" \
  "buffer below one dense_tiled block" -- "$EXE" run "$T/tiny-buffer.ini" -o "$T/x.h5"
printf '[workload]\nseq_len = 64\nlayers = 1\n[wear]\nscoring_cells = 8000\n' > "$T/cells.ini"
expect 1 "wear.scoring_cells = 8000: the scoring arrays must hold one head's keys, at least 8192 cells" \
  "scoring arrays below one head" -- "$EXE" run "$T/cells.ini" -o "$T/x.h5"
[ ! -e "$T/x.h5" ] && notmp "$T/x.h5" && ok "no output after config errors" || bad "no output after config errors"

# output errors: nothing left behind
expect 1 "$T/nodir/out.h5" "unwritable output" -- "$EXE" run "$T/small.ini" -o "$T/nodir/out.h5"
[ ! -e "$T/nodir" ] && ok "no directory created" || bad "no directory created"

# report: tables from the trace alone
expect 0 "  all dense       100.00" "report of a run" -- "$EXE" report "$T/a.h5"
grep -q "  all sprint" "$T/out" && grep -q "energy by component" "$T/out" && grep -q "^reram_read" "$T/out" \
  && ok "report lists schemes and components" || bad "report lists schemes and components"
grep "  all dense" "$T/out" | grep -q " 1.00x    1.00x" && ok "dense is the reference (1.00x)" || bad "dense is the reference (1.00x)"
expect 1 "$T/none.h5: cannot open trace" "report of a missing file" -- "$EXE" report "$T/none.h5"
expect 1 "small.ini: not an HDF5 file" "report of a non-HDF5 file" -- "$EXE" report "$T/small.ini"
expect 2 "expected one trace file" "report without a file" -- "$EXE" report
expect 0 "usage: sprintsim report" "report --help" -- "$EXE" report --help

# a directory as output is refused before the run
mkdir "$T/outdir"
expect 1 "outdir: is a directory" "-o directory" -- "$EXE" run "$T/small.ini" -o "$T/outdir"
expect 1 "is a directory" "-o name ending in /" -- "$EXE" run "$T/small.ini" -o "$T/outdir/"
notmp "$T/outdir" && [ -z "$(ls -A "$T/outdir")" ] && ok "nothing written for a directory" || bad "nothing written for a directory"

# a run that cannot fit in memory is refused up front: whole heads of
# 16384 tokens (run.block_rows = seq_len; the automatic blocks of N > 4096
# would fit, and run for hours)
printf '[workload]\nseq_len = 16384\nheads = 64\n[run]\nblock_rows = 16384\n' > "$T/huge.ini"
expect 1 "GiB of memory.*set run.block_rows below 16384" "oversized run refused" -- "$EXE" run "$T/huge.ini" -o "$T/huge.h5"
[ ! -e "$T/huge.h5" ] && notmp "$T/huge.h5" && ok "no output for an oversized run" || bad "no output for an oversized run"

# source model: the errors, then a three-image ViT run and a two-window
# language-model run (docs/models.md)
printf '[threshold]\nmode = learned\n' > "$T/learned.ini"
expect 1 "'learned' needs workload.source = model" "learned thresholds need a model" -- "$EXE" run "$T/learned.ini" -o "$T/x.h5"
printf '[workload]\nsource = model\nmodel = %s/nomodel.h5\n' "$T" > "$T/nomodel.ini"
expect 1 "$T/nomodel.h5: cannot open the model" "missing model file" -- "$EXE" run "$T/nomodel.ini" -o "$T/x.h5"
printf '[workload]\nsource = model\nmodel = %s/models/vit-fmnist.h5\nreference_model = %s/noref.h5\n' "$S" "$T" > "$T/noref.ini"
expect 1 "$T/noref.h5: cannot open the model" "missing reference model" -- "$EXE" run "$T/noref.ini" -o "$T/x.h5"
printf '[workload]\nsource = model\nmodel = %s/models/vit-fmnist-dense.h5\n[threshold]\nmode = learned\n' "$S" > "$T/dense-learned.ini"
expect 1 "has no dataset 'theta'" "learned thresholds of a dense model" -- "$EXE" run "$T/dense-learned.ini" -o "$T/x.h5"
printf '[workload]\nsource = vit\nmodel = %s/models/vit-fmnist.h5\ndataset = %s/nodata\n' "$S" "$T" > "$T/nodata.ini"
expect 1 "$T/nodata/t10k-images-idx3-ubyte.gz: cannot open" "missing dataset (source vit, the old name)" -- "$EXE" run "$T/nodata.ini" -o "$T/x.h5"
printf '[workload]\nsource = model\nmodel = %s/models/lm-kjv.h5\nwindows = 1\nfirst_window = 100000\n' "$S" > "$T/lmbig.ini"
expect 1 "first_window 100000 + workload.windows 1 exceed the" "windows beyond the evaluation split" -- "$EXE" run "$T/lmbig.ini" -o "$T/x.h5"
[ ! -e "$T/x.h5" ] && notmp "$T/x.h5" && ok "no output for a failed model run" || bad "no output for a failed model run"
cat > "$T/lm.ini" <<INI
[workload]
source = model
model = $S/models/lm-kjv.h5
windows = 2
first_window = 3
[threshold]
mode = learned
[baselines]
leopard = false
sanger = false
INI
expect 0 "^sprint " "language-model run" -- "$EXE" run "$T/lm.ini" -o "$T/lm.h5" --threads 2
grep -q "^scheme  *bpc  *loss%  *keep%" "$T/out" && ok "lm run: header" || bad "lm run: header"
grep -q "^reference .* 0.000  100.00" "$T/out" && ok "lm run: reference row" || bad "lm run: reference row"
grep -q "causal" "$T/out" && ok "lm run: causal model named" || bad "lm run: causal model named"
[ -f "$T/lm.h5" ] && notmp "$T/lm.h5" && ok "lm output written" || bad "lm output written"
if [ -r /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  cat > "$T/vit.ini" <<INI
[workload]
source = model
model = $S/models/vit-fmnist.h5
images = 3
first_image = 9997
[threshold]
mode = learned
offset = 0.1
INI
  expect 1 "$T/nope/v.h5: cannot write into the folder $T/nope" "vit output in a missing folder refused before the run" -- "$EXE" run "$T/vit.ini" -o "$T/nope/v.h5"
  grep -q "^sprint " "$T/out" && bad "vit: nothing evaluated for an unwritable output" || ok "vit: nothing evaluated for an unwritable output"
  expect 1 "the output is a folder" "vit output naming a folder refused" -- "$EXE" run "$T/vit.ini" -o "$T/"
  expect 0 "^sprint " "vit run" -- "$EXE" run "$T/vit.ini" -o "$T/vit.h5" --threads 2
  : > "$T/plain.file"
  [ "$(stat -c %a "$T/vit.h5")" = "$(stat -c %a "$T/plain.file")" ] && ok "vit output has the mode of a plain file" || bad "vit output has the mode of a plain file"
  grep -q "^exact  *[0-9.]*  *100.00 .* 100.00" "$T/out" && ok "vit run: exact row" || bad "vit run: exact row"
  grep -q "^reference .*  0.000  100.00" "$T/out" && ok "vit run: reference row" || bad "vit run: reference row"
  [ -f "$T/vit.h5" ] && notmp "$T/vit.h5" && ok "vit output written" || bad "vit output written"
  printf '[workload]\nsource = model\nmodel = %s/models/vit-fmnist.h5\nimages = 4\nfirst_image = 9997\n' "$S" > "$T/vitbig.ini"
  expect 1 "first_image 9997 + workload.images 4 exceed the 10000 test images" "images beyond the test set" -- "$EXE" run "$T/vitbig.ini" -o "$T/x.h5"
else
  echo "skip - vit run: /usr/share/datasets/fashion-mnist absent"
fi

# config: prints the resolved configuration, which parses back identically
expect 0 "seq_len = 64" "config command" -- "$EXE" config "$T/small.ini"
cp "$T/out" "$T/resolved.ini"
expect 0 "" "resolved config parses" -- "$EXE" config "$T/resolved.ini"
cmp -s "$T/out" "$T/resolved.ini" && ok "config round trip" || bad "config round trip"
expect 2 "one CONFIG at most" "config with two files" -- "$EXE" config a b

# users' own Q/K/V (docs/qkv.md): the example, sprintsim synth, errors
expect 0 "qkv-example.h5 item 1, 2 layers x 4 heads, N = 48, d = 64" "run examples/qkv.ini (from any folder)" -- "$EXE" run "$S/examples/qkv.ini" -o "$T/qkv.h5"
expect 0 "qkv_file = /" "config of qkv.ini names the file by its absolute path" -- "$EXE" config "$S/examples/qkv.ini"
grep -q "^seq_len = 48$" "$T/out" && grep -q "^heads = 4$" "$T/out" && ok "config of qkv.ini: sizes from the file" || bad "config of qkv.ini: sizes from the file"
cp "$T/out" "$T/qkv-resolved.ini"
expect 0 "" "resolved qkv config parses" -- "$EXE" config "$T/qkv-resolved.ini"
cmp -s "$T/out" "$T/qkv-resolved.ini" && ok "qkv config round trip" || bad "qkv config round trip"
cat > "$T/synth.ini" <<'INI'
[run]
seed = 3
[workload]
seq_len = 20
layers = 2
heads = 2
head_dim = 16
INI
expect 0 "2 items (3 padding tokens per item), seed 3" "synth with padding" -- "$EXE" synth "$T/synth.ini" --batch 2 --pad 3 -o "$T/s.h5"
printf '[run]
seed = 3
[workload]
source = qkv
qkv_file = s.h5
qkv_item = 0
' > "$T/s0.ini"
printf '[run]
seed = 3
[workload]
source = qkv
qkv_file = s.h5
qkv_item = 1
' > "$T/s1.ini"
"$EXE" run "$T/synth.ini" -o "$T/syn.h5" > "$T/syn.out" 2>&1
"$EXE" run "$T/s0.ini" -o "$T/s0.h5" > "$T/s0.out" 2>&1
# the same Q/K/V and seed give the same table (the header names the source)
sed 1d "$T/syn.out" | grep -v '^trace:' > "$T/syn.tab"; sed 1d "$T/s0.out" | grep -v '^trace:' > "$T/s0.tab"
cmp -s "$T/syn.tab" "$T/s0.tab" && ok "run on synth's file equals the synthetic run" || { bad "run on synth's file equals the synthetic run"; diff "$T/syn.tab" "$T/s0.tab"; }
expect 0 "N = 17, d = 16" "item 1: padding dropped (20 - 3 tokens)" -- "$EXE" run "$T/s1.ini" -o "$T/s1.h5"
printf '[workload]
source = qkv
qkv_file = s.h5
qkv_item = 2
' > "$T/s2.ini"
expect 1 "key 'workload.qkv_item': value 2 out of range" "item out of range" -- "$EXE" run "$T/s2.ini" -o "$T/x.h5"
printf '[workload]
source = qkv
qkv_file = none.h5
' > "$T/none.ini"
expect 1 "$T/none.h5: cannot open Q/K/V file" "missing qkv file" -- "$EXE" run "$T/none.ini" -o "$T/x.h5"
printf '[workload]
source = qkv
' > "$T/nofile.ini"
expect 1 "nofile.ini:2: key 'workload.qkv_file' is required" "source qkv without a file" -- "$EXE" run "$T/nofile.ini" -o "$T/x.h5"
printf '[workload]
source = qkv
qkv_file = small.ini
' > "$T/txt.ini"
expect 1 "small.ini: not an HDF5 file" "qkv file not HDF5" -- "$EXE" config "$T/txt.ini"
expect 2 "-o FILE.h5 is required" "synth without -o" -- "$EXE" synth "$T/synth.ini"
expect 2 "--pad needs --batch" "synth --pad alone" -- "$EXE" synth "$T/synth.ini" --pad 2 -o "$T/x.h5"
expect 2 "item 1 would have 0 real tokens" "synth pad too large" -- "$EXE" synth "$T/synth.ini" --batch 2 --pad 20 -o "$T/x.h5"
expect 0 "usage: sprintsim synth" "synth --help" -- "$EXE" synth --help
expect 0 "--pad P" "help synth" -- "$EXE" help synth
[ ! -e "$T/x.h5" ] && notmp "$T/x.h5" && ok "no output after qkv errors" || bad "no output after qkv errors"
# run.device_model: a device-model file written by the library's writer
# (tests/test_device --write) is read, applied, listed and recorded
if "$B/tests/test_device" --write "$T/dev.h5" > /dev/null 2>&1; then
  printf '[run]\ndevice_model = %s\n[workload]\nseq_len = 64\nlayers = 2\nheads = 2\n' "dev.h5" > "$T/dev.ini"
  expect 0 "sets 6 keys" "run with a device model" -- "$EXE" run "$T/dev.ini" -o "$T/dev_run.h5" --threads 1
  grep -q "^  crossbar.cell_v0  *= 0.2497" "$T/out" && grep -q "^  analog.thermal_excess  *= 1.385" "$T/out" \
    && grep -q "fnv1a64:" "$T/out" && ok "device keys printed" || bad "device keys printed"
  expect 0 "device model: $PWD/${T#./}/dev.h5 (fnv1a64:" "report names the device model" -- "$EXE" report "$T/dev_run.h5"
  grep -q "^  analog.thermal_excess  *= 1.385" "$T/out" && ok "report lists the applied keys" || bad "report lists the applied keys"
  expect 0 "cell_v0 = 0.2497" "config applies the device model" -- "$EXE" config "$T/dev.ini"
  grep -q "^thermal_excess = 1.385$" "$T/out" && grep -q "sets 6 keys" "$T/err" \
    && ok "config: values in the INI, list on stderr" || bad "config: values in the INI, list on stderr"
  printf '[run]\ndevice_model = %s\n' "nodev.h5" > "$T/nodev.ini"
  expect 1 "run.device_model: $PWD/${T#./}/nodev.h5: cannot open device model" "missing device model" -- "$EXE" run "$T/nodev.ini" -o "$T/x.h5"
  printf '[run]\ndevice_model = %s\n' "small.ini" > "$T/notdev.ini"
  expect 1 "run.device_model: $PWD/${T#./}/small.ini: not an HDF5 file" "device model not HDF5" -- "$EXE" run "$T/notdev.ini" -o "$T/x.h5"
  printf '[run]\ndevice_model = %s\n' "a.h5" > "$T/tracedev.ini"
  expect 1 "attribute 'format' of '/' is missing" "a trace is not a device model" -- "$EXE" run "$T/tracedev.ini" -o "$T/x.h5"
  [ ! -e "$T/x.h5" ] && notmp "$T/x.h5" && ok "device model errors leave no output" || bad "device model errors leave no output"
  # a sweep applies the device model at every point, and an axis wins over it
  printf '[run]\ndevice_model = dev.h5\n[workload]\nseq_len = 32\nlayers = 1\nheads = 2\n[sweep]\nanalog.thermal_excess = 1, 3\nschemes = sprint, dense\n' > "$T/devsw.ini"
  expect 0 "(4 rows)" "sweep with a device model" -- "$EXE" sweep "$T/devsw.ini" -o "$T/devsw.h5"
  if /usr/bin/python3 -c "
import h5py, sys
t = [x.decode() for x in h5py.File('$T/devsw.h5', 'r')['points/config_ini'][:]]
ok = all('cell_v0 = 0.2497' in x for x in t) and 'thermal_excess = 1\n' in t[0] and 'thermal_excess = 3\n' in t[1]
sys.exit(0 if ok else 1)"; then ok "sweep points: device keys applied, the axis over them"; else bad "sweep points: device keys applied, the axis over them"; fi
else
  bad "tests/test_device --write"
fi

# an independent reader (h5py + numpy) recomputes every decision of a full trace
PY=/usr/bin/python3
if [ -x "$PY" ] && "$PY" -c 'import h5py, numpy' 2>/dev/null; then
  "$EXE" run "$T/small.ini" -o "$T/full.h5" --trace full > /dev/null 2>&1
  expect 0 "all decisions and counts agree" "h5py recomputes the full trace" -- "$PY" "$S/tests/check_trace.py" "$T/full.h5"
  # the same for a causal run (keys j <= i only; NaN scores above the diagonal)
  printf '[workload]\nseq_len = 64\nlayers = 2\nheads = 2\ncausal = yes\n[crossbar]\ng_max = 80 uS\n' > "$T/causal.ini"
  expect 0 "bert-base, causal, 2 layers" "causal run header" -- "$EXE" run "$T/causal.ini" -o "$T/causal.h5" --trace full
  expect 0 "4 causal heads recomputed" "h5py recomputes a causal full trace" -- "$PY" "$S/tests/check_trace.py" "$T/causal.h5"
  # sprintsim crossbar on files made here: currents against numpy
  "$PY" - "$T" <<'PYEOF'
import sys, h5py, numpy as np
t = sys.argv[1]
rng = np.random.default_rng(2385)
G = 1e-6 + 99e-6 * rng.random((6, 5)); V = 0.2 * (2 * rng.random((3, 6)) - 1)
with h5py.File(t + "/G.h5", "w") as f: f["G"] = G
with h5py.File(t + "/V.h5", "w") as f: f["V"] = V
with h5py.File(t + "/Vbad.h5", "w") as f: f["V"] = V[:, :4]
with h5py.File(t + "/Gint.h5", "w") as f: f["G"] = np.ones((6, 5), dtype=np.int32)
with h5py.File(t + "/Gnan.h5", "w") as f: g = G.copy(); g[2, 3] = np.nan; f["G"] = g
with h5py.File(t + "/Gneg.h5", "w") as f: g = G.copy(); g[1, 1] = -1e-6; f["G"] = g
PYEOF
  expect 0 "6 x 5\|3 x 5 column currents (model ideal)" "crossbar ideal" -- "$EXE" crossbar --g "$T/G.h5" --v "$T/V.h5" --model ideal -o "$T/I.h5"
  "$PY" -c "
import h5py, numpy as np, sys
G = h5py.File('$T/G.h5')['G'][:]; V = h5py.File('$T/V.h5')['V'][:]; f = h5py.File('$T/I.h5')
I = f['I'][:]
assert f['I'].attrs['unit'].decode() == 'A' and f['I'].attrs['model'].decode() == 'ideal'
assert np.allclose(I, V @ G, rtol=1e-12, atol=0), 'ideal currents differ from V G'
" && ok "crossbar ideal equals V G" || bad "crossbar ideal equals V G"
  expect 0 "largest first-order correction" "crossbar analytic" -- "$EXE" crossbar --g "$T/G.h5" --v "$T/V.h5" --model analytic --r-wl 2.5 --r-bl 3 -o "$T/Ia.h5"
  expect 0 "relative error bound" "crossbar nodal" -- "$EXE" crossbar --g "$T/G.h5" --v "$T/V.h5" --model nodal --r-wl 2.5 --r-bl 3 -o "$T/In.h5"
  "$PY" -c "
import h5py, numpy as np
G = h5py.File('$T/G.h5')['G'][:]; V = h5py.File('$T/V.h5')['V'][:]
In = h5py.File('$T/In.h5')['I'][:]; Ia = h5py.File('$T/Ia.h5')['I'][:]
I0 = V @ G; s = np.abs(I0).max()
drop = np.abs(In - I0).max() / s; gap = np.abs(In - Ia).max() / s
assert drop > 1e-5 and gap < 0.05 * drop, (drop, gap)
" && ok "nodal vs analytic: second-order gap" || bad "nodal vs analytic: second-order gap"
  expect 2 "needs --r-wl and --r-bl" "analytic without resistances" -- "$EXE" crossbar --g "$T/G.h5" --v "$T/V.h5" --model analytic -o "$T/x.h5"
  expect 2 "'hspice' is not one of ideal, analytic, nodal, spice" "unknown model" -- "$EXE" crossbar --g "$T/G.h5" --v "$T/V.h5" --model hspice -o "$T/x.h5"
  expect 0 "model spice" "crossbar spice" -- "$EXE" crossbar --g "$T/G.h5" --v "$T/V.h5" --model spice --r-wl 2.5 --r-bl 3 -o "$T/Is.h5" --progress
  grep -q "^crossbar: \([0-9]*\)/\1 SPICE vectors (100%), .* elapsed$" "$T/err" && ok "crossbar spice --progress: SPICE vectors done" || bad "crossbar spice --progress: SPICE vectors done"
  "$PY" -c "
import h5py, numpy as np
In = h5py.File('$T/In.h5')['I'][:]; Is = h5py.File('$T/Is.h5')['I'][:]
assert np.abs(Is - In).max() <= 1e-3 * np.abs(In).max(), 'ngspice and nodal differ'
" && ok "ngspice agrees with the nodal solver" || bad "ngspice agrees with the nodal solver"
  expect 2 "'-3' is not a resistance" "negative resistance" -- "$EXE" crossbar --g "$T/G.h5" --v "$T/V.h5" --model analytic --r-wl -3 --r-bl 1 -o "$T/x.h5"
  expect 2 "are required" "missing -o" -- "$EXE" crossbar --g "$T/G.h5" --v "$T/V.h5" --model ideal
  expect 1 "/V has 4 columns but" "shape mismatch" -- "$EXE" crossbar --g "$T/G.h5" --v "$T/Vbad.h5" --model ideal -o "$T/x.h5"
  expect 1 "Gint.h5: dataset '/G' is not a floating-point type" "integer G" -- "$EXE" crossbar --g "$T/Gint.h5" --v "$T/V.h5" --model ideal -o "$T/x.h5"
  expect 1 "element \[2\]\[3\] is nan" "NaN in G" -- "$EXE" crossbar --g "$T/Gnan.h5" --v "$T/V.h5" --model ideal -o "$T/x.h5"
  expect 1 "G\[1\]\[1\] = -1e-06 S" "negative conductance" -- "$EXE" crossbar --g "$T/Gneg.h5" --v "$T/V.h5" --model ideal -o "$T/x.h5"
  expect 1 "V.h5: dataset '/G' is missing" "wrong dataset" -- "$EXE" crossbar --g "$T/V.h5" --v "$T/V.h5" --model ideal -o "$T/x.h5"
  [ ! -e "$T/x.h5" ] && notmp "$T/x.h5" && ok "crossbar errors leave no output" || bad "crossbar errors leave no output"
  # a qkv file written by h5py (UTF-8 variable-length format attribute,
  # int64 version, float64 data, bool-free uint8 mask); NaN in padding
  "$PY" - "$T" <<'PYEOF'
import sys, h5py, numpy as np
t = sys.argv[1]
rng = np.random.default_rng(2385)
Q, K, V = (rng.standard_normal((2, 3, 10, 8)) for _ in range(3))
mask = np.ones((2, 10), dtype=np.uint8); mask[1, [0, 4, 9]] = 0
Q[1, :, 4, :] = np.nan
with h5py.File(t + "/py.h5", "w") as f:
    f.attrs["format"] = "sprintsim-qkv"; f.attrs["version"] = 1
    for l in range(2):
        g = f.create_group("layer_%d" % l); g["Q"] = Q * (l + 1); g["K"] = K; g["V"] = V
    f["mask"] = mask
PYEOF
  # the committed example is what its documented command makes (to float
  # rounding: the generator is bit-identical only with the same libm and
  # OpenBLAS kernel)
  "$EXE" synth "$S/examples/qkv-synth.ini" --batch 2 --pad 16 -o "$T/ex.h5" > /dev/null 2>&1
  "$PY" -c "
import h5py, numpy as np
a = h5py.File('$T/ex.h5'); b = h5py.File('$S/examples/qkv-example.h5')
assert sorted(a) == sorted(b) == ['layer_0', 'layer_1', 'mask']
assert (a['mask'][()] == b['mask'][()]).all()
for l in ('layer_0', 'layer_1'):
    for t in 'QKV':
        assert np.allclose(a[l][t][()], b[l][t][()], rtol=1e-5, atol=1e-6), (l, t)
" && ok "examples/qkv-example.h5 is what sprintsim synth makes" || bad "examples/qkv-example.h5 is what sprintsim synth makes"
  printf '[workload]\nsource = qkv\nqkv_file = py.h5\nqkv_item = 1\n[run]\ntrace = full\n' > "$T/py.ini"
  expect 0 "2 layers x 3 heads, N = 7, d = 8" "run on an h5py-written qkv file" -- "$EXE" run "$T/py.ini" -o "$T/py-run.h5"
  "$PY" -c "
import h5py, numpy as np
f = h5py.File('$T/py.h5'); t = h5py.File('$T/py-run.h5')
real = f['mask'][1].astype(bool)
Q = f['layer_1/Q'][1, 2][real]; qi = t['layers/layer_01/head_02/q_int'][:].astype(float)
s = t['layers/layer_01/head_02'].attrs['q_scale']
assert qi.shape == Q.shape and np.abs(qi * s - Q).max() <= 0.5 * s + 1e-6 * np.abs(Q).max(), 'q_int is not the quantized file Q'
assert t['config/workload/qkv_file'][()].decode().endswith('/py.h5')
" && ok "trace's quantized Q is the file's Q with padding dropped" || bad "trace's quantized Q is the file's Q with padding dropped"
  # the trace records the device model: provenance, identity, applied values
  if [ -f "$T/dev_run.h5" ]; then
    "$PY" - "$T" <<'PYEOF' && ok "trace records the device model" || bad "trace records the device model"
import os, sys, h5py
t = sys.argv[1]
d = h5py.File(t + "/dev.h5", "r"); r = h5py.File(t + "/dev_run.h5", "r")
g = r["device_model"]; a = g.attrs
assert a["path"].decode() == os.path.abspath(t + "/dev.h5")
assert a["content_id"].decode().startswith("fnv1a64:") and len(a["content_id"]) == 24
assert a["created"].decode() == d["provenance/created"][()].decode()
assert a["ngspice_version"].decode() == d["provenance/ngspice_version"][()].decode()
assert a["n_applied"] == 6
keyed = {p.attrs["key"].decode(): p for p in d["params"].values() if p.attrs["key"]}
assert set(keyed) == set(g.keys()), (set(keyed), set(g.keys()))
for key, p in keyed.items():
    sec, name = key.split(".")
    assert g[key][()] == p[()] == r["config"][sec][name][()], key
    assert g[key].attrs["ci95_lo"] == p.attrs["ci95_lo"]
PYEOF
    # an unknown key in a device file written by another tool (h5py)
    cp "$T/dev.h5" "$T/dev_bad.h5"
    "$PY" -c "
import h5py
with h5py.File('$T/dev_bad.h5', 'r+') as f: f['params/cell_v0'].attrs['key'] = 'crossbar.cell_vzero'
"
    printf '[run]\ndevice_model = %s\n' "dev_bad.h5" > "$T/devbad.ini"
    expect 1 "dataset '/params/cell_v0': key 'crossbar.cell_vzero' is not a floating-point configuration key" "device file with an unknown key" -- "$EXE" run "$T/devbad.ini" -o "$T/x.h5"
  fi
else
  echo "skip - h5py recomputation and crossbar files (no python3-h5py for /usr/bin/python3)"
fi

# docs/config.md lists every key with its current default
"$EXE" config > "$T/defaults.ini"
missing=0
while IFS= read -r line; do
  case "$line" in
    "["*|";"*|"") continue ;;
  esac
  key=${line%% = *}
  val=${line#* = }
  val=${val#"$PWD/"} # relative default file names are printed absolute
  grep -qF "| \`$key\` | $val |" "$S/docs/config.md" || { echo "    docs/config.md lacks: $key = $val"; missing=1; }
done < "$T/defaults.ini"
[ $missing -eq 0 ] && ok "docs/config.md is current" || bad "docs/config.md is current (run scripts/gen_config_doc.py)"

# interruption: SIGINT mid-run leaves neither the file nor its temporary
printf '[workload]\nseq_len = 512\nlayers = 64\n' > "$T/long.ini"
"$EXE" run "$T/long.ini" -o "$T/int.h5" --threads 1 > "$T/int.out" 2> "$T/int.err" &
pid=$!
sleep 1
kill -INT $pid
wait $pid
st=$?
if [ "$st" -eq 130 ] && [ ! -e "$T/int.h5" ] && notmp "$T/int.h5" && grep -q interrupted "$T/int.err"; then
  ok "SIGINT: exit 130, no output"
else
  bad "SIGINT: exit $st"; cat "$T/int.err"; ls "$T"
fi
# a closed standard output stops the run and leaves nothing either
"$EXE" run "$T/long.ini" -o "$T/pipe.h5" --threads 1 2> "$T/pipe.err" | head -1 > /dev/null
if [ ! -e "$T/pipe.h5" ] && notmp "$T/pipe.h5" && grep -q "standard output closed" "$T/pipe.err"; then
  ok "closed stdout: no output"
else
  bad "closed stdout"; cat "$T/pipe.err"; ls "$T"
fi

# sweep: a grid over config keys, points in parallel, HDF5 + CSV outputs
cat > "$T/sw.ini" <<'INI'
[workload]
seq_len = 64
layers = 2
heads = 2
[sweep]
threshold.keep_rate + baselines.topk_fraction = 0.1, 0.2
analog.cmp_noise_sigma = 0, 1 uA
schemes = sprint, dense, oracle, topk
INI
expect 0 "4 points (threshold.keep_rate + baselines.topk_fraction x2, analog.cmp_noise_sigma x2) x 4 schemes" \
  "sweep runs" -- "$EXE" sweep "$T/sw.ini" -o "$T/sw1.h5" --threads 1 --progress
grep -q "sweep: 4/4 done (point [1-4]: threshold.keep_rate" "$T/err" && grep -q "elapsed, ETA" "$T/err" && ! grep -q "done" "$T/out" \
  && ok "sweep --progress: points done, elapsed and ETA on stderr" || bad "sweep --progress: points done, elapsed and ETA on stderr"
[ -f "$T/sw1.h5" ] && [ -f "$T/sw1.csv" ] && notmp "$T/sw1.h5" && notmp "$T/sw1.csv" \
  && ok "sweep writes SWEEP.h5 and SWEEP.csv, no temporaries" || bad "sweep writes SWEEP.h5 and SWEEP.csv"
[ "$(wc -l < "$T/sw1.csv")" -eq 17 ] && ok "sweep CSV: header + 4 points x 4 schemes" || bad "sweep CSV rows"
"$EXE" sweep "$T/sw.ini" -o "$T/sw2.h5" --threads 2 > /dev/null 2> "$T/sw2.err"
[ ! -s "$T/sw2.err" ] && ok "sweep: no progress when stderr is not a terminal" || bad "sweep: no progress when stderr is not a terminal"
cmp -s "$T/sw1.csv" "$T/sw2.csv" && ok "sweep: 1 and 2 threads give byte-identical CSV" || bad "sweep: 1 and 2 threads give byte-identical CSV"
cmp -s "$T/sw1.h5" "$T/sw2.h5" && ok "sweep: 1 and 2 threads give byte-identical HDF5" || bad "sweep: 1 and 2 threads give byte-identical HDF5"
# errors: exit 1 with file:line, the point and the key; nothing written
printf '[sweep]\nanalog.cmp_noise_sgma = 0, 1 nA\n' > "$T/swk.ini"
expect 1 "swk.ini:2: \[sweep\] key 'analog.cmp_noise_sgma' names no configuration key" "sweep: unknown key" -- "$EXE" sweep "$T/swk.ini" -o "$T/swx.h5"
printf '[workload]\nseq_len = 64\n[sweep]\nthreshold.keep_rate = 0.1, 0.2\nanalog.cmp_noise_sigma = 0, 50 V\n' > "$T/swv.ini"
expect 1 "swv.ini:5: \[sweep\] point 2 of 4 (threshold.keep_rate = 0.1, analog.cmp_noise_sigma = 50 V): key 'analog.cmp_noise_sigma'" \
  "sweep: bad value names the point" -- "$EXE" sweep "$T/swv.ini" -o "$T/swx.h5"
printf '[sweep]\nthreshold.keep_rate =\n' > "$T/swe.ini"
expect 1 "axis 'threshold.keep_rate' has no values" "sweep: empty axis" -- "$EXE" sweep "$T/swe.ini" -o "$T/swx.h5"
printf '[sweep]\nrun.seed = 1,2,3,4,5,6,7,8,9,10\nanalog.temperature = 1,2,3,4,5,6,7,8,9,10\nanalog.v_read = 1,2,3,4,5,6,7,8,9,10,11\n' > "$T/swn.ini"
expect 1 "3 axes make 1100 points, more than max_points = 1000" "sweep: too many points" -- "$EXE" sweep "$T/swn.ini" -o "$T/swx.h5"
expect 1 "unknown section '\[sweep\]'" "run refuses a [sweep] section" -- "$EXE" run "$T/sw.ini" -o "$T/swx.h5"
expect 2 "a CONFIG with a \[sweep\] section is required" "sweep without CONFIG" -- "$EXE" sweep
expect 2 "unknown option '--seed'" "sweep: unknown option" -- "$EXE" sweep "$T/sw.ini" --seed 3
expect 0 "usage: sprintsim sweep" "help sweep" -- "$EXE" help sweep
expect 1 "is a directory" "sweep: -o directory" -- "$EXE" sweep "$T/sw.ini" -o "$T/outdir"
[ ! -e "$T/swx.h5" ] && [ ! -e "$T/swx.csv" ] && notmp "$T/swx.h5" && notmp "$T/swx.csv" \
  && ok "sweep errors leave no output" || bad "sweep errors leave no output"
# SIGINT: stops cleanly, exit 130, neither file nor temporary
printf '[workload]\nseq_len = 512\nlayers = 12\n[sweep]\nthreshold.keep_rate = 0.1, 0.2, 0.3, 0.4\n' > "$T/swl.ini"
"$EXE" sweep "$T/swl.ini" -o "$T/swi.h5" --threads 2 > "$T/swi.out" 2> "$T/swi.err" &
pid=$!
# its header comes after its signal handlers (a background job of sh
# ignores SIGINT until then: on a loaded machine an earlier one is lost)
n=0
while ! grep -q "^sprintsim .* sweep .* points" "$T/swi.out" 2> /dev/null && [ $n -lt 1200 ]; do sleep 0.05; n=$((n + 1)); done
sleep 1
kill -INT $pid
wait $pid
st=$?
if [ "$st" -eq 130 ] && [ ! -e "$T/swi.h5" ] && [ ! -e "$T/swi.csv" ] && notmp "$T/swi.h5" && notmp "$T/swi.csv" \
   && grep -q "interrupted after .* the finished points are kept in .*swi.journal: add --resume to go on" "$T/swi.err" \
   && [ -f "$T/swi.journal" ]; then
  ok "sweep SIGINT: exit 130, no output, the journal kept"
else
  bad "sweep SIGINT: exit $st"; cat "$T/swi.err"; ls "$T"
fi
if [ -x "$PY" ] && "$PY" -c 'import h5py, numpy' 2>/dev/null; then
  # the CSV and HDF5 agree; point 3 equals a separate `sprintsim run` of its configuration
  "$PY" -c "import h5py; open('$T/p3.ini', 'w').write(h5py.File('$T/sw1.h5')['points/config_ini'][3].decode())"
  "$EXE" run "$T/p3.ini" -o "$T/p3.h5" --threads 2 > /dev/null 2>&1
  expect 0 "every scheme's totals equal the separate run's" "sweep point equals a separate run" -- \
    "$PY" "$S/tests/check_sweep.py" "$T/sw1.h5" "$T/sw1.csv" 3 "$T/p3.h5"
  # noise changes SPRINT at the same keep-rate target but not dense
  "$PY" - "$T/sw1.h5" <<'PYEOF' && ok "sweep: noise moves sprint, not dense" || bad "sweep: noise moves sprint, not dense"
import sys, h5py, numpy as np
r = h5py.File(sys.argv[1])["results"]
s = [x.decode() for x in r["scheme"][:]]
m = r["mass_retained"][:]
assert m[0, s.index("dense")] == m[1, s.index("dense")]
assert m[0, s.index("sprint")] != m[1, s.index("sprint")]
PYEOF
  if command -v gnuplot > /dev/null 2>&1; then
    expect 0 "sw1-pareto-mass_retained.png" "plot a sweep" -- "$S/scripts/plot" "$T/sw1.h5"
    n=0
    for f in "$T"/sw1-pareto-mass_retained.png "$T"/sw1-pareto-rel_fro.png "$T"/sw1-noise-cmp_noise_sigma.png; do
      [ -s "$f" ] && [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = "211PNG" ] && n=$((n + 1))
    done
    [ $n -eq 3 ] && ok "plot: non-empty PNG files" || bad "plot: non-empty PNG files ($n of 3)"
    expect 1 "none.h5: no such file" "plot: missing file" -- "$S/scripts/plot" "$T/none.h5"
    expect 1 "not an HDF5 file" "plot: not HDF5" -- "$S/scripts/plot" "$T/sw.ini"
    expect 1 "not a sprintsim sweep file" "plot: a run trace" -- "$S/scripts/plot" "$T/a.h5"
    expect 2 "no accuracy metric 'top5'" "plot: unknown metric" -- "$S/scripts/plot" "$T/sw1.h5" --metric top5
  else
    echo "skip - scripts/plot (no gnuplot)"
  fi
  # a ViT sweep (evaluator image-model): 1 and 2 threads byte-identical,
  # every point equals a separate `sprintsim run` of its stored configuration
  if [ -r /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
    cat > "$T/vsw.ini" <<INI
[workload]
source = model
model = $S/models/vit-fmnist.h5
images = 6
first_image = 321
[threshold]
mode = keep_rate
bits = 7
[sweep]
threshold.keep_rate + baselines.topk_fraction = 0.3, 0.9
analog.cmp_noise_sigma = 0, 200 nA
schemes = sprint, dense, topk, window
INI
    expect 0 "evaluator image-model" "vit sweep runs" -- "$EXE" sweep "$T/vsw.ini" -o "$T/vsw1.h5" --threads 1
    "$EXE" sweep "$T/vsw.ini" -o "$T/vsw2.h5" --threads 2 > "$T/vsw2.out" 2>&1
    cmp -s "$T/vsw1.csv" "$T/vsw2.csv" && cmp -s "$T/vsw1.h5" "$T/vsw2.h5" \
      && ok "vit sweep: 1 and 2 threads give byte-identical CSV and HDF5" \
      || { bad "vit sweep: 1 and 2 threads give byte-identical CSV and HDF5"; tail -5 "$T/vsw2.out"; }
    head -1 "$T/vsw1.csv" | grep -q "^point,threshold.keep_rate + baselines.topk_fraction,analog.cmp_noise_sigma,scheme,top1,agreement,top1_exact,top1_reference,loss_pp,energy_J," \
      && ok "vit sweep CSV columns" || bad "vit sweep CSV columns"
    pairs=""
    for p in 0 1 2 3; do
      "$PY" -c "import h5py; open('$T/vp$p.ini', 'w').write(h5py.File('$T/vsw1.h5')['points/config_ini'][$p].decode())"
      "$EXE" run "$T/vp$p.ini" -o "$T/vp$p.h5" --threads 2 > /dev/null 2>&1
      pairs="$pairs $p $T/vp$p.h5"
    done
    # shellcheck disable=SC2086
    expect 0 "point 3: every scheme's row equals the separate run's" "vit sweep: every point equals a separate run" -- \
      "$PY" "$S/tests/check_sweep.py" "$T/vsw1.h5" "$T/vsw1.csv" $pairs
    "$PY" - "$T/vsw1.h5" <<'PYEOF' && ok "vit sweep: keep rate and noise move sprint; dense and top1_exact fixed" || bad "vit sweep: keep rate and noise move sprint; dense and top1_exact fixed"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1])
r = f["results"]
assert f.attrs["evaluator"].decode() == "image-model" and f.attrs["primary_metric"].decode() == "top1"
assert np.all(r["top1_reference"][:] == r["top1_reference"][0, 0])
s = [x.decode() for x in r["scheme"][:]]
d, sp = s.index("dense"), s.index("sprint")
assert np.all(r["top1_exact"][:] == r["top1_exact"][0, 0])
assert np.all(r["energy_J"][:, d] == r["energy_J"][0, d])
assert r["keep_rate"][0, sp] < r["keep_rate"][2, sp]          # 0.3 vs 0.9 target
assert r["energy_J"][0, sp] != r["energy_J"][1, sp]           # noise changes decisions
assert np.all(np.isfinite(r["energy_J"][:]))
PYEOF
    if command -v gnuplot > /dev/null 2>&1; then
      expect 0 "vsw1-pareto-top1.png" "plot a vit sweep" -- "$S/scripts/plot" "$T/vsw1.h5"
      n=0
      for f in "$T"/vsw1-pareto-top1.png "$T"/vsw1-noise-cmp_noise_sigma.png; do
        [ -s "$f" ] && [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = "211PNG" ] && n=$((n + 1))
      done
      [ $n -eq 2 ] && ok "plot vit sweep: PNG files" || bad "plot vit sweep: PNG files ($n of 2)"
    fi
  else
    echo "skip - vit sweep: /usr/share/datasets/fashion-mnist absent"
  fi
else
  echo "skip - sweep checks with h5py (no python3-h5py for /usr/bin/python3)"
fi

# calibrate: a reduced flow writes a device file that run accepts; h5py
# recomputes its fits from the raw data it stores; bad [calibrate]
# sections, a failing SPICE step and SIGINT leave no file
cat > "$T/cal.ini" <<'INI'
[run]
seed = 11
[crossbar]
rows = 16
cols = 16
r_wl = 0.5 ohm
r_bl = 0.5 ohm
[calibrate]
iv_levels = 2
iv_points = 11
ir_arrays = 3
ir_spice_arrays = 1
ir_inputs = 2
noise_arrays = 1
noise_cols = 3
cmp_samples = 60
cmp_noise_samples = 3
cmp_overdrives = 1 uA, 2 uA, 4 uA
energy_sizes = 4, 8, 12
INI
expect 0 "cmp_offset_sigma" "help calibrate" -- "$EXE" help calibrate
expect 0 "analog.cmp_offset_sigma" "calibrate (reduced)" -- "$EXE" calibrate "$T/cal.ini" -o "$T/cal.h5" --progress
grep -q "^calibrate: \[[1-7]/7\] [a-zA-Z -]*, [0-9]*/[0-9]* [a-zA-Z -]* ([0-9]*%), .* elapsed" "$T/err" && ok "calibrate --progress: the step and its sub-steps" || bad "calibrate --progress: the step and its sub-steps"
grep -q "calibrate: \[7/7\] read energy done in" "$T/err" && ok "calibrate: progress with step times on stderr" || bad "calibrate: progress with step times on stderr"
[ -f "$T/cal.h5" ] && notmp "$T/cal.h5" && ok "calibrate: file written, no temporary" || bad "calibrate: file written, no temporary"
printf '[run]\ndevice_model = cal.h5\n[workload]\nseq_len = 32\nlayers = 1\nheads = 2\n' > "$T/caldev.ini"
expect 0 "sets 8 keys" "run with the calibrated device model" -- "$EXE" run "$T/caldev.ini" -o "$T/caldev.h5"
grep -q "analog.cmp_offset_sigma" "$T/out" && grep -q "energy.imc_mac_per_op" "$T/out" && ok "calibrated keys listed by run" || bad "calibrated keys listed by run"
grep -q "warning: calibrated with crossbar.rows = 16; this run has 64" "$T/out" && grep -q "warning: calibrated with crossbar.r_wl = 0.5; this run has 2.5" "$T/out" \
  && ! grep -q "warning: calibrated with analog.temperature" "$T/out" \
  && ok "run warns of the conditions that differ from the calibration's" || bad "run warns of the conditions that differ from the calibration's"
# the run's programmed arrays (64 rows, mean cell about 7 uS: 0.46 mS a
# column) against the device model's cal_mean_column_G (16 x 50.5 uS =
# 0.81 mS for these uniform levels: within 2x, no warning)
grep -q "mean column conductance" "$T/out" && bad "no column-conductance warning within 2x" || ok "no column-conductance warning within 2x"
if [ -x "$PY" ] && "$PY" -c 'import h5py, numpy' 2>/dev/null; then
  # a model fitted on 20 mS columns: warned, with both figures
  cp "$T/cal.h5" "$T/cal_hiG.h5"
  "$PY" -c "
import h5py
d = h5py.File('$T/cal_hiG.h5', 'r+')['params/cal_mean_column_G']
d[()] = 0.02
d.attrs['ci95_lo'] = 0.02
d.attrs['ci95_hi'] = 0.02"
  printf '[run]\ndevice_model = cal_hiG.h5\n[workload]\nseq_len = 32\nlayers = 1\nheads = 2\n' > "$T/calhi.ini"
  expect 0 "warning: the device model was fitted on arrays of mean column conductance 0.02 S; this run's programmed arrays average" \
    "run warns of a device model fitted on conductances over 2x the run's" -- "$EXE" run "$T/calhi.ini" -o "$T/calhi.h5"
  grep -q "calibrate with \[calibrate\] levels = workload" "$T/out" && ok "the warning names the remedy" || bad "the warning names the remedy"
  expect 0 "parameters recomputed" "h5py recomputes the calibration's fits" -- "$PY" "$S/tests/check_device.py" "$T/cal.h5"
  # the configuration stored in the file reproduces the calibration bit for bit
  "$PY" -c "import h5py; open('$T/cal_again.ini', 'w').write(h5py.File('$T/cal.h5')['provenance/config'][()].decode())"
  "$EXE" calibrate "$T/cal_again.ini" -o "$T/cal_again.h5" > /dev/null 2>&1
  "$PY" - "$T/cal.h5" "$T/cal_again.h5" <<'PYEOF' && ok "calibrate: the stored configuration reproduces the file's values" || bad "calibrate: the stored configuration reproduces the file's values"
import sys, h5py, numpy as np
a, b = (h5py.File(x, "r") for x in sys.argv[1:])
assert sorted(a["params"]) == sorted(b["params"]) and len(a["params"]) == 13  # 12 fitted, cal_mean_column_G
for k in a["params"]:
    assert a["params"][k][()] == b["params"][k][()], k
for k in a["data"]:
    assert np.array_equal(a["data"][k][()], b["data"][k][()]), k
assert b"cmp_samples = 60\n" in a["provenance/config"][()]
PYEOF
else
  echo "skip - check_device.py (no h5py)"
fi
expect 2 "a CONFIG is required" "calibrate without CONFIG" -- "$EXE" calibrate
expect 2 "unknown option '--frob'" "calibrate: unknown option" -- "$EXE" calibrate "$T/cal.ini" --frob
for bad_cal in "bogus = 1|cal_bad.ini:2: .calibrate. unknown key 'bogus'" \
               "cmp_r_sense = 20 kV|key 'cmp_r_sense': value '20 kV' has unit 'kV', expected ohm" \
               "cmp_samples = 2|key 'cmp_samples': value '2' out of range .3, 100000." \
               "iv_levels = 2.5|key 'iv_levels': value '2.5' is not an integer" \
               "energy_sizes = 4, , 8|key 'energy_sizes': value '4, , 8' has an empty item" \
               "cmp_span = 12 uA|cal_bad.ini:2: .calibrate.: cmp_span = 1.2e-05 A not in .1e-6 cmp_i_ref, cmp_i_ref = 1e-05 A." \
               "timeout = 0 s|key 'timeout': value '0 s' out of range (0, 86400]"; do
  printf '[calibrate]\n%s\n' "${bad_cal%%|*}" > "$T/cal_bad.ini"
  expect 1 "${bad_cal#*|}" "calibrate: bad [calibrate] '${bad_cal%%|*}'" -- "$EXE" calibrate "$T/cal_bad.ini" -o "$T/cal_bad.h5"
done
printf '[calibrate]\ncmp_span = 1 uA\ncmp_span = 2 uA\n' > "$T/cal_bad.ini"
expect 1 "cal_bad.ini:3: .calibrate. key 'cmp_span' given twice (first on line 2)" "calibrate: duplicate key" -- "$EXE" calibrate "$T/cal_bad.ini" -o "$T/cal_bad.h5"
printf '[crossbar]\ng_max = 3 V\n' > "$T/cal_bad.ini"
expect 1 "key 'crossbar.g_max'" "calibrate: bad configuration key" -- "$EXE" calibrate "$T/cal_bad.ini" -o "$T/cal_bad.h5"
printf '[calibrate]\ncmp_samples = 5\n' > "$T/cal_run.ini"
expect 1 "unknown section '.calibrate.'" "run refuses a [calibrate] section" -- "$EXE" run "$T/cal_run.ini" -o "$T/cal_bad.h5"
{ sed '/^\[calibrate\]/q' "$T/cal.ini"; echo "timeout = 1 ms"; sed '1,/^\[calibrate\]/d' "$T/cal.ini"; } > "$T/cal_tmo.ini"
expect 1 "timed out" "calibrate: a SPICE job over its timeout fails" -- "$EXE" calibrate "$T/cal_tmo.ini" -o "$T/cal_bad.h5"
[ ! -e "$T/cal_bad.h5" ] && notmp "$T/cal_bad.h5" && ok "calibrate errors leave no file" || bad "calibrate errors leave no file"
{ sed '/^cmp_samples/d' "$T/cal.ini"; echo "cmp_samples = 100000"; } > "$T/cal_long.ini"
"$EXE" calibrate "$T/cal_long.ini" -o "$T/cal_int.h5" > "$T/cali.out" 2> "$T/cali.err" &
pid=$!
sleep 2
kill -INT $pid
wait $pid
st=$?
if [ "$st" -eq 130 ] && [ ! -e "$T/cal_int.h5" ] && notmp "$T/cal_int.h5" && grep -q "interrupted in step" "$T/cali.err"; then
  ok "calibrate SIGINT: exit 130, no output"
else
  bad "calibrate SIGINT: exit $st"; cat "$T/cali.err"
fi

rm -rf "$T"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
