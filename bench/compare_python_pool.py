#!/usr/bin/env python3
"""Per-task overhead of Python's multiprocessing.Pool and ProcessPoolExecutor against multiproc's,
on the same machine, with tiny tasks (x * x) and 2 workers. The two sides alternate for ROUNDS
rounds (this machine is noisy); each line gives the median of each side with its range, and the
ratio of the medians with the range of the per-round ratios. Usage:
compare_python_pool.py PATH/TO/bench_pool [ROUNDS]"""
import concurrent.futures as cf
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import time

WORKERS = 2
MAP_INPUTS = 10000
ROUND_TRIPS = 3000


def square(x):
    return x * x


def per_task(seconds, tasks):
    return seconds / tasks * 1e6


def python_microseconds():
    out = {}
    with mp.Pool(WORKERS) as pool:
        pool.map(square, range(100))
        t = time.perf_counter()
        pool.map(square, range(MAP_INPUTS), chunksize=1)
        out["map_chunksize_1"] = per_task(time.perf_counter() - t, MAP_INPUTS)
        t = time.perf_counter()
        pool.map(square, range(MAP_INPUTS))
        out["map_default"] = per_task(time.perf_counter() - t, MAP_INPUTS)
        t = time.perf_counter()
        for i in range(ROUND_TRIPS):
            pool.apply_async(square, (i,)).get()
        out["apply_async_get"] = per_task(time.perf_counter() - t, ROUND_TRIPS)
    with cf.ProcessPoolExecutor(WORKERS) as executor:
        executor.submit(square, 1).result()
        t = time.perf_counter()
        for i in range(ROUND_TRIPS):
            executor.submit(square, i).result()
        out["submit_result"] = per_task(time.perf_counter() - t, ROUND_TRIPS)
    return out


def cpp_microseconds(binary):
    report = json.loads(subprocess.run([binary, "--benchmark_format=json"], check=True, capture_output=True,
                                       text=True).stdout)
    out = {}
    for bench in report["benchmarks"]:
        name = bench["name"].split("/")[0]
        out[name] = 1e6 / bench["items_per_second"]
    return out


def main():
    mp.set_start_method("fork")
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    names = ("map_chunksize_1", "map_default", "apply_async_get", "submit_result")
    py = {name: [] for name in names}
    cpp = {name: [] for name in names}
    for r in range(rounds):
        print(f"round {r + 1} of {rounds}", file=sys.stderr, flush=True)
        for side, measure in ((py, python_microseconds), (cpp, lambda: cpp_microseconds(sys.argv[1]))):
            for name, value in measure().items():
                side[name].append(value)
    print(f"{'per task (us)':<16} {'Python median [range]':>24} {'C++ median [range]':>22} {'less overhead [range]':>24}")
    for name in names:
        ratios = [p / c for p, c in zip(py[name], cpp[name])]
        p, c = statistics.median(py[name]), statistics.median(cpp[name])
        print(f"{name:<16} {p:>9.2f} [{min(py[name]):.2f}-{max(py[name]):.2f}] {c:>8.2f} [{min(cpp[name]):.2f}-{max(cpp[name]):.2f}]"
              f" {p / c:>9.1f}x [{min(ratios):.1f}-{max(ratios):.1f}x]")


if __name__ == "__main__":
    main()
