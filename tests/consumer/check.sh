#!/usr/bin/env bash
# Uses multiproc the three ways the README describes, from outside this build:
#   1. installed (meson install into a scratch prefix), found with pkg-config;
#   2. installed, found by CMake's find_package (target multiproc::multiproc);
#   3. as a meson subproject.
# Each way builds examples/quickstart.cpp and runs it.
set -euo pipefail
source_root=$(cd "$(dirname "$0")/../.." && pwd)
build_root=$1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

meson install -C "$build_root" --destdir "$scratch/root" --quiet --no-rebuild
pc_file=$(find "$scratch/root" -name multiproc.pc | head -n 1)
[ -n "$pc_file" ] || { echo "meson install did not install multiproc.pc"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc_file") PKG_CONFIG_SYSROOT_DIR="$scratch/root"
libdir=$(dirname "$(find "$scratch/root" -name 'libmultiproc.so.0' | head -n 1)")
c++ -std=c++20 "$source_root/examples/quickstart.cpp" -o "$scratch/quickstart-pc" \
  $(pkg-config --cflags --libs multiproc) -Wl,-rpath,"$libdir"
[ "$("$scratch/quickstart-pc")" = 4000 ] || { echo "pkg-config build gave a wrong count"; exit 1; }
echo "pkg-config: ok"

config_dir=$(dirname "$(find "$scratch/root" -name multiprocConfig.cmake | head -n 1)")
[ -f "$config_dir/multiprocConfigVersion.cmake" ] || { echo "meson install did not install the CMake package"; exit 1; }
mkdir -p "$scratch/cmake-consumer"
cp "$source_root/tests/consumer/CMakeLists.txt" "$source_root/examples/quickstart.cpp" "$scratch/cmake-consumer/"
cmake -S "$scratch/cmake-consumer" -B "$scratch/cmake-consumer/build" -Dmultiproc_DIR="$config_dir" \
  -DCMAKE_BUILD_RPATH="$libdir" >/dev/null
cmake --build "$scratch/cmake-consumer/build" >/dev/null
[ "$("$scratch/cmake-consumer/build/quickstart")" = 4000 ] || { echo "CMake build gave a wrong count"; exit 1; }
echo "cmake find_package: ok"

mkdir -p "$scratch/consumer/subprojects"
cp "$source_root/tests/consumer/meson.build" "$source_root/examples/quickstart.cpp" "$scratch/consumer/"
ln -s "$source_root" "$scratch/consumer/subprojects/multiproc"
meson setup "$scratch/consumer/build" "$scratch/consumer" >/dev/null
meson compile -C "$scratch/consumer/build" >/dev/null
[ "$("$scratch/consumer/build/quickstart")" = 4000 ] || { echo "subproject build gave a wrong count"; exit 1; }
echo "meson subproject: ok"
