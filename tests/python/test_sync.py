"""Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition, Barrier, Value and Array from Python,
between real processes: children made by fork and unrelated programs by name."""
import ctypes
import multiprocessing
import os
import signal
import threading

import pytest

import multiproc
from conftest import python

FORK = multiprocessing.get_context("fork")


def run_children(target, args, n=4):
    children = [FORK.Process(target=target, args=args) for _ in range(n)]
    for c in children:
        c.start()
    for c in children:
        c.join(60)
        assert c.exitcode == 0
    return children


def add_under_lock(counter, times):
    for _ in range(times):
        with counter.get_lock():
            counter.value += 1


def test_value_with_its_lock_loses_no_update_across_processes():
    counter = multiproc.Value("l", 0)
    run_children(add_under_lock, (counter, 2000))
    assert counter.value == 8000


def add_to_array(numbers, lock):
    for i in range(len(numbers)):
        with lock:
            numbers[i] += 1


def test_array_and_lock_across_processes():
    numbers = multiproc.Array("i", 100)
    run_children(add_to_array, (numbers, multiproc.Lock()))
    assert numbers[:] == [4] * 100


def test_typecodes_and_ctypes_types():
    assert multiproc.Value(ctypes.c_double, 1.5).value == 1.5
    assert multiproc.Value("c", b"x").value == b"x"
    assert multiproc.Value("u", "é").value == "é"
    assert multiproc.Value("Q", 2**64 - 1).value == 2**64 - 1
    with pytest.raises(ValueError):
        multiproc.Value("b", 128)  # ctypes would wrap to -128
    with pytest.raises(AttributeError):
        multiproc.RawValue("i").get_lock()
    text = multiproc.Array("c", b"hello\0world")
    assert text.value == b"hello" and text.raw == b"hello\0world"
    floats = multiproc.RawArray("d", [1, 2, 3])
    floats[1:3] = [5, 6]
    assert list(floats) == [1.0, 5.0, 6.0] and floats[-1] == 6.0
    with pytest.raises(IndexError):
        floats[3]


def test_value_shared_with_cpp_types_by_name(name):
    created = multiproc.Value.create(name, "l", 41)
    python("import multiproc, sys\nv = multiproc.Value.open(sys.argv[1])\nassert v.typecode == 'l'\nv.value += 1", name)
    assert created.value == 42
    with pytest.raises(multiproc.LayoutMismatch):
        multiproc.Array.open(name)
    with pytest.raises(multiproc.AlreadyExists):
        multiproc.Value.create(name, "l")


def test_lock_semantics():
    lock = multiproc.Lock()
    assert lock.acquire() and not lock.acquire(False) and not lock.acquire(timeout=0.01)
    with pytest.raises(ValueError):
        lock.acquire()  # would deadlock in Python
    lock.release()
    with pytest.raises(multiproc.NotOwner):
        lock.release()
    rlock = multiproc.RLock()
    with rlock:
        with rlock:
            pass
    result = []
    worker = threading.Thread(target=lambda: result.append(rlock.acquire(timeout=0.01)))
    with rlock:
        worker.start()
        worker.join()
    assert result == [False]


def hold_and_die(lock, held):
    lock.acquire()
    held.set()
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_killed_lock_holder_leaves_the_lock_to_the_next_acquirer():
    lock, held = multiproc.Lock(), multiproc.Event()
    child = FORK.Process(target=hold_and_die, args=(lock, held))
    child.start()
    assert held.wait(30)
    child.join(30)
    assert child.exitcode == -signal.SIGKILL
    assert lock.acquire(timeout=30)
    assert lock.recovered()
    lock.release()
    assert lock.acquire(timeout=1) and not lock.recovered()


def test_semaphores():
    sem = multiproc.Semaphore(2)
    assert sem.acquire() and sem.acquire(timeout=0.01) and not sem.acquire(False)
    sem.release(2)
    assert sem.get_value() == 2
    bounded = multiproc.BoundedSemaphore(1)
    with pytest.raises(ValueError):
        bounded.release()
    with bounded:
        assert bounded.get_value() == 0


def set_after_wait(start, done):
    start.wait()
    done.set()


def test_event_between_processes():
    start, done = multiproc.Event(), multiproc.Event()
    child = FORK.Process(target=set_after_wait, args=(start, done))
    child.start()
    assert not done.wait(0.05)
    start.set()
    assert done.wait(30)
    child.join(30)


def produce_under_condition(cond, box):
    with cond:
        box.value = 1
        cond.notify()


def test_condition_between_processes():
    cond, box = multiproc.Condition(), multiproc.Value("i", 0)
    with cond:
        child = FORK.Process(target=produce_under_condition, args=(cond, box))
        child.start()
        assert cond.wait_for(lambda: box.value == 1, timeout=30)
    child.join(30)
    with pytest.raises(TypeError):
        multiproc.Condition(multiproc.RLock())


def wait_at_barrier(barrier, indices):
    indices.put(barrier.wait(timeout=30))


def test_barrier_between_processes():
    barrier, indices = multiproc.Barrier(4), multiproc.Queue()
    children = [FORK.Process(target=wait_at_barrier, args=(barrier, indices)) for _ in range(3)]
    for c in children:
        c.start()
    mine = barrier.wait(timeout=30)
    got = sorted([mine] + [indices.get(timeout=30) for _ in children])
    for c in children:
        c.join(30)
    assert got == [0, 1, 2, 3]
    lonely = multiproc.Barrier(2)
    with pytest.raises(multiproc.BrokenBarrierError):
        lonely.wait(timeout=0.01)
    assert lonely.broken
    lonely.reset()
    assert not lonely.broken
