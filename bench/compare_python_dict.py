#!/usr/bin/env python3
"""Set and get of small ints: Python's multiprocessing Manager().dict() against multiproc's
SharedDict (bench_shared), on the same machine, one run. Usage:
compare_python_dict.py PATH/TO/bench_shared"""
import json
import multiprocessing as mp
import subprocess
import sys
import time

OPERATIONS = 20000
KEYS = 1000


def python_microseconds():
    with mp.Manager() as manager:
        d = manager.dict()
        t = time.perf_counter()
        for i in range(OPERATIONS):
            d[i % KEYS] = i
        set_us = (time.perf_counter() - t) / OPERATIONS * 1e6
        t = time.perf_counter()
        for i in range(OPERATIONS):
            d[i % KEYS]
        get_us = (time.perf_counter() - t) / OPERATIONS * 1e6
    return {"set": set_us, "get": get_us}


def cpp_microseconds(binary):
    report = json.loads(subprocess.run([binary, "--benchmark_format=json", "--benchmark_filter=SharedDict"],
                                       check=True, capture_output=True, text=True).stdout)
    return {b["name"].split("/")[0]: 1e6 / b["items_per_second"] for b in report["benchmarks"]}


def main():
    py = python_microseconds()
    cpp = cpp_microseconds(sys.argv[1])
    print(f"{'per operation':<14} {'Manager().dict() us':>20} {'SharedDict us':>14} {'faster':>8}")
    for name in ("set", "get"):
        print(f"{name:<14} {py[name]:>20.2f} {cpp[name]:>14.3f} {py[name] / cpp[name]:>7.0f}x")


if __name__ == "__main__":
    main()
