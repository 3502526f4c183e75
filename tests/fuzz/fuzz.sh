#!/bin/sh
# fuzz.sh - `make fuzz`: build every harness of tests/fuzz/ with clang,
# libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer, then run each
# for FUZZ_SECONDS seconds on a working copy of its seed corpus
# (docs/fuzzing.md).  Everything goes to $top_builddir/fuzz-build/:
# obj/ (the library compiled for fuzzing), bin/ (the harnesses), corpus/
# (the seeds plus what the fuzzer found interesting), artifacts/ (inputs
# that broke a property or crashed a harness: a finding), log/.
#
# The variables come from the Makefile (FUZZ_CC, FUZZ_SECONDS,
# FUZZ_HARNESSES, FUZZ_LIB_SOURCES, FUZZ_CPPFLAGS, FUZZ_LIBS); FUZZ_JOBS
# (default 1) harnesses run at once.  Exit status 1 when any harness
# found something.
set -eu
S=${top_srcdir:-.}
B=${top_builddir:-.}
O="$B/fuzz-build"
CC=${FUZZ_CC:-clang}
SECS=${FUZZ_SECONDS:-30}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS_F="-std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fopenmp -Wno-pass-failed $SAN"
mkdir -p "$O/obj" "$O/bin" "$O/corpus" "$O/artifacts" "$O/log"

if ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
     $CC -x c -fsanitize=fuzzer,address - -o "$O/probe" 2> "$O/log/probe.err"; then
  echo "fuzz: $CC cannot build a libFuzzer target (Debian: clang, libclang-rt-14-dev):"
  cat "$O/log/probe.err"
  exit 2
fi

# the library, instrumented for coverage (fuzzer-no-link); rebuilt when a
# source or header is newer than its object
newest_h=$(ls -t "$S"/*/*.h | head -1)
objs=""
for src in $FUZZ_LIB_SOURCES; do
  case $src in *.c) ;; *) continue ;; esac
  obj="$O/obj/$(echo "$src" | tr / _ | sed 's/\.c$/.o/')"
  if [ ! -f "$obj" ] || [ "$S/$src" -nt "$obj" ] || [ "$newest_h" -nt "$obj" ]; then
    echo "fuzz: compiling $src"
    # shellcheck disable=SC2086
    $CC $CFLAGS_F -fsanitize=fuzzer-no-link $FUZZ_CPPFLAGS -c "$S/$src" -o "$obj"
  fi
  objs="$objs $obj"
done

for h in $FUZZ_HARNESSES; do
  case $h in
    *_struct) src=${h%_struct}; def=-DFUZZ_STRUCT ;;
    *_bytes) src=${h%_bytes}; def= ;;
    *) src=$h; def= ;;
  esac
  echo "fuzz: linking fuzz_$h"
  # shellcheck disable=SC2086
  $CC $CFLAGS_F -fsanitize=fuzzer $def $FUZZ_CPPFLAGS -I"$S/tests/fuzz" "$S/tests/fuzz/fuzz_$src.c" $objs \
    $FUZZ_LIBS -o "$O/bin/fuzz_$h"
done

# run: a working copy of the seeds (the tree's corpus is never written);
# scratch files in memory when possible (the writers fsync)
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then TMPDIR=/dev/shm; export TMPDIR; fi
SPRINTSIM_H5_LIMITS=${SPRINTSIM_H5_LIMITS:-cpu=2,wall=20}
export SPRINTSIM_H5_LIMITS
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
printf '%-16s %10s %8s %10s %s\n' harness executions seconds corpus result > "$O/summary.txt"
for h in $FUZZ_HARNESSES; do
  mkdir -p "$O/corpus/$h"
  cp "$S/tests/fuzz/corpus/$h/"* "$O/corpus/$h/" 2> /dev/null || true
  echo "fuzz: running fuzz_$h for $SECS s"
  set +e
  "$O/bin/fuzz_$h" -max_total_time="$SECS" -timeout=60 -rss_limit_mb=4096 -malloc_limit_mb=4096 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$O/artifacts/$h-" "$O/corpus/$h" \
    > "$O/log/$h.log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$O/log/$h.log" | tail -1)
  n=$(ls "$O/corpus/$h" | wc -l)
  if [ $rc -eq 0 ]; then result="nothing found"; else result="FOUND (exit $rc, see $O/artifacts, $O/log/$h.log)"; status=1; fi
  printf '%-16s %10s %8s %10s %s\n' "$h" "${execs:-?}" "$SECS" "$n" "$result" >> "$O/summary.txt"
done
cat "$O/summary.txt"
exit $status
