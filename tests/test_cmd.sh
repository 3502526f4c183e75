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
SPR_EXPECT_IN=/dev/null
. "${top_srcdir:-.}/tests/spr_test.sh"
notmp() { ! ls "$1".tmp* > /dev/null 2>&1; }
have_h5py() { [ -x "$PY" ] && "$PY" -c 'import h5py, numpy' 2> /dev/null; }


cat > "$T/small.ini" <<'INI'
; a small run: 2 layers x 2 heads of 32 tokens
[workload]
seq_len = 32
layers = 2
heads = 2
INI

# --- help ---------------------------------------------------------------------
for c in run sweep report crossbar config calibrate synth; do
  "$EXE" help $c > "$T/h1" 2>&1; s1=$?
  "$EXE" $c --help > "$T/h2" 2>&1; s2=$?
  check "help $c: its own usage, the same as $c --help" \
    '[ $s1 -eq 0 ] && [ $s2 -eq 0 ] && head -1 "$T/h1" | grep -q "^usage: sprintsim $c " && cmp -s "$T/h1" "$T/h2"'
done
for c in run sweep config calibrate synth; do
  "$EXE" help $c > "$T/h1" 2>&1
  check "help $c: --set and '-'" 'grep -q -- "--set SECTION.KEY=VALUE" "$T/h1" && grep -q "CONFIG as .-." "$T/h1"'
done
expect 2 "no help topic 'bogus'; topics: run sweep report crossbar config calibrate synth" "help of an unknown topic exits 2" -- "$EXE" help bogus
expect 2 "one topic at most" "help with two topics exits 2" -- "$EXE" help run sweep
expect 0 "usage: sprintsim COMMAND" "help alone: the overview" -- "$EXE" help

# --- --set and standard input ---------------------------------------------------
expect 0 "^seq_len = 48$" "--set over the file's key" -- "$EXE" config "$T/small.ini" --set workload.seq_len=48
expect 0 "^g_max = 7.9999999999999993e-05$" "--set with spaces and a unit" -- "$EXE" config "$T/small.ini" --set ' crossbar.g_max = 80 uS '
grep -q "^heads = 2$" "$T/out" && ok "--set keeps the file's other keys" || bad "--set keeps the file's other keys"
expect 0 "^seq_len = 100$" "--set without CONFIG, over the defaults" -- "$EXE" config --set workload.seq_len=100
expect 2 "^sprintsim: --set analog.vread=0.1: unknown key 'analog.vread'" "--set of an unknown key exits 2" -- "$EXE" config "$T/small.ini" --set analog.vread=0.1
expect 2 "--set crossbar.g_max=5 V: key 'crossbar.g_max': value '5 V' has unit 'V', expected S" "--set of a bad value exits 2 naming key and value" -- "$EXE" run "$T/small.ini" --set 'crossbar.g_max=5 V' -o "$T/x.h5"
expect 2 "--set crossbar: expected section.key=value" "--set without '=' exits 2" -- "$EXE" run "$T/small.ini" --set crossbar -o "$T/x.h5"
expect 2 "--set foo.bar=1: unknown section '\[foo\]'" "--set of an unknown section exits 2" -- "$EXE" run "$T/small.ini" --set foo.bar=1 -o "$T/x.h5"
expect 2 "--set run.seed=3: key 'run.seed' given twice (first: --set run.seed=2)" "--set of one key twice exits 2" -- "$EXE" run "$T/small.ini" --set run.seed=2 --set run.seed=3 -o "$T/x.h5"
expect 2 "needs section.key=value" "--set without its value exits 2" -- "$EXE" run "$T/small.ini" --set
expect 1 "small.ini (--set crossbar.g_min): keys 'crossbar.g_min' (0.0002 S) and 'crossbar.g_max'" "a relation broken by --set names it" -- "$EXE" run "$T/small.ini" --set 'crossbar.g_min=200 uS' -o "$T/x.h5"
check "no output after --set errors" '[ ! -e "$T/x.h5" ] && notmp "$T/x.h5"'
# a run with --set is the run of a file holding the key: the same trace
{ cat "$T/small.ini"; printf '[threshold]\nkeep_rate = 0.2\n'; } > "$T/kr.ini"
"$EXE" run "$T/kr.ini" -o "$T/kr1.h5" --threads 1 > /dev/null 2>&1
"$EXE" run "$T/small.ini" --set threshold.keep_rate=0.2 -o "$T/kr2.h5" --threads 1 > /dev/null 2>&1
check "run --set equals the file with the key (identical traces)" 'cmp -s "$T/kr1.h5" "$T/kr2.h5"'
# a configuration on standard input: the same run; names "stdin" in messages
"$EXE" run - -o "$T/kr3.h5" --threads 1 < "$T/kr.ini" > /dev/null 2>&1
check "run - reads the configuration from standard input (identical trace)" 'cmp -s "$T/kr1.h5" "$T/kr3.h5"'
"$EXE" config "$T/kr.ini" > "$T/c1"; "$EXE" config - < "$T/kr.ini" > "$T/c2"
check "config - equals config FILE" 'cmp -s "$T/c1" "$T/c2"'
printf '[workload]\nseq_len = 32\nthis is wrong\n' | "$EXE" run - -o "$T/x.h5" > "$T/out" 2> "$T/err"
check "a syntax error on standard input names stdin:3" '[ $? -ne 0 ] && grep -q "^sprintsim: stdin:3: syntax error" "$T/err"'
printf '[workload]\nseq_len = 32\000\n' | "$EXE" config - > "$T/out" 2> "$T/err"; st=$?
check "standard input holding a NUL byte is refused" '[ $st -eq 1 ] && grep -q "stdin: the configuration holds a NUL byte" "$T/err"'
yes '; a comment line of a configuration that is far too long' | head -c 17000000 | "$EXE" config - > "$T/out" 2> "$T/err"; st=$?
check "standard input over 16 MiB is refused" '[ $st -eq 1 ] && grep -q "stdin: the configuration is longer than 16 MiB" "$T/err"'
set --
i=0; while [ $i -le 256 ]; do set -- "$@" --set "run.seed=$i"; i=$((i + 1)); done
expect 2 "config: more than 256 --set options" "more than 256 --set options exit 2" -- "$EXE" config "$@"
set --
# relative file names on standard input and in --set: from the current folder
(cd "$S" && "$EXE" config --set workload.source=qkv --set workload.qkv_file=examples/qkv-example.h5 > "$T/out" 2>&1)
check "--set file names are taken from the current folder" 'grep -q "^qkv_file = $S/examples/qkv-example.h5$" "$T/out" && grep -q "^seq_len = 64$" "$T/out"'
(cd "$S" && printf '[workload]\nsource = qkv\nqkv_file = examples/qkv-example.h5\nqkv_item = 1\n' | "$EXE" config - > "$T/out" 2>&1)
check "file names on standard input are taken from the current folder" 'grep -q "^qkv_file = $S/examples/qkv-example.h5$" "$T/out" && grep -q "^seq_len = 48$" "$T/out"'
# synth and calibrate take --set too (calibrate: [calibrate] keys as well)
expect 0 "N = 20, d = 16" "synth --set" -- "$EXE" synth "$T/small.ini" --set workload.seq_len=20 --set workload.head_dim=16 -o "$T/syn.h5"
expect 2 "^sprintsim: --set calibrate.cmp_samples=2: .*key 'cmp_samples': value '2' out of range" "calibrate --set of a [calibrate] key is checked" -- "$EXE" calibrate "$S/examples/calibrate.ini" --set calibrate.cmp_samples=2 -o "$T/x.h5"
expect 2 "^sprintsim: --set crossbar.rows=0: key 'crossbar.rows'" "calibrate --set of a configuration key is checked" -- "$EXE" calibrate "$S/examples/calibrate.ini" --set crossbar.rows=0 -o "$T/x.h5"

# --- sweep: --set, standard input, config of a sweep ----------------------------
cat > "$T/sw.ini" <<'INI'
[workload]
seq_len = 32
layers = 1
heads = 2
[sweep]
threshold.keep_rate = 0.1, 0.2
analog.cmp_noise_sigma = 0, 1 uA
schemes = sprint, dense
INI
expect 0 "4 points" "sweep" -- "$EXE" sweep "$T/sw.ini" -o "$T/sw1.h5" --threads 1
expect 0 "3 points (threshold.keep_rate x3, analog.cmp_noise_sigma x1)" "sweep --set replaces the axes" -- \
  "$EXE" sweep "$T/sw.ini" --set 'sweep.threshold.keep_rate=0.1, 0.2, 0.3' --set sweep.analog.cmp_noise_sigma=0 -o "$T/sw2.h5" --threads 1
expect 2 "--set threshold.keep_rate=0.3: key 'threshold.keep_rate' is an axis of .*sw.ini's \[sweep\] grid (line 6)" \
  "sweep --set of a key that is an axis exits 2" -- "$EXE" sweep "$T/sw.ini" --set threshold.keep_rate=0.3 -o "$T/x.h5"
"$EXE" sweep - -o "$T/sw3.h5" --threads 1 < "$T/sw.ini" > /dev/null 2>&1
check "sweep - reads standard input: the same CSV" 'cmp -s "$T/sw1.csv" "$T/sw3.csv"'
# config of a sweep: the base and the grid, itself a sweep file giving the same results
expect 0 "^\[sweep\]" "config of a sweep file" -- "$EXE" config "$T/sw.ini"
cp "$T/out" "$T/swc.ini"
check "config of a sweep: the base's keys, the axes, the schemes" \
  'grep -q "^seq_len = 32$" "$T/swc.ini" && grep -q "^threshold.keep_rate = 0.1, 0.2$" "$T/swc.ini" && grep -q "^analog.cmp_noise_sigma = 0, 1 uA$" "$T/swc.ini" && grep -q "^schemes = sprint, dense$" "$T/swc.ini" && grep -q "^; 4 points, evaluator attention" "$T/swc.ini"'
"$EXE" sweep "$T/swc.ini" -o "$T/sw4.h5" --threads 1 > /dev/null 2>&1
check "the printed sweep runs to the same CSV" 'cmp -s "$T/sw1.csv" "$T/sw4.csv"'
"$EXE" config "$T/swc.ini" > "$T/swc2.ini" 2>&1
check "config of the printed sweep: the same text" 'cmp -s "$T/swc.ini" "$T/swc2.ini"'
# a base that resolves only with its axes (two thresholds, one layer) prints as parsed
printf '[workload]\nseq_len = 32\nlayers = 1\nheads = 2\n[threshold]\nmode = direct\nvalues = 10, 20\n[sweep]\nworkload.layers = 2\n' > "$T/swbase.ini"
expect 0 "^values = 10, 20$" "config of a sweep whose base resolves only with its axes" -- "$EXE" config "$T/swbase.ini"
check "... with a note on stderr, and the grid" 'grep -q "note: the base of .*swbase.ini does not resolve without its axes" "$T/err" && grep -q "^workload.layers = 2$" "$T/out"'
printf '[workload]\nseq_len = 32\n[sweep]\nanalog.cmp_noise_sigma = 0, 50 V\n' > "$T/swbad.ini"
expect 1 "swbad.ini:4: \[sweep\] point 2 of 2 (analog.cmp_noise_sigma = 50 V)" "config of a sweep checks every point" -- "$EXE" config "$T/swbad.ini"

# --- -o may not name an input ---------------------------------------------------
cp "$S/examples/qkv-example.h5" "$T/in-qkv.h5"
printf '[workload]\nsource = qkv\nqkv_file = in-qkv.h5\n' > "$T/in.ini"
sum0=$(cksum < "$T/in-qkv.h5")
expect 2 "run: -o $T/in-qkv.h5 names an input of the run: workload.qkv_file $T/in-qkv.h5" "run -o naming the Q/K/V file exits 2 naming both" -- "$EXE" run "$T/in.ini" -o "$T/in-qkv.h5"
check "the Q/K/V file is untouched" '[ "$(cksum < "$T/in-qkv.h5")" = "$sum0" ] && notmp "$T/in-qkv.h5"'
ln -s in-qkv.h5 "$T/link.h5"
expect 2 "names an input of the run: workload.qkv_file" "run -o naming the Q/K/V file through a link" -- "$EXE" run "$T/in.ini" -o "$T/link.h5"
expect 2 "run: -o $T/small.ini names an input of the run: the configuration $T/small.ini" "run -o naming the configuration" -- "$EXE" run "$T/small.ini" -o "$T/small.ini"
(cd "$T" && "$EXE" run in.ini -o ./in-qkv.h5 > out 2> err); st=$?
check "run -o naming the Q/K/V file in another spelling" '[ $st -eq 2 ] && grep -q "names an input of the run: workload.qkv_file" "$T/err"'
if "$B/tests/test_device" --write "$T/dev.h5" > /dev/null 2>&1; then
  printf '[run]\ndevice_model = dev.h5\n[workload]\nseq_len = 32\nlayers = 1\nheads = 2\n' > "$T/dev.ini"
  expect 2 "names an input of the run: run.device_model $T/dev.h5" "run -o naming the device model" -- "$EXE" run "$T/dev.ini" -o "$T/dev.h5"
else
  bad "tests/test_device --write"
fi
printf '[workload]\nsource = vit\nmodel = in-qkv.h5\n' > "$T/vitin.ini"
expect 2 "names an input of the run: workload.model $T/in-qkv.h5" "run -o naming the model file" -- "$EXE" run "$T/vitin.ini" -o "$T/in-qkv.h5"
# inputs a model run reads that the files name, not the configuration: the
# reference model (the model's attribute 'reference') and the test images
if "$B/tests/test_model" --write-text "$T/lmo.h5" > /dev/null 2>&1 && cp "$T/lmo.h5" "$T/lmo-ref.h5" &&
   "$PY" -c 'import sys, h5py; f = h5py.File(sys.argv[1], "r+"); del f.attrs["reference"]; f.attrs["reference"] = "lmo-ref.h5"' "$T/lmo.h5" 2> /dev/null; then
  printf '[workload]\nsource = model\nmodel = lmo.h5\nwindows = 1\n' > "$T/lmo.ini"
  cp "$T/lmo-ref.h5" "$T/lmo-ref.orig"
  expect 2 "run: -o $T/lmo-ref.h5 names an input of the run: the reference model $T/lmo-ref.h5" \
    "run -o naming the model's reference (named by the model file)" -- "$EXE" run "$T/lmo.ini" -o "$T/lmo-ref.h5"
  check "run -o naming the reference: the reference untouched" 'cmp -s "$T/lmo-ref.h5" "$T/lmo-ref.orig"'
else
  echo "skip - run -o naming the model's reference (no h5py)"
fi
if [ -r /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] && "$B/tests/test_model" --write-image "$T/vito.h5" > /dev/null 2>&1; then
  mkdir -p "$T/fm" && cp /usr/share/datasets/fashion-mnist/t10k-*-idx?-ubyte.gz "$T/fm/"
  printf '[workload]\nsource = model\nmodel = vito.h5\ndataset = fm\nimages = 1\n' > "$T/vito.ini"
  expect 2 "names an input of the run: the test labels $T/fm/t10k-labels-idx1-ubyte.gz" \
    "run -o naming the test labels of an image model" -- "$EXE" run "$T/vito.ini" -o "$T/fm/t10k-labels-idx1-ubyte.gz"
  check "run -o naming the test labels: the labels untouched" \
    'cmp -s "$T/fm/t10k-labels-idx1-ubyte.gz" /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz'
else
  echo "skip - run -o naming the test labels (no Fashion-MNIST)"
fi
expect 2 "sweep: -o $T/sw.ini names an input of the sweep: the configuration" "sweep -o naming its configuration" -- "$EXE" sweep "$T/sw.ini" -o "$T/sw.ini"
cp "$T/sw.ini" "$T/swo.csv"
expect 2 "sweep: the CSV beside -o, $T/swo.csv names an input of the sweep: the configuration" "sweep whose CSV would overwrite its configuration" -- "$EXE" sweep "$T/swo.csv" -o "$T/swo.h5"
printf '[workload]\nlayers = 1\nheads = 2\nsource = qkv\n[sweep]\nworkload.qkv_file = %s/in-qkv.h5\n' "$T" > "$T/swq.ini"
expect 2 "names an input of the sweep: workload.qkv_file $T/in-qkv.h5" "sweep -o naming a point's Q/K/V file" -- "$EXE" sweep "$T/swq.ini" -o "$T/in-qkv.h5"
expect 2 "synth: -o $T/small.ini names an input of the synth: the configuration" "synth -o naming its configuration" -- "$EXE" synth "$T/small.ini" -o "$T/small.ini"
expect 2 "calibrate: -o $T/small.ini names an input of the calibrate: the configuration" "calibrate -o naming its configuration" -- "$EXE" calibrate "$T/small.ini" -o "$T/small.ini"
# a model's own reference model (its 'reference' attribute, no key names it)
if have_h5py && "$B/tests/test_model" --write-text "$T/lm.h5" && "$B/tests/test_model" --write-text "$T/lmref.h5"; then
  "$PY" -c "import h5py; h5py.File('$T/lm.h5', 'a').attrs['reference'] = 'lmref.h5'"
  lmsum=$(cksum < "$T/lmref.h5")
  printf '[workload]\nsource = model\nmodel = lm.h5\nwindows = 1\n' > "$T/lm.ini"
  expect 2 "run: -o $T/lmref.h5 names an input of the run: the reference model $T/lmref.h5" \
    "run -o naming the model's own reference model" -- "$EXE" run "$T/lm.ini" -o "$T/lmref.h5"
  printf '[workload]\nsource = model\nmodel = lm.h5\nwindows = 1\n[sweep]\nanalog.cmp_noise_sigma = 0, 1 nA\nschemes = sprint, dense\n' > "$T/lmsw.ini"
  expect 2 "sweep: -o $T/lmref.h5 names an input of the sweep: the reference model $T/lmref.h5" \
    "sweep -o naming a point model's own reference model" -- "$EXE" sweep "$T/lmsw.ini" -o "$T/lmref.h5"
  # the journal beside -o is checked too: a model whose reference is X.journal
  cp "$T/lmref.h5" "$T/lmj.journal"
  cp "$T/lm.h5" "$T/lmj.h5model"
  "$PY" -c "import h5py; h5py.File('$T/lmj.h5model', 'a').attrs['reference'] = 'lmj.journal'"
  sed 's/model = lm.h5/model = lmj.h5model/' "$T/lmsw.ini" > "$T/lmjsw.ini"
  expect 2 "sweep: the journal beside -o, $T/lmj.journal names an input of the sweep: the reference model $T/lmj.journal" \
    "sweep whose journal would overwrite a model's reference model" -- "$EXE" sweep "$T/lmjsw.ini" -o "$T/lmj.h5"
  check "the reference model is untouched" '[ "$(cksum < "$T/lmref.h5")" = "$lmsum" ]'
else
  bad "tests/test_model --write-text (h5py)"
fi
check "the inputs are untouched" '[ "$(cksum < "$T/in-qkv.h5")" = "$sum0" ] && grep -q "^seq_len = 32$" "$T/small.ini" && notmp "$T/small.ini"'

# --- --format: run's and report's tables as CSV or JSON -------------------------
"$EXE" run "$T/small.ini" -o "$T/f.h5" --threads 1 > "$T/f.txt" 2>&1
"$EXE" run "$T/small.ini" -o "$T/fj.h5" --threads 1 --format json > "$T/f.json" 2> "$T/fj.err"
"$EXE" run "$T/small.ini" -o "$T/fc.h5" --threads 1 --format csv > "$T/f.csv" 2> "$T/fc.err"
check "run --format json and csv: the same trace, the banner on stderr" \
  'cmp -s "$T/f.h5" "$T/fj.h5" && cmp -s "$T/f.h5" "$T/fc.h5" && grep -q "^sprintsim .*2 layers x 2 heads" "$T/fj.err" && grep -q "^trace: " "$T/fc.err"'
"$EXE" report "$T/f.h5" > "$T/r.txt" 2>&1
"$EXE" report "$T/f.h5" --format json > "$T/r.json" 2>&1
"$EXE" report "$T/f.h5" --format csv > "$T/r.csv" 2>&1
if have_h5py; then
  # the JSON and CSV values are the text tables' to their rounding; report's
  # totals are run's; the JSON parses, the CSV blocks parse
  "$PY" - "$T" <<'PYEOF' && ok "run and report --format: JSON and CSV hold the text tables' values" || bad "run and report --format: JSON and CSV hold the text tables' values"
import csv, io, json, re, sys
t = sys.argv[1]
run = json.load(open(t + "/f.json"))
assert run["n_layers"] == 2 and run["seq_len"] == 32 and run["trace"].endswith("/fj.h5"), run
text = open(t + "/f.txt").read().split("\n")
lay = [l.split() for l in text if l[:5].strip() in ("0", "1", "all")]
assert [r["layer"] for r in run["layers"]] == [0, 1, "all"]
for row, tl in zip(run["layers"], lay):
    assert "%.2f" % (100 * row["keep_rate"]) == tl[1] and "%.3f" % (100 * row["false_prune_rate"]) == tl[3], (row, tl)
    assert "%.4f" % row["mass_retained"] == tl[5]
sch = {l.split()[0]: l.split() for l in text if l.split() and l.split()[0] in ("sprint", "dense", "dense_tiled", "oracle", "topk", "sanger", "leopard", "window")}
assert [r["scheme"] for r in run["schemes"]] == list(sch)
for r in run["schemes"]:
    tl = sch[r["scheme"]]
    assert "%.1f" % (r["energy_J"] * 1e6) == tl[4] and "%.2fx" % r["speedup"] == tl[6], (r, tl)
    # with dense_tiled, its two ratios (speedup.t, energy-.t) come before rel.err
    assert "%.2fx" % r["speedup_tiled"] == tl[8] and "%.4f" % r["rel_fro"] == tl[10] and "top5_recall" in r
blocks = open(t + "/f.csv").read().split("\n\n")
assert len(blocks) == 2
rows = [list(csv.DictReader(io.StringIO(b))) for b in blocks]
assert float(rows[0][1]["keep_rate"]) == run["layers"][1]["keep_rate"] and rows[0][2]["layer"] == "all"
assert [r["scheme"] for r in rows[1]] == [r["scheme"] for r in run["schemes"]]
assert float(rows[1][0]["energy_J"]) == run["schemes"][0]["energy_J"]
rep = json.load(open(t + "/r.json"))
assert rep["n_layers"] == 2 and rep["file"].endswith("/f.h5")
tot = {r["scheme"]: r for r in rep["layers"] if r["layer"] == "all"}
for r in run["schemes"]:
    q = tot[r["scheme"]]
    for k in ("energy_J", "cycles", "bytes_fetched", "keep_rate", "speedup"):
        assert abs(q[k] - r[k]) <= 1e-12 * abs(r[k]), (k, q[k], r[k])
assert tot["dense"]["speedup"] == 1 and tot["dense"]["energy_reduction"] == 1
lat = [r for r in rep["cycles_by_component"] if r["component"] == "latency"][0]
assert lat["sprint"] == tot["sprint"]["cycles"]
assert sum(r["dense"] for r in rep["energy_by_component_J"]) > 0
rb = open(t + "/r.csv").read().split("\n\n")
assert len(rb) == 3 and rb[1].startswith("component,sprint,dense")
txt = open(t + "/r.txt").read()
assert "energy by component, uJ (all heads)" in txt and re.search(r"\n  all dense +100\.00 ", txt)
PYEOF
else
  echo "skip - --format checks with python3 (json) "
fi
expect 2 "run: --format 'xml' is not one of text, csv, json" "run --format of an unknown format exits 2" -- "$EXE" run "$T/small.ini" --format xml -o "$T/x.h5"
expect 2 "report: --format 'yaml' is not one of text, csv, json" "report --format of an unknown format exits 2" -- "$EXE" report "$T/f.h5" --format yaml
expect 2 "report: --format '(missing)' is not one of" "report --format without a value exits 2" -- "$EXE" report "$T/f.h5" --format
expect 2 "run: --format needs text, csv or json" "run --format without a value exits 2" -- "$EXE" run "$T/small.ini" --format
expect 2 "report: unknown option '--fast'" "report: an unknown option exits 2" -- "$EXE" report "$T/f.h5" --fast
expect 2 "report: expected one trace file, not also '$T/fj.h5'" "report of two files exits 2" -- "$EXE" report "$T/f.h5" "$T/fj.h5"
# an interrupted run leaves JSON that does not parse
printf '[workload]\nseq_len = 512\nlayers = 64\n' > "$T/long.ini"
"$EXE" run "$T/long.ini" -o "$T/int.h5" --threads 1 --format json > "$T/int.json" 2> "$T/int.err" &
pid=$!
# its header comes after its signal handlers: a background job of sh
# ignores SIGINT until then, so an earlier one (a loaded machine) is lost
n=0
while ! grep -q "^sprintsim .* layers x" "$T/int.err" 2> /dev/null && [ $n -lt 1200 ]; do sleep 0.05; n=$((n + 1)); done
sleep 1
kill -INT $pid
wait $pid
st=$?
check "an interrupted --format json run: exit 130, the JSON does not parse" \
  '[ $st -eq 130 ] && ! "$PY" -c "import json, sys; json.load(open(sys.argv[1]))" "$T/int.json" 2> /dev/null && [ ! -e "$T/int.h5" ]'

# --- report names what it was given ---------------------------------------------
expect 1 "sw1.h5 is a sweep file (sprintsim sweep): its rows are in the CSV beside it" "report of a sweep file" -- "$EXE" report "$T/sw1.h5"
expect 1 "qkv-example.h5 is a Q/K/V file (docs/qkv.md)" "report of a Q/K/V file" -- "$EXE" report "$S/examples/qkv-example.h5"
expect 1 "vit-fmnist.h5 is a model file (docs/models.md): run it with workload.source = model" "report of a model file" -- "$EXE" report "$S/models/vit-fmnist.h5"
[ -f "$T/dev.h5" ] && expect 1 "dev.h5 is a device model (sprintsim calibrate)" "report of a device model" -- "$EXE" report "$T/dev.h5"
if have_h5py; then
  "$PY" -c "
import h5py, numpy as np
with h5py.File('$T/G.h5', 'w') as f: f['G'] = np.full((3, 2), 1e-5)
with h5py.File('$T/other.h5', 'w') as f: f.attrs['format'] = 'someone-else'; f['x'] = 1
with h5py.File('$T/bare.h5', 'w') as f: f['x'] = 1
"
  expect 1 "G.h5 is a conductance matrix (/G, an input of sprintsim crossbar)" "report of a crossbar matrix" -- "$EXE" report "$T/G.h5"
  expect 1 "other.h5 is a 'someone-else' file, not a run trace" "report of a file of another format" -- "$EXE" report "$T/other.h5"
  expect 1 "bare.h5: attribute 'complete' of '/' is missing" "report of an HDF5 file of no known kind" -- "$EXE" report "$T/bare.h5"
  expect 2 "crossbar: -o $T/G.h5 names an input of the crossbar: --g $T/G.h5" "crossbar -o naming its G matrix" -- \
    "$EXE" crossbar --g "$T/G.h5" --v "$T/G.h5" --model ideal -o "$T/G.h5"
fi
if [ -r /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  printf '[workload]\nsource = vit\nmodel = %s/models/vit-fmnist.h5\nimages = 2\n[threshold]\nmode = learned\n' "$S" > "$T/vit2.ini"
  "$EXE" run "$T/vit2.ini" -o "$T/vit2.h5" --threads 1 > /dev/null 2>&1
  expect 1 "vit2.h5 is a model evaluation (sprintsim run with workload.source = model)" "report of a model evaluation" -- "$EXE" report "$T/vit2.h5"
  # the model table as JSON: one "schemes" array, the references first
  "$EXE" run "$T/vit2.ini" -o "$T/vit3.h5" --threads 1 --format json > "$T/vit3.json" 2> /dev/null
  check "run --format json of a model: reference and exact rows first, no ledger figures for them" \
    '"$PY" -c "import json, sys; d = json.load(open(sys.argv[1])); s = d[\"schemes\"]; assert [r[\"scheme\"] for r in s[:3]] == [\"reference\", \"exact\", \"sprint\"] and s[0][\"energy_J_per_item\"] is None and s[2][\"energy_J_per_item\"] > 0 and d[\"items\"] == 2" "$T/vit3.json"'
else
  echo "skip - report of a ViT evaluation: no Fashion-MNIST"
fi

# --- examples/noisy-vit.ini; the first-order IR range checked before any output --
expect 0 "^  all " "examples/noisy-vit.ini runs (2 heads of its first layer)" -- \
  "$EXE" run "$S/examples/noisy-vit.ini" --set workload.layers=1 --set workload.heads=2 -o "$T/nv.h5" --threads 2
expect 1 "layer 0 head 0: crossbar: first-order IR drop out of its range: r_wl A + r_bl B reaches 0.28 (limit 0.2)" \
  "the first-order IR drop beyond its range: exit 1, layer and head named" -- \
  "$EXE" run "$S/examples/noisy-vit.ini" --set crossbar.ir_drop=first_order --set workload.layers=2 -o "$T/nvx.h5"
check "... before any table header, no trace" '! grep -q "keep%" "$T/out" && [ ! -e "$T/nvx.h5" ] && notmp "$T/nvx.h5"'

# --- the h5py example of docs/trace.md works on every trace level --------------
if have_h5py; then
  sed -n '/^With h5py (Debian package/,$p' "$S/docs/trace.md" | sed -n '/^```python$/,/^```$/p' | sed '1d;$d' > "$T/example.py"
  for level in summary masks full; do
    "$EXE" run "$T/small.ini" --trace $level -o "$T/lvl-$level.h5" --threads 2 > /dev/null 2>&1
    sed "s|\"run.h5\"|\"$T/lvl-$level.h5\"|" "$T/example.py" > "$T/example-$level.py"
    expect 0 "mean keep rate" "docs/trace.md's h5py example on a $level trace" -- "$PY" "$T/example-$level.py"
  done
  check "the example reads the masks of masks and full traces" 'grep -q "^kept " "$T/out"'
else
  echo "skip - docs/trace.md example (no h5py)"
fi

# --- every README command and example configuration is in CI's list ------------
if [ -x "$PY" ]; then
  expect 0 "README commands and" "every README example is run by CI (.ci/readme-examples)" -- \
    "$PY" "$S/tests/check_readme_examples.py" "$S/README.md" "$S/.ci/readme-examples" "$S/examples" "$S/docs"
fi

# --- progress: --progress and --quiet, never on stdout ------------------------
for c in run sweep calibrate crossbar; do
  "$EXE" help $c > "$T/h1" 2>&1
  check "help $c: --progress and --quiet" 'grep -q -- "--progress " "$T/h1" && grep -q -- "--quiet " "$T/h1"'
done
expect 2 "run: --progress and --quiet contradict each other" "run --progress --quiet exits 2" -- "$EXE" run "$T/small.ini" --progress --quiet -o "$T/x.h5"
expect 2 "sweep: --progress and --quiet contradict each other" "sweep --quiet --progress exits 2" -- "$EXE" sweep "$T/sw.ini" --quiet --progress -o "$T/x.h5"
expect 2 "crossbar: --progress and --quiet contradict each other" "crossbar --progress --quiet exits 2" -- "$EXE" crossbar --progress --quiet
"$EXE" run "$T/small.ini" -o "$T/p.h5" --progress > "$T/p1.out" 2> "$T/p1.err" && mv "$T/p.h5" "$T/p1.h5"
check "run --progress: the layer and the share of head passes on stderr, stdout unchanged" \
  'grep -q "^run: layer 2/2, \\([0-9]*\\)/\\1 head passes (100%), .* elapsed$" "$T/p1.err" && ! grep -q "head passes" "$T/p1.out" && grep -q "^ *all " "$T/p1.out"'
"$EXE" run "$T/small.ini" -o "$T/p.h5" --quiet > "$T/p2.out" 2> "$T/p2.err" && mv "$T/p.h5" "$T/p2.h5"
"$EXE" run "$T/small.ini" -o "$T/p.h5" > "$T/p3.out" 2> "$T/p3.err" && mv "$T/p.h5" "$T/p3.h5"
check "run --quiet and run to a file or pipe: no progress; the same tables and trace as with --progress" \
  '! grep -q "head passes" "$T/p2.err" "$T/p3.err" && cmp -s "$T/p1.out" "$T/p2.out" && cmp -s "$T/p1.h5" "$T/p2.h5" && cmp -s "$T/p2.h5" "$T/p3.h5"'
"$EXE" run "$T/small.ini" -o "$T/p4.h5" --progress --format csv > "$T/p4.out" 2> "$T/p4.err"
check "run --progress --format csv: the CSV holds no progress" '! grep -q "head passes" "$T/p4.out" && grep -q "head passes" "$T/p4.err"'
# stderr a terminal (script(1) gives the command a pseudo-terminal; its
# stdout goes to a file): progress by default, none with --quiet. The
# status line is redrawn every 0.2 s and erased at the end, so this run's
# layers take longer than that (about 0.7 s each on one thread; small.ini's
# take milliseconds since the row-block kernels and could end unseen)
if command -v script > /dev/null 2>&1; then
  printf '[workload]\nseq_len = 1024\nlayers = 2\nheads = 16\n' > "$T/tty.ini"
  "$EXE" run "$T/tty.ini" -o "$T/p.h5" --threads 1 > "$T/p8.out" 2> /dev/null; rm -f "$T/p.h5"
  script -qec "'$EXE' run '$T/tty.ini' -o '$T/p.h5' --threads 1 > '$T/p5.out'" /dev/null > "$T/p5.tty" 2>&1; rm -f "$T/p.h5"
  script -qec "'$EXE' run '$T/tty.ini' -o '$T/p.h5' --threads 1 --quiet > '$T/p6.out'" /dev/null > "$T/p6.tty" 2>&1; rm -f "$T/p.h5"
  check "run with stderr on a terminal: progress by default, none with --quiet, stdout the same" \
    'grep -q "run: layer 2/2, .*head passes" "$T/p5.tty" && ! grep -q "head passes" "$T/p6.tty" "$T/p5.out" && cmp -s "$T/p5.out" "$T/p8.out" && cmp -s "$T/p6.out" "$T/p8.out"'
  script -qec "'$EXE' sweep '$T/sw.ini' -o '$T/swp.h5' --threads 1 > /dev/null" /dev/null > "$T/p7.tty" 2>&1
  check "sweep with stderr on a terminal: points done of all, elapsed, by default" \
    'grep -q "sweep: \([0-9]*\)/\1 done (point .*elapsed" "$T/p7.tty" && [ -e "$T/swp.h5" ]'
else
  echo "# skipped: progress on a terminal (no script(1))"
fi

# --- signals and limits ------------------------------------------------------
# a write past the file-size limit (ulimit -f) stops the run: exit 1, the
# limit named, neither the trace nor its temporary left (F9)
printf '[workload]\nseq_len = 128\nlayers = 4\n[run]\ntrace = masks\n' > "$T/fsize.ini"
(ulimit -f 100; "$EXE" run "$T/fsize.ini" -o "$T/fsize.h5" > "$T/out" 2> "$T/err"; echo $? > "$T/st")
check "run past the file-size limit: exit 1, the limit named, no file" \
  '[ "$(cat "$T/st")" -eq 1 ] && grep -q "file size limit (ulimit -f) was reached; .*fsize.h5 not written" "$T/err" && [ ! -e "$T/fsize.h5" ] && notmp "$T/fsize.h5"'

# a sweep checks the memory of the points it runs at once before any runs
# (the parts: tests/test_sysmem, test_sweep); whole heads (run.block_rows:
# the automatic blocks of N > 4096 would fit, and run for hours)
printf '[workload]\nlayers = 1\nheads = 64\n[run]\nblock_rows = 16384\n[sweep]\nworkload.seq_len = 64, 16384\n' > "$T/swmem.ini"
expect 1 "point 2 of 2 (workload.seq_len = 16384) needs about .* GiB of memory, more than 80% of the .* GiB this process may use" \
  "sweep: a point too large for the memory refused before any runs" -- "$EXE" sweep "$T/swmem.ini" -o "$T/swmem.h5" --threads 1
check "sweep refused for memory: no point ran, nothing written" \
  '! grep -q "done (point" "$T/err" && [ ! -e "$T/swmem.h5" ] && [ ! -e "$T/swmem.csv" ] && notmp "$T/swmem.h5" && notmp "$T/swmem.csv"'

# calibrate checks its output before the minutes of SPICE (F8)
t0=$(date +%s%N)
expect 1 "$T/nodir/d.h5: cannot write into the folder $T/nodir" "calibrate: output in a missing folder refused up front" -- \
  "$EXE" calibrate "$S/examples/calibrate.ini" -o "$T/nodir/d.h5"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "calibrate: the refusal comes before any SPICE job ($ms ms)" '! grep -q "\[1/7\]" "$T/err"'
expect 1 "the output is a folder" "calibrate: output naming a folder refused up front" -- "$EXE" calibrate "$S/examples/calibrate.ini" -o "$T/"

# SIGTERM during a calibration's long ngspice job: the child is killed and
# reaped at once, exit 130 within a second, no file, no temporary folder (F7)
mkdir "$T/tmpdir"
printf '[crossbar]\nrows = 8\ncols = 8\n[calibrate]\niv_levels = 2\niv_points = 5\nir_arrays = 1\nir_spice_arrays = 1\nir_inputs = 2\nir_rows = 128\nir_cols = 128\nnoise_arrays = 1\nnoise_cols = 2\ncmp_samples = 3\ncmp_noise_samples = 3\ncmp_overdrives = 0.5 uA, 1 uA, 2 uA\nenergy_sizes = 2, 4, 6\ntimeout = 60 s\n' > "$T/callong.ini"
TMPDIR="$T/tmpdir" "$EXE" calibrate "$T/callong.ini" -o "$T/callong.h5" > /dev/null 2> "$T/callong.err" &
pid=$!
i=0 # wait for step 2's ngspice job on a 128 x 128 array, which takes a minute or more
while [ $i -lt 600 ] && { ! grep -q "\[2/7\] IR drop \.\.\." "$T/callong.err" || [ -z "$(pgrep -P $pid)" ]; }; do
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
