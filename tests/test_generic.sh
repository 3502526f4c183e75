#!/bin/sh
# test_generic.sh - the generic kernels: the suites whose code has AVX-512
# kernels (comparison bits, mask sums, kept maxima, the ranks' top keys,
# top-k's bracket gathering, the VNNI int8 products) run again with
# SPR_NO_AVX512=1, which selects their generic twins; their checks are
# against brute force and exact orders, so they pass only if both kernels
# give the same results.  On a machine without AVX-512 the suites ran the
# generic kernels already.
set -u
B=${top_builddir:-.}
T="$B/tests/tmp-generic-$$"
rm -rf "$T" && mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
. "${top_srcdir:-.}/tests/spr_test.sh"

for t in test_mat test_digital test_baselines test_blocks; do
  expect 0 "" "$t with SPR_NO_AVX512=1" -- env SPR_NO_AVX512=1 "$B/tests/$t"
done

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
