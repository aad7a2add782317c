#!/usr/bin/env bash
# Builds multiproc and runs the whole test suite (the README's test command; .ci/run calls it too).
# Ends with meson's counts on one line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
build=${MULTIPROC_BUILD_DIR:-build}

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" || exit 1
fi
meson compile -C "$build" || exit 1
meson test -C "$build" --print-errorlogs
status=$?

log="$build/meson-logs/testlog.json"
passed=$(grep -c '"result": "OK"' "$log" 2>/dev/null)
failed=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" 2>/dev/null)
echo "${passed:-0} passed, ${failed:-0} failed"
if [ "${passed:-0}" -eq 0 ]; then
  exit 1  # a suite that ran nothing has not passed
fi
exit $status
