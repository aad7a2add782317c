#!/usr/bin/env bash
# The one list of what multiproc needs from Debian; used by the README and by .ci/run.
set -euo pipefail
packages=(
  build-essential pkg-config meson ninja-build
  cmake                            # the packaging test builds a find_package(multiproc) consumer
  libboost-dev libboost-test-dev   # Boost.Interprocess (header-only) and Boost.Test
  libbenchmark-dev                 # Google Benchmark
  libcereal-dev                    # cereal: the codec of Queue/Pipe for non-trivial types
  libcli11-dev nlohmann-json3-dev  # the multiproc tool: argument parsing, --json output
  valgrind                         # runs Process/Pool tests on their no-pidfd fallback path
  clang libclang-rt-14-dev         # ThreadSanitizer run and libFuzzer targets (clang's runtimes)
  clang-tidy cppcheck              # static analysis of lib/ and include/ (tools/lint.sh)
  python3-dev python3-pybind11     # the Python module (lib/python), built for /usr/bin/python3
  python3-pytest                   # its tests (tests/python)
  openmpi-bin libopenmpi-dev       # libmultiproc-mpi (the cluster pools) and mpirun for its tests
  python3-mpi4py                   # mpi4py.futures, which bench/compare_mpi4py.py measures against
  libiceoryx-posh-dev iceoryx      # the peers of bench/latency (bench/report.py): iceoryx 2.0 and its
  libzmq3-dev cppzmq-dev           #   RouDi daemon (iox-roudi), ZeroMQ; POSIX mq is in libc (librt)
  python3-matplotlib               # bench/report.py's plots
)
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}"
