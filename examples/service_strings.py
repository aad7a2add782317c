#!/usr/bin/env python3
"""service_strings.py: the Python twin of examples/service_strings.cpp (see there): a producer and a
consumer of text orders sharing a named Queue and a SharedDict tally, with a C++ or a Python
program on either side.

    python3 examples/service_strings.py consume [name]
    python3 examples/service_strings.py produce [name] [count]
"""
import re
import sys

import multiproc

ITEMS = ["widget", "gadget", "sprocket"]


def produce(name, count):
    orders = multiproc.Queue.open_or_create(name, 256)
    tally = multiproc.SharedDict.open_or_create(name + ".tally")
    for i in range(1, count + 1):
        item, quantity = ITEMS[i % 3], i % 5 + 1
        tally[item] = str(int(tally.get(item, "0")) + quantity)  # one producer: no race to fear
        orders.put(f"order {i}: {quantity} x {item}", timeout=10)
    tally["sent"] = str(count)
    orders.shutdown()  # end of stream: the consumer takes what is left, then sees ShutDown
    print(f"producer (Python): {count} orders sent")
    return 0


def consume(name):
    orders = multiproc.Queue.open_or_create(name, 256)
    tally = multiproc.SharedDict.open_or_create(name + ".tally")
    try:
        counted, handled = {}, 0
        while True:
            try:
                order = orders.get(timeout=30)
            except multiproc.ShutDown:
                break
            except multiproc.Empty:
                print("consumer (Python): no order for 30 s, leaving")
                return 1
            match = re.fullmatch(r"order (\d+): (\d+) x (\w+)", order)
            if match is None:
                print(f"consumer (Python): not an order: {order!r}")
                return 1
            counted[match[3]] = counted.get(match[3], 0) + int(match[2])
            handled += 1
        agrees = tally.get("sent") == str(handled) and all(
            tally.get(item) == str(quantity) for item, quantity in counted.items())
        print(f"consumer (Python): {handled} orders handled, tally {'agrees' if agrees else 'DIFFERS'}")
        return 0 if agrees else 1
    finally:
        multiproc.unlink(name)
        multiproc.unlink(name + ".tally")


def main():
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    name = sys.argv[2] if len(sys.argv) > 2 else "demo-strings"
    if role == "produce":
        return produce(name, int(sys.argv[3]) if len(sys.argv) > 3 else 10)
    if role == "consume":
        return consume(name)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
