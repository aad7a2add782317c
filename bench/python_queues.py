#!/usr/bin/env python3
"""multiproc's Python module against Python's multiprocessing, in one run on one machine.

Messages a second through multiproc.Queue, multiprocessing.Queue, multiprocessing.SimpleQueue and
multiprocessing.Pipe, for small ints, 1 KiB bytes and 100 KiB bytes, with one producer and one
consumer process, and with four of each (Pipe: one pair only, as a pipe has two ends); then
microseconds per set and per get of SharedDict against Manager().dict(). Every figure is the
median of --repeat runs (default 5) with the lowest and highest; ratios compare medians.

    PYTHONPATH=build/lib/python /usr/bin/python3 bench/python_queues.py [--repeat 5] [--scale 1.0]

--scale multiplies the message counts (0.1 for a quick smoke run).
"""
import argparse
import multiprocessing as mp
import statistics
import time

import multiproc

FORK = mp.get_context("fork")
PAYLOADS = {"small int": 12345, "1 KiB bytes": b"\xab" * 1024, "100 KiB bytes": b"\xcd" * (100 * 1024)}
MESSAGES = {"small int": 40000, "1 KiB bytes": 20000, "100 KiB bytes": 1500}


def make_transport(kind):
    """(put, get, keep) for one kind of channel; `keep` holds what must outlive the fork."""
    if kind == "multiproc.Queue":
        q = multiproc.Queue(1024, buffer_bytes=8 << 20)
        return q.put, q.get, q
    if kind == "mp.Queue":
        q = FORK.Queue(1024)
        return q.put, q.get, q
    if kind == "mp.SimpleQueue":
        q = FORK.SimpleQueue()
        return q.put, q.get, q
    receiving, sending = FORK.Pipe(duplex=False)
    return sending.send, receiving.recv, (receiving, sending)


def produce(put, start, payload, count):
    start.wait()
    for _ in range(count):
        put(payload)


def consume(get, start, count):
    start.wait()
    for _ in range(count):
        get()


def messages_per_second(kind, payload, count, pairs):
    put, get, keep = make_transport(kind)
    start = FORK.Event()
    share = count // pairs
    workers = [FORK.Process(target=consume, args=(get, start, share)) for _ in range(pairs)]
    workers += [FORK.Process(target=produce, args=(put, start, payload, share)) for _ in range(pairs)]
    for w in workers:
        w.start()
    time.sleep(0.2)  # all of them up and waiting
    began = time.perf_counter()
    start.set()
    for w in workers:
        w.join()
        assert w.exitcode == 0, f"{kind}: a worker failed"
    seconds = time.perf_counter() - began
    del keep
    return share * pairs / seconds


def dict_microseconds(make, operations=20000, keys=1000):
    d = make()
    began = time.perf_counter()
    for i in range(operations):
        d[i % keys] = i
    set_us = (time.perf_counter() - began) / operations * 1e6
    began = time.perf_counter()
    for i in range(operations):
        d[i % keys]
    get_us = (time.perf_counter() - began) / operations * 1e6
    return set_us, get_us


def summary(samples):
    return statistics.median(samples), min(samples), max(samples)


def show(value, low, high, unit=""):
    return f"{value:>12,.0f}{unit} [{low:,.0f}-{high:,.0f}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()

    print(f"messages/s, median of {args.repeat} [min-max]; ratio = multiproc.Queue / the other")
    kinds = ["multiproc.Queue", "mp.Queue", "mp.SimpleQueue", "mp.Pipe"]
    for pairs in (1, 4):
        for name, payload in PAYLOADS.items():
            count = max(int(MESSAGES[name] * args.scale) // (4 * pairs) * 4 * pairs, 4 * pairs)
            results = {}
            for kind in kinds:
                if kind == "mp.Pipe" and pairs > 1:
                    continue
                results[kind] = summary([messages_per_second(kind, payload, count, pairs) for _ in range(args.repeat)])
            ours = results["multiproc.Queue"][0]
            for kind, (median, low, high) in results.items():
                ratio = "" if kind == "multiproc.Queue" else f"  x{ours / median:.1f}"
                print(f"{pairs}x{pairs} {name:<14} {kind:<16} {show(median, low, high)}{ratio}")

    with FORK.Manager() as manager:
        theirs = [dict_microseconds(manager.dict) for _ in range(args.repeat)]
    ours = [dict_microseconds(multiproc.SharedDict) for _ in range(args.repeat)]
    print(f"\nus per operation, median of {args.repeat} [min-max], small int keys and values")
    for i, op in enumerate(("set", "get")):
        m_theirs, lo_t, hi_t = summary([t[i] for t in theirs])
        m_ours, lo_o, hi_o = summary([o[i] for o in ours])
        print(f"{op}: SharedDict {m_ours:.2f} [{lo_o:.2f}-{hi_o:.2f}]  Manager().dict() {m_theirs:.1f} "
              f"[{lo_t:.1f}-{hi_t:.1f}]  x{m_theirs / m_ours:.0f}")


if __name__ == "__main__":
    main()
