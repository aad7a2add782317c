#!/usr/bin/env bash
# Builds multiproc and runs the whole test suite (the README's test command; .ci/run calls it too):
#   1. as built for users (g++), the short fault campaign included;
#   2. again under AddressSanitizer + UndefinedBehaviorSanitizer (any report fails the run);
#   3. the thread-mode tests under ThreadSanitizer (clang);
#   4. the libFuzzer targets, MULTIPROC_FUZZ_SECONDS (default 20) each, under ASan + UBSan (clang);
#   5. the static analysers on lib/ and include/ (tools/lint.sh).
# Ends with meson's counts for all on one line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
build=${MULTIPROC_BUILD_DIR:-build}
sanitized=${MULTIPROC_SANITIZED_BUILD_DIR:-build-sanitized}
fuzz_seconds=${MULTIPROC_FUZZ_SECONDS:-20}

passed=0
failed=0
status=0
# run_suite DIR SETUP-OPTIONS... -- COMPILE-TARGETS... -- TEST-OPTIONS...
# (no compile targets: everything). CXX in the environment picks the compiler of a new DIR.
run_suite() {
  local dir=$1
  shift
  local setup=() targets=()
  while [ "$1" != "--" ]; do setup+=("$1"); shift; done
  shift
  while [ "$1" != "--" ]; do targets+=("$1"); shift; done
  shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "${setup[@]}" || return 1
  fi
  meson compile -C "$dir" "${targets[@]}" || return 1
  meson test -C "$dir" --print-errorlogs "$@"
  local rc=$?
  local log="$dir/meson-logs/testlog.json"
  passed=$((passed + $(grep -c '"result": "OK"' "$log" 2>/dev/null)))
  failed=$((failed + $(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" 2>/dev/null)))
  return $rc
}

run_suite "$build" -- -- || status=1
# Not under the sanitizers: `packaging` links unsanitized programs against the library, and
# `fallback` runs the tests under valgrind, which cannot host AddressSanitizer.
# -O1, as the AddressSanitizer manual advises: it halves this build's compile time (92 s -> 47 s for
# test_pool.cpp on an idle machine), and the sanitized run is bounded by compiling, not by running.
run_suite "$sanitized" -Db_sanitize=address,undefined -Dcpp_args=-fno-sanitize-recover=all -Doptimization=1 \
  -Dbench=false -Dfault_trials=100 -- -- \
  --no-suite packaging --no-suite fallback || status=1
# ThreadSanitizer does not follow fork(), so only the threads-of-one-process suite runs under it.
TSAN_OPTIONS="halt_on_error=1 ${TSAN_OPTIONS:-}" CXX=clang++ run_suite build-tsan \
  -Db_sanitize=thread -Db_lundef=false -Dexamples=false -Dbench=false -- test_threads -- threads || status=1
CXX=clang++ run_suite build-fuzz -Dfuzz=true -Dfuzz_seconds="$fuzz_seconds" -Dtests=false -Dexamples=false \
  -Dbench=false -Dmpi=disabled -Dpython=disabled -Db_sanitize=address,undefined -Db_lundef=false \
  -Dcpp_args=-fsanitize=fuzzer-no-link -- fuzz_codec fuzz_segment -- --suite fuzz || status=1
if bash tools/lint.sh; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
  status=1
fi

echo "$passed passed, $failed failed"
if [ "$passed" -eq 0 ]; then
  exit 1  # a suite that ran nothing has not passed
fi
exit $status
