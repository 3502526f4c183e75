#!/bin/sh
# test_generic.sh - the generic kernels: the suites whose code has AVX-512
# kernels (comparison bits, mask sums, kept maxima, the VNNI int8
# products) run again with SPR_NO_AVX512=1, which selects the portable
# kernels; their checks are against brute force and exact orders, so they
# pass only if both kernels give the same results.  On a machine without
# AVX-512 the suites ran the generic kernels already.
set -u
B=${top_builddir:-.}
fail=0
for t in test_mat test_digital test_baselines test_blocks; do
  if SPR_NO_AVX512=1 "$B/tests/$t" > "$B/tests/generic-$t.out" 2>&1; then
    echo "ok - $t with SPR_NO_AVX512=1"
  else
    fail=1
    echo "FAILED - $t with SPR_NO_AVX512=1"
    tail -20 "$B/tests/generic-$t.out"
  fi
  rm -f "$B/tests/generic-$t.out"
done
exit $fail
