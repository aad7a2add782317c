"""SharedDict (a MutableMapping) and SharedList (a MutableSequence) from Python, between processes."""
import multiprocessing
import os
import queue
import signal
from collections.abc import MutableMapping, MutableSequence

import pytest

import multiproc

FORK = multiprocessing.get_context("fork")


def test_shared_dict_is_a_mutable_mapping():
    d = multiproc.SharedDict({"a": 1})
    assert isinstance(d, MutableMapping)
    d["b"] = [1, 2]
    d[3] = None
    assert d == {"a": 1, "b": [1, 2], 3: None} and len(d) == 3
    assert d.pop("a") == 1 and d.pop("a", "gone") == "gone" and d.get("a") is None
    del d[3]
    with pytest.raises(KeyError):
        del d[3]
    with pytest.raises(KeyError):
        d["missing"]
    d.setdefault("c", 5)
    d.update(e=6)
    assert sorted(d.keys()) == ["b", "c", "e"] and d.copy() == {"b": [1, 2], "c": 5, "e": 6}
    d.clear()
    assert len(d) == 0


def test_a_full_dict_raises_full_and_changes_nothing():
    d = multiproc.SharedDict(size=64 * 1024)
    d["keep"] = "me"
    with pytest.raises(queue.Full):
        d["big"] = b"\xff" * (64 * 1024)
    assert d == {"keep": "me"}


def write_entries(d, start):
    for i in range(start, start + 200):
        d[i] = i * i


def test_writers_in_several_processes():
    d = multiproc.SharedDict()
    children = [FORK.Process(target=write_entries, args=(d, k * 200)) for k in range(4)]
    for c in children:
        c.start()
    for c in children:
        c.join(60)
        assert c.exitcode == 0
    assert d.copy() == {i: i * i for i in range(800)}


def write_forever(d):
    i = 0
    while True:
        d[f"key-{i % 50}"] = "v" * (i % 300)
        i += 1


def test_a_writer_killed_mid_call_leaves_the_dict_usable():
    d = multiproc.SharedDict()
    for _ in range(3):
        writer = FORK.Process(target=write_forever, args=(d,))
        writer.start()
        while len(d) < 50:
            pass
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(30)
        d["after"] = "ok"
        assert d["after"] == "ok"
        assert all(isinstance(v, str) for v in d.values())


def test_shared_list_is_a_mutable_sequence(name):
    items = multiproc.SharedList.create(name)
    assert isinstance(items, MutableSequence)
    items.extend([1, 2, 3])
    items.insert(0, "first")
    items.insert(100, "last")
    items.insert(-1, "before last")
    del items[1]
    items[0] = "FIRST"
    assert items == ["FIRST", 2, 3, "before last", "last"]
    assert items.pop() == "last" and items.pop(0) == "FIRST" and items[-1] == "before last"
    assert items[0:2] == [2, 3] and list(reversed(items)) == ["before last", 3, 2]
    assert multiproc.SharedList.open(name) == [2, 3, "before last"]
    with pytest.raises(IndexError):
        items[3]
    items.clear()
    with pytest.raises(IndexError):
        items.pop()
