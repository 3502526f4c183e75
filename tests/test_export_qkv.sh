#!/bin/sh
# test_export_qkv.sh - scripts/export_qkv.py: Q, K, V of tiny PyTorch
# models against torch's own attention (tests/check_export_qkv.py), the
# demo command, the message without PyTorch, and sprintsim accepting the
# files.  SKIPs (77) when /usr/bin/python3 cannot import torch, h5py and numpy.
set -u
B=${top_builddir:-.}
S=${top_srcdir:-.}
PY=/usr/bin/python3
if [ ! -x "$PY" ] || ! "$PY" -c 'import torch, h5py, numpy' 2> /dev/null; then
  echo "SKIP: $PY cannot import torch, h5py and numpy"
  exit 77
fi
T="$B/tests/tmp-export-$$"
rm -rf "$T" && mkdir -p "$T"
T=$(cd "$T" && pwd)
fail=0
ok() { echo "ok - $1"; }
bad() { fail=1; echo "FAILED - $1"; }

"$PY" "$S/tests/check_export_qkv.py" "$S" "$B/sprintsim" "$T" || fail=1

# the command: a demo model (nn.TransformerEncoder, whose fused inference
# path must not bypass the capture) with padding, then a run on item 1
if "$PY" "$S/scripts/export_qkv.py" --demo mha --layers 2 --heads 2 --embed 16 --seq 12 \
     --batch 2 --pad 4 -o "$T/demo.h5" > "$T/out" 2>&1 && grep -q "2 layers x 2 heads, N = 12, d = 8, batch 2" "$T/out"; then
  ok "demo export"
else
  bad "demo export"; cat "$T/out"
fi
printf '[workload]\nsource = qkv\nqkv_file = demo.h5\nqkv_item = 1\n' > "$T/demo.ini"
if "$B/sprintsim" run "$T/demo.ini" -o "$T/demo-run.h5" > "$T/out" 2>&1 && grep -q "N = 8, d = 8" "$T/out"; then
  ok "sprintsim runs the demo file (item 1: 8 real tokens)"
else
  bad "sprintsim runs the demo file"; cat "$T/out"
fi

# without PyTorch (site packages off): a clear message and exit 2
"$PY" -S "$S/scripts/export_qkv.py" --demo mha -o "$T/none.h5" > "$T/out" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && grep -q "PyTorch is not importable" "$T/out" && [ ! -e "$T/none.h5" ]; then
  ok "without torch: exit 2 and a message"
else
  bad "without torch: exit $rc"; cat "$T/out"
fi
# a bad command line
"$PY" "$S/scripts/export_qkv.py" -o "$T/x.h5" > "$T/out" 2>&1
[ $? -eq 2 ] && ok "no model: exit 2" || bad "no model: exit 2"

rm -rf "$T"
exit $fail
