#!/usr/bin/env python3
"""The classic lesson, in Python and in C++ on the same machine: a child process reads N ints that
the parent sends through multiprocessing's Pipe and Queue, for N = 10^4, 10^5, 10^6. Prints both
timings and the C++/Python speed-up. Usage: compare_python.py PATH/TO/python_twin"""
import multiprocessing as mp
import subprocess
import sys
import time


def read_queue(q, n):
    for _ in range(n):
        q.get()


def read_pipe(conn, n):
    for _ in range(n):
        conn.recv()


def python_seconds(transport, n):
    start = time.perf_counter()
    if transport == "Queue":
        q = mp.Queue()
        reader = mp.Process(target=read_queue, args=(q, n))
        reader.start()
        for i in range(n):
            q.put(i)
    else:
        receiving, sending = mp.Pipe(duplex=False)
        reader = mp.Process(target=read_pipe, args=(receiving, n))
        reader.start()
        for i in range(n):
            sending.send(i)
    reader.join()
    return time.perf_counter() - start


def main():
    mp.set_start_method("fork")
    twin = subprocess.run([sys.argv[1]], check=True, capture_output=True, text=True).stdout.split("\n")
    cpp = {(t, int(n)): float(s) for t, n, s in (line.split() for line in twin if line)}
    print(f"{'transport':<9} {'N':>9} {'Python s':>10} {'C++ s':>10} {'C++ msg/s':>12} {'speed-up':>9}")
    for n in (10**4, 10**5, 10**6):
        for transport in ("Pipe", "Queue"):
            py = python_seconds(transport, n)
            c = cpp[(transport, n)]
            print(f"{transport:<9} {n:>9} {py:>10.4f} {c:>10.4f} {n / c:>12,.0f} {py / c:>8.0f}x")


if __name__ == "__main__":
    main()
