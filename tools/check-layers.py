#!/usr/bin/env python3
"""Checks that every file of the library includes only its own layer and the layers below it.

The layers, bottom up, are the folders of lib/ and include/multiproc/detail/ (lib/README.md is
the map). A public header under include/multiproc/ belongs to the layer named in PUBLIC below.
Run from anywhere; exits 1 and names each include that points upwards.
"""
import pathlib
import re
import sys

LAYERS = ["os", "shm", "sync", "ring", "channel", "store", "process", "pool", "registry", "mpi", "python"]

# The layer of each public header (one concept per header).
PUBLIC = {
    "export.hpp": "os", "error.hpp": "os", "codec.hpp": "os", "object_tags.hpp": "os",
    "segment.hpp": "shm",
    "lock.hpp": "sync", "rlock.hpp": "sync", "semaphore.hpp": "sync", "event.hpp": "sync",
    "condition.hpp": "sync", "barrier.hpp": "sync", "value.hpp": "sync", "array.hpp": "sync",
    "spsc_ring.hpp": "ring", "mpmc_ring.hpp": "ring",
    "queue.hpp": "channel", "simple_queue.hpp": "channel", "joinable_queue.hpp": "channel",
    "pipe.hpp": "channel", "connection.hpp": "channel",
    "shared_dict.hpp": "store", "shared_list.hpp": "store",
    "process.hpp": "process", "log.hpp": "process",
    "pool.hpp": "pool", "executor.hpp": "pool",
    "registry.hpp": "registry",
    "mpi.hpp": "mpi", "mpi_world.hpp": "mpi",
    "multiproc.hpp": None,  # the umbrella: includes everything, belongs to no layer
}

ROOT = pathlib.Path(__file__).resolve().parent.parent
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def layer_of_path(path: pathlib.Path):
    rel = path.relative_to(ROOT).as_posix()
    parts = rel.split("/")
    if parts[0] == "lib" and len(parts) > 2:
        return parts[1]
    if rel.startswith("include/multiproc/detail/") and len(parts) > 4:
        return parts[3]
    if rel.startswith("include/multiproc/") and len(parts) == 3:
        if parts[2] not in PUBLIC:
            return "unknown public header"
        return PUBLIC[parts[2]]
    return "unknown"


def layer_of_include(kind: str, target: str):
    if kind == "<" and target.startswith("multiproc/detail/"):
        return target.split("/")[2]
    if kind == "<" and target.startswith("multiproc/"):
        return PUBLIC.get(target.split("/", 1)[1], "unknown public header")
    if kind == '"' and "/" in target:  # a lib-private header: "layer/file.hpp"
        return target.split("/")[0]
    return None  # the standard library, Boost, the system: below every layer


def main() -> int:
    problems = []
    files = [p for p in (ROOT / "lib").rglob("*") if p.suffix in (".cpp", ".hpp")]
    files += [p for p in (ROOT / "include" / "multiproc").rglob("*.hpp")]
    for path in sorted(files):
        own = layer_of_path(path)
        if own is None:
            continue
        if own not in LAYERS:
            problems.append(f"{path.relative_to(ROOT)}: not in any layer ({own})")
            continue
        for kind, target in INCLUDE.findall(path.read_text()):
            theirs = layer_of_include(kind, target)
            if theirs is None:
                continue
            if theirs not in LAYERS:
                problems.append(f"{path.relative_to(ROOT)}: includes {target}, which is in no layer")
            elif LAYERS.index(theirs) > LAYERS.index(own):
                problems.append(f"{path.relative_to(ROOT)} ({own}) includes {target} ({theirs}): a layer above")
    for problem in problems:
        print(problem)
    print(f"layers: {len(files)} files, {'clean' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
