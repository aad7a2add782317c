#!/usr/bin/env bash
# Builds multiproc and runs the whole test suite (the README's test command; .ci/run calls it too):
# once as built for users, once more under AddressSanitizer + UndefinedBehaviorSanitizer (any
# report fails the run). Ends with meson's counts for both on one line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
build=${MULTIPROC_BUILD_DIR:-build}
sanitized=${MULTIPROC_SANITIZED_BUILD_DIR:-build-sanitized}

passed=0
failed=0
status=0
# run_suite DIR SETUP-OPTIONS... -- TEST-OPTIONS...
run_suite() {
  local dir=$1
  shift
  local setup=()
  while [ "$1" != "--" ]; do setup+=("$1"); shift; done
  shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "${setup[@]}" || return 1
  fi
  meson compile -C "$dir" || return 1
  meson test -C "$dir" --print-errorlogs "$@"
  local rc=$?
  local log="$dir/meson-logs/testlog.json"
  passed=$((passed + $(grep -c '"result": "OK"' "$log" 2>/dev/null)))
  failed=$((failed + $(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" 2>/dev/null)))
  return $rc
}

run_suite "$build" -- || status=1
# Not under the sanitizers: `packaging` links unsanitized programs against the library, and
# `fallback` runs the tests under valgrind, which cannot host AddressSanitizer.
run_suite "$sanitized" -Db_sanitize=address,undefined -Dcpp_args=-fno-sanitize-recover=all -Dbench=false -- \
  --no-suite packaging --no-suite fallback || status=1

echo "$passed passed, $failed failed"
if [ "$passed" -eq 0 ]; then
  exit 1  # a suite that ran nothing has not passed
fi
exit $status
