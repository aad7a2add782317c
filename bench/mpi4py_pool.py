#!/usr/bin/env python3
"""The mpi4py half of bench/compare_mpi4py.py: the measurements of bench/bench_mpi.cpp, with
mpi4py.futures.MPIPoolExecutor on the ranks mpirun started. Run as
    mpirun -n 4 python3 -m mpi4py.futures bench/mpi4py_pool.py
(rank 0 runs this script, the other ranks are the executor's workers). Prints one JSON line."""
import json
import math
import time

from mpi4py import MPI
from mpi4py.futures import MPIPoolExecutor

MAP_INPUTS = 10000
ROUND_TRIPS = 2000
BUSY_TASKS = 2000


def square(x):
    return x * x


def busy_200us(x):
    until = time.perf_counter() + 200e-6
    while time.perf_counter() < until:
        pass
    return x


def main():
    with MPIPoolExecutor() as executor:
        workers = MPI.COMM_WORLD.Get_size() - 1  # under `-m mpi4py.futures`, every other rank
        list(executor.map(square, range(100)))  # warm: every worker up
        start = time.perf_counter()
        list(executor.map(square, range(MAP_INPUTS)))  # chunksize 1, mpi4py's default
        chunksize_1 = (time.perf_counter() - start) / MAP_INPUTS * 1e6
        chunksize = math.ceil(MAP_INPUTS / (4 * workers))  # the default of multiproc's (and Python's Pool) map
        start = time.perf_counter()
        list(executor.map(square, range(MAP_INPUTS), chunksize=chunksize))
        default_chunks = (time.perf_counter() - start) / MAP_INPUTS * 1e6
        start = time.perf_counter()
        for i in range(ROUND_TRIPS):
            executor.submit(square, i).result()
        round_trip = (time.perf_counter() - start) / ROUND_TRIPS * 1e6
        start = time.perf_counter()
        list(executor.map(busy_200us, range(BUSY_TASKS)))
        busy = BUSY_TASKS / (time.perf_counter() - start)
    print(json.dumps({"workers": workers, "map_chunksize_1_us": chunksize_1, "map_default_us": default_chunks,
                      "round_trip_us": round_trip, "busy_tasks_per_s": busy}))


if __name__ == "__main__":
    main()
