#!/usr/bin/env python3
"""Per-task overhead of Python's multiprocessing.Pool and ProcessPoolExecutor against multiproc's,
on the same machine, with tiny tasks (x * x) and 2 workers. Usage:
compare_python_pool.py PATH/TO/bench_pool"""
import concurrent.futures as cf
import json
import multiprocessing as mp
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
    py = python_microseconds()
    cpp = cpp_microseconds(sys.argv[1])
    print(f"{'per task':<18} {'Python us':>10} {'C++ us':>10} {'less overhead':>14}")
    for name in ("map_chunksize_1", "map_default", "apply_async_get", "submit_result"):
        print(f"{name:<18} {py[name]:>10.2f} {cpp[name]:>10.2f} {py[name] / cpp[name]:>13.1f}x")


if __name__ == "__main__":
    main()
