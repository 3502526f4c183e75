#!/bin/sh
# test_cli.sh - the sprintsim command: help, runs, every command-line and
# configuration error path, atomic output, interruption.
set -u
B=${top_builddir:-.}
S=${top_srcdir:-.}
EXE="$B/sprintsim"
T="$B/tests/tmp-cli-$$"
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
    bad "$what: exit $got, expected $want"; sed 's/^/    /' "$T/err"; return
  fi
  if [ -n "$pat" ] && ! grep -q -- "$pat" "$T/out" "$T/err"; then
    bad "$what: output lacks '$pat'"; sed 's/^/    /' "$T/out" "$T/err"; return
  fi
  ok "$what"
}

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
[ ! -e "$T/x.h5" ] && notmp "$T/x.h5" && ok "no output after config errors" || bad "no output after config errors"

# output errors: nothing left behind
expect 1 "$T/nodir/out.h5" "unwritable output" -- "$EXE" run "$T/small.ini" -o "$T/nodir/out.h5"
[ ! -e "$T/nodir" ] && ok "no directory created" || bad "no directory created"

# report: tables from the trace alone
expect 0 "  all dense    100.00" "report of a run" -- "$EXE" report "$T/a.h5"
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

# a run that cannot fit in memory is refused up front
printf '[workload]\nseq_len = 16384\nheads = 64\n' > "$T/huge.ini"
expect 1 "GiB of memory" "oversized run refused" -- "$EXE" run "$T/huge.ini" -o "$T/huge.h5"
[ ! -e "$T/huge.h5" ] && notmp "$T/huge.h5" && ok "no output for an oversized run" || bad "no output for an oversized run"

# source vit: the errors, then a three-image run (docs/vit.md)
printf '[workload]\nsource = qkv\n' > "$T/qkv.ini"
expect 1 "qkv.ini:2: key 'workload.source': value 'qkv' is not available" "source qkv refused" -- "$EXE" run "$T/qkv.ini" -o "$T/x.h5"
printf '[threshold]\nmode = learned\n' > "$T/learned.ini"
expect 1 "'learned' needs workload.source = vit" "learned thresholds need a model" -- "$EXE" run "$T/learned.ini" -o "$T/x.h5"
printf '[workload]\nsource = vit\nmodel = %s/nomodel.h5\n' "$T" > "$T/nomodel.ini"
expect 1 "$T/nomodel.h5: cannot open the ViT model" "missing model file" -- "$EXE" run "$T/nomodel.ini" -o "$T/x.h5"
printf '[workload]\nsource = vit\nmodel = %s/models/vit-fmnist.h5\ndataset = %s/nodata\n' "$S" "$T" > "$T/nodata.ini"
expect 1 "$T/nodata/t10k-images-idx3-ubyte.gz: cannot open" "missing dataset" -- "$EXE" run "$T/nodata.ini" -o "$T/x.h5"
[ ! -e "$T/x.h5" ] && notmp "$T/x.h5" && ok "no output for a failed vit run" || bad "no output for a failed vit run"
if [ -r /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  cat > "$T/vit.ini" <<INI
[workload]
source = vit
model = $S/models/vit-fmnist.h5
images = 3
first_image = 9997
[threshold]
mode = learned
offset = 0.1
INI
  expect 0 "^sprint " "vit run" -- "$EXE" run "$T/vit.ini" -o "$T/vit.h5" --threads 2
  grep -q "^exact .* 100.00  100.00" "$T/out" && ok "vit run: exact row" || bad "vit run: exact row"
  [ -f "$T/vit.h5" ] && notmp "$T/vit.h5" && ok "vit output written" || bad "vit output written"
  printf '[workload]\nsource = vit\nmodel = %s/models/vit-fmnist.h5\nimages = 4\nfirst_image = 9997\n' "$S" > "$T/vitbig.ini"
  expect 1 "first_image 9997 + workload.images 4 exceed the 10000 test images" "images beyond the test set" -- "$EXE" run "$T/vitbig.ini" -o "$T/x.h5"
else
  echo "skip - vit run: /usr/share/datasets/fashion-mnist absent"
fi

# config: prints the resolved configuration, which parses back identically
expect 0 "seq_len = 64" "config command" -- "$EXE" config "$T/small.ini"
cp "$T/out" "$T/resolved.ini"
expect 0 "" "resolved config parses" -- "$EXE" config "$T/resolved.ini"
cmp -s "$T/out" "$T/resolved.ini" && ok "config round trip" || bad "config round trip"
expect 2 "at most one CONFIG" "config with two files" -- "$EXE" config a b

# an independent reader (h5py + numpy) recomputes every decision of a full trace
PY=/usr/bin/python3
if [ -x "$PY" ] && "$PY" -c 'import h5py, numpy' 2>/dev/null; then
  "$EXE" run "$T/small.ini" -o "$T/full.h5" --trace full > /dev/null 2>&1
  expect 0 "all decisions and counts agree" "h5py recomputes the full trace" -- "$PY" "$S/tests/check_trace.py" "$T/full.h5"
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
  expect 0 "model spice" "crossbar spice" -- "$EXE" crossbar --g "$T/G.h5" --v "$T/V.h5" --model spice --r-wl 2.5 --r-bl 3 -o "$T/Is.h5"
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

rm -rf "$T"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
