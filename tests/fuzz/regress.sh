#!/bin/sh
# regress.sh - make check's quick regression run of the fuzzing harnesses
# (docs/fuzzing.md): every seed of tests/fuzz/corpus/<harness>/ through its
# harness built with the replay driver, and the hdf5-crashers through the
# byte-level HDF5 harnesses.  A harness aborts when a property breaks.
set -u
B=${top_builddir:-.}
S=${top_srcdir:-.}
C="$S/tests/fuzz/corpus"
# the reader's child: 1 s of CPU per request (the crashers that loop)
SPRINTSIM_H5_LIMITS="cpu=1"
export SPRINTSIM_H5_LIMITS
fail=0
for h in ini calibrate sweep qkv_bytes qkv_struct device_bytes device_struct matrix_bytes \
    matrix_struct model_bytes model_struct; do
  extra=""
  case $h in *_bytes) extra="$S/tests/data/hdf5-crashers" ;; esac
  if "$B/tests/fuzz/regress_$h" "$C/$h" $extra > "$B/tests/fuzz/regress_$h.out" 2>&1; then
    echo "ok - $h: $(tail -1 "$B/tests/fuzz/regress_$h.out" | sed 's/.*: //')"
  else
    echo "FAILED - $h"; tail -20 "$B/tests/fuzz/regress_$h.out"
    fail=$((fail + 1))
  fi
done
[ "$fail" -eq 0 ]
