# tests/spr_test.sh - what the shell suites share (sourced after T, the
# suite's scratch folder, is set): pass and fail counts and the checks.
#   ok WHAT / bad WHAT           count and print one result
#   check WHAT EXPR              ok when `eval EXPR` succeeds
#   expect STATUS PATTERN WHAT -- COMMAND...
#                                run COMMAND (stdout and stderr into $T/out and
#                                $T/err; stdin from $SPR_EXPECT_IN when set);
#                                ok when it exits STATUS and PATTERN (grep,
#                                empty: none) is in its stdout or stderr; else
#                                print the first 20 lines of both
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "FAILED - $1"; }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
expect() {
  want=$1; pat=$2; what=$3; shift 4
  if [ -n "${SPR_EXPECT_IN:-}" ]; then
    "$@" > "$T/out" 2> "$T/err" < "$SPR_EXPECT_IN"
  else
    "$@" > "$T/out" 2> "$T/err"
  fi
  got=$?
  if [ "$got" -ne "$want" ]; then
    bad "$what: exit $got, expected $want"; sed 's/^/    /' "$T/out" "$T/err" | head -20; return
  fi
  if [ -n "$pat" ] && ! grep -q -- "$pat" "$T/out" "$T/err"; then
    bad "$what: output lacks '$pat'"; sed 's/^/    /' "$T/out" "$T/err" | head -20; return
  fi
  ok "$what"
}
