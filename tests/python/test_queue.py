"""multiproc.Queue, JoinableQueue and SimpleQueue from Python: the message rule, multiprocessing's
methods and exceptions, children made by fork, unrelated programs by name."""
import multiprocessing
import os
import pickle
import queue
import threading
import time

import pytest

import multiproc
from conftest import start_python

FORK = multiprocessing.get_context("fork")


@pytest.mark.parametrize("message, expected", [
    ("héllo wörld", "héllo wörld"),            # str: its UTF-8, read back as str
    ("", ""),                                  # the empty message is the empty str
    ("a\udc80", "a\udc80"),                    # a str without UTF-8 (lone surrogate) goes pickled
    (b"\x80\x05\x95abc", b"\x80\x05\x95abc"),  # looks like a pickle, is not valid UTF-8: bytes
    (b"\xff\xfe\x00", b"\xff\xfe\x00"),        # not UTF-8: bytes
    (b"abc", "abc"),                           # bytes that are UTF-8 read back as str (the rule)
    (b"", ""),
    (42, 42), (None, None), (3.5, 3.5), ((1, "a"), (1, "a")), ({"k": [1, 2]}, {"k": [1, 2]}),
    (bytearray(b"xy"), bytearray(b"xy")),      # not exactly bytes: pickled, so it stays a bytearray
    (multiproc.PICKLE_TAG + b"junk", multiproc.PICKLE_TAG + b"junk"),  # bytes that begin with the tag travel pickled
])
def test_the_message_rule_round_trips(message, expected):
    q = multiproc.Queue()
    q.put(message)
    got = q.get()
    assert got == expected and type(got) is type(expected)


def test_the_bytes_on_the_wire_are_the_rule(name):
    sender = multiproc.Queue.create(name)
    raw = multiproc.Queue.open(name, raw=True)
    for message in ["text é", b"\x00\xff", 7]:
        sender.put(message)
    assert raw.get() == "text é".encode()
    assert raw.get() == b"\x00\xff"
    assert raw.get() == multiproc.PICKLE_TAG + pickle.dumps(7, protocol=5)
    with pytest.raises(TypeError):
        raw.put(7)  # a raw handle carries bytes and str only


def test_a_tagged_message_that_does_not_unpickle_is_handed_over_with_the_error(name):
    multiproc.Queue.create(name, raw=True).put(multiproc.PICKLE_TAG + b"not a pickle")
    with pytest.raises(multiproc.DecodeError) as caught:
        multiproc.Queue.open(name).get()
    assert caught.value.payload == multiproc.PICKLE_TAG + b"not a pickle"


def test_empty_and_full_are_the_queue_modules():
    q = multiproc.Queue(2)
    assert q.empty() and not q.full() and q.maxsize == 2
    q.put(1)
    q.put_nowait(2)
    assert q.full() and q.qsize() == 2
    with pytest.raises(queue.Full):
        q.put_nowait(3)
    with pytest.raises(queue.Full):
        q.put(3, timeout=0.01)
    with pytest.raises(queue.Full):
        q.put(3, block=False)
    assert [q.get(), q.get_nowait()] == [1, 2]
    with pytest.raises(queue.Empty):
        q.get_nowait()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)
    with pytest.raises(queue.Empty):
        q.get(False)


def echo_reversed(inbox, outbox):
    outbox.put(inbox.get()[::-1])


def test_messages_bigger_than_the_buffer_travel_between_processes():
    q = multiproc.Queue(buffer_bytes=4096)
    q.put(b"\xff" * 5000)          # over the whole buffer
    q.put(b"\xfe" * 3000)          # over a quarter of it
    q.put(b"\xfd" * 10)
    assert q.get() == b"\xff" * 5000
    assert q.get() == b"\xfe" * 3000
    assert q.get() == b"\xfd" * 10
    inbox, outbox = multiproc.Queue(), multiproc.Queue()
    big = bytes(range(256)) * (16 << 12)  # 16 MiB, not UTF-8: travels as bytes
    child = FORK.Process(target=echo_reversed, args=(inbox, outbox))
    child.start()
    inbox.put(big)
    assert outbox.get(timeout=30) == big[::-1]
    child.join(30)
    assert child.exitcode == 0


def test_a_big_put_that_waits_writes_its_message_out_once():
    # On the main thread a blocked put waits in 50 ms slices (signal handlers run between them); a
    # message over a quarter of the buffer travels in a segment of its own, made once per put, not
    # once per slice. A watcher lists this process's spill segments while the put waits.
    q = multiproc.Queue(1, buffer_bytes=4096)
    q.put(1)
    prefix = f"multiproc.spill-{os.getpid()}-"
    seen, stop = set(), threading.Event()

    def watch():
        while not stop.is_set():
            seen.update(n for n in os.listdir("/dev/shm") if n.startswith(prefix))
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with pytest.raises(queue.Full):
            q.put(b"\xff" * 5000, timeout=0.4)  # 8 slices
    finally:
        stop.set()
        watcher.join()
    assert len(seen) == 1, sorted(seen)
    assert not [n for n in os.listdir("/dev/shm") if n.startswith(prefix)]
    assert q.get() == 1
    q.put(b"\xfe" * 5000, timeout=1)  # room now: it travels
    assert q.get() == b"\xfe" * 5000


def test_close_ends_the_handle_shutdown_ends_the_queue(name):
    mine = multiproc.Queue.create(name)
    theirs = multiproc.Queue.open(name)
    mine.put("a")
    mine.close()
    with pytest.raises(ValueError):
        mine.put("b")
    assert theirs.get() == "a"  # the queue itself goes on
    theirs.put("c")
    theirs.shutdown()
    assert theirs.is_shutdown
    with pytest.raises(multiproc.ShutDown):
        theirs.put("d")
    assert theirs.get() == "c"  # what is left is still taken
    with pytest.raises(multiproc.ShutDown):
        theirs.get()


def test_joinable_queue_counts_tasks():
    q = multiproc.JoinableQueue()
    q.put("job")
    assert q.join(timeout=0.01) is False
    q.get()
    q.task_done()
    assert q.join(timeout=5) is True
    with pytest.raises(ValueError):
        q.task_done()


def test_simple_queue():
    q = multiproc.SimpleQueue()
    assert q.empty()
    q.put([1, 2])
    assert q.get() == [1, 2]
    q.close()


def worker_doubles(jobs, results):
    while (n := jobs.get()) is not None:
        results.put(n * 2)


def test_children_made_by_fork_share_anonymous_queues():
    jobs, results = multiproc.Queue(), multiproc.Queue()
    workers = [FORK.Process(target=worker_doubles, args=(jobs, results)) for _ in range(3)]
    for w in workers:
        w.start()
    for n in range(300):
        jobs.put(n)
    for _ in workers:
        jobs.put(None)
    got = sorted(results.get(timeout=30) for _ in range(300))
    for w in workers:
        w.join(30)
        assert w.exitcode == 0
    assert got == [2 * n for n in range(300)]


def test_unrelated_programs_share_a_queue_by_name(name):
    to_child = multiproc.Queue.create(name + ".down", 10)
    from_child = multiproc.Queue.create(name + ".up", 10)
    child = start_python(
        "import multiproc, sys\n"
        "multiproc.Queue.open(sys.argv[1] + '.up').put({'from': 'child'})\n"
        "print(multiproc.Queue.open(sys.argv[1] + '.down').get(timeout=30))\n", name)
    assert from_child.get(timeout=30) == {"from": "child"}
    to_child.put("from parent")
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0 and out == "from parent\n"


def test_named_queues_travel_by_name_and_anonymous_ones_refuse(name):
    q = multiproc.Queue.create(name)
    carrier = multiproc.Queue()
    carrier.put(q)  # pickled: reopened by name on the other side
    again = carrier.get()
    again.put("through the copy")
    assert q.get() == "through the copy"
    with pytest.raises(TypeError, match="fork"):
        carrier.put(multiproc.Queue())


def test_threads_block_without_the_gil():
    q = multiproc.Queue()
    got = []
    reader = threading.Thread(target=lambda: got.append(q.get(timeout=30)))
    reader.start()
    time.sleep(0.2)  # let it block (if it has not yet, the test proves less, but still passes only if right)
    # The reader is blocked in get; were it holding the GIL, this thread could not run to put.
    q.put("hello")
    reader.join(30)
    assert got == ["hello"]
