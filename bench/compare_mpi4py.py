#!/usr/bin/env python3
"""multiproc::mpi::Pool against mpi4py.futures.MPIPoolExecutor and the local multiproc::Pool, on
the same machine, in one run: every configuration is launched once per repetition, the order
rotating from one repetition to the next, and each figure is the median of the repetitions with
its range [min-max]. Usage:
    python3 bench/compare_mpi4py.py build/bench/bench_mpi [--repetitions 5] [--python /usr/bin/python3]
--python is the interpreter that has mpi4py (Debian's python3-mpi4py: /usr/bin/python3).

Configurations (tasks as in bench/bench_mpi.cpp and bench/mpi4py_pool.py):
  mpi::Pool 4 ranks      mpirun -n 4 bench_mpi cluster: rank 0 the client, 3 serving ranks, each
                         with its local pool (hybrid: its share of the CPUs)
  mpi4py 4 ranks         mpirun -n 4 python3 -m mpi4py.futures mpi4py_pool.py: 3 worker ranks
  local Pool 3 workers   bench_mpi local 3: multiproc::Pool on this machine, no MPI
  mpi::Pool 2x2 hybrid   mpirun -n 2 bench_mpi cluster 2: one serving rank, 2 local workers
  mpi::Pool 2x1          mpirun -n 2 bench_mpi cluster 1: one serving rank, 1 local worker (one
                         task at a time per rank, as an MPI pool without local workers runs)
  mpi4py 2 ranks         mpirun -n 2 ... mpi4py_pool.py: 1 worker rank
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

METRICS = [
    ("map_chunksize_1_us", "map chunksize 1, us/task", False),
    ("map_default_us", "map default chunks, us/task", False),
    ("round_trip_us", "submit+result round trip, us", False),
    ("busy_tasks_per_s", "200 us tasks, tasks/s", True),
]


def configurations(bench, python, script):
    mpirun = ["mpirun", "--oversubscribe", "--bind-to", "none"]
    mpi4py = [python, "-m", "mpi4py.futures", str(script)]
    return {
        "mpi::Pool 4 ranks": mpirun + ["-n", "4", bench, "cluster"],
        "mpi4py 4 ranks": mpirun + ["-n", "4"] + mpi4py,
        "local Pool 3 workers": [bench, "local", "3"],
        "mpi::Pool 2x2 hybrid": mpirun + ["-n", "2", bench, "cluster", "2"],
        "mpi::Pool 2x1": mpirun + ["-n", "2", bench, "cluster", "1"],
        "mpi4py 2 ranks": mpirun + ["-n", "2"] + mpi4py,
    }


def run(command, env):
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env, timeout=600).stdout
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if len(lines) != 1:
        raise RuntimeError(f"{' '.join(command)} printed no single JSON line:\n{out}")
    return json.loads(lines[0])


def summary(values):
    return statistics.median(values), min(values), max(values)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench_mpi")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--python", default="/usr/bin/python3")
    args = parser.parse_args()
    script = pathlib.Path(__file__).with_name("mpi4py_pool.py")
    env = dict(os.environ)
    if os.geteuid() == 0:  # Open MPI refuses root unless told twice
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    configs = configurations(args.bench_mpi, args.python, script)
    names = list(configs)
    results = {name: [] for name in names}
    load_before = os.getloadavg()[0]
    for repetition in range(args.repetitions):
        shift = repetition % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(run(configs[name], env))
            print(f"  repetition {repetition + 1}/{args.repetitions}: {name} done", file=sys.stderr)
    print(f"{os.cpu_count()} CPUs, load average {load_before:.2f} before and {os.getloadavg()[0]:.2f} after; "
          f"{args.repetitions} repetitions, interleaved; median [min-max]")
    print(f"{'':22}" + "".join(f"{title:>34}" for _, title, _ in METRICS))
    medians = {}
    for name in names:
        cells = []
        for key, _, _ in METRICS:
            median, low, high = summary([r[key] for r in results[name]])
            medians[(name, key)] = median
            cells.append(f"{median:>12.4g} [{low:.4g}-{high:.4g}]")
        print(f"{name:22}" + "".join(f"{cell:>34}" for cell in cells))
    print()

    def ratio(slow, fast, key):
        return medians[(slow, key)] / medians[(fast, key)]

    print("per-task overhead, mpi4py.futures / mpi::Pool (4 ranks):")
    for key, title, higher_is_better in METRICS:
        if higher_is_better:
            print(f"  {title:34} mpi::Pool {ratio('mpi::Pool 4 ranks', 'mpi4py 4 ranks', key):.1f}x the throughput")
        else:
            print(f"  {title:34} {ratio('mpi4py 4 ranks', 'mpi::Pool 4 ranks', key):.1f}x less")
    print("hybrid: one serving rank with 2 local workers against 1 (and mpi4py's one task per rank):")
    print(f"  200 us tasks: {ratio('mpi::Pool 2x2 hybrid', 'mpi::Pool 2x1', 'busy_tasks_per_s'):.2f}x the throughput "
          f"of 2x1, {ratio('mpi::Pool 2x2 hybrid', 'mpi4py 2 ranks', 'busy_tasks_per_s'):.2f}x that of mpi4py")
    print("  map chunksize 1, us/task: " + ", ".join(
        f"{name} {medians[(name, 'map_chunksize_1_us')]:.3g}" for name in ("mpi::Pool 2x2 hybrid", "mpi::Pool 2x1", "mpi4py 2 ranks")))


if __name__ == "__main__":
    main()
