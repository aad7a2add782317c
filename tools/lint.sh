#!/usr/bin/env bash
# Static analysis of lib/ and include/, clean by rule (tools/run-tests.sh fails on any finding):
#   check-layers.py  every file includes only its own layer and those below (lib/README.md)
#   cppcheck   --enable=warning,performance,portability
#   clang-tidy bugprone-*, concurrency-*, performance-*, except bugprone-easily-swappable-parameters
#              (it flags every pair of same-typed parameters, such as (offset, size)).
# Findings judged false are silenced where they occur, with the reason beside them.
# Needs build/compile_commands.json (meson writes it): run after `meson setup build`.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${MULTIPROC_BUILD_DIR:-build}
status=0

echo "layers: lib/ include/"
python3 tools/check-layers.py || status=1

echo "cppcheck: lib/ include/"
cppcheck --enable=warning,performance,portability --std=c++20 --language=c++ --inline-suppr --quiet \
  --error-exitcode=1 -I include lib/ include/ || status=1

echo "clang-tidy: lib/*/*.cpp and the headers they include"
checks='-*,bugprone-*,concurrency-*,performance-*,-bugprone-easily-swappable-parameters'
ls lib/*/*.cpp | xargs -P "$(nproc)" -n 1 clang-tidy -p "$build" --quiet --checks="$checks" \
  --warnings-as-errors='*' --header-filter='.*/include/multiproc/.*|.*/lib/[^/]*/[^/]*$' 2>/dev/null || status=1

if [ $status -eq 0 ]; then echo "lint: clean"; else echo "lint: findings above"; fi
exit $status
