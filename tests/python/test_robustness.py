"""What Python's multiprocessing lacks, shown on real processes: a producer killed in the middle of
a put leaves a multiproc.Queue usable for everyone else, while it wedges a multiprocessing.Queue
(shown with a timeout); and Ctrl-C interrupts every blocked call (the latencies are printed)."""
import os
import select
import signal
import subprocess
import sys
import time

import pytest

import multiproc
from conftest import start_python

BIG = 200_000  # bigger than a pipe's 64 KiB buffer, so multiprocessing's writer blocks mid-message

# A producer that puts one big message into a queue with no room for it (nobody reads yet), so it is
# stopped in the middle of its put, then is SIGKILLed; afterwards another producer puts a few
# messages, and a consumer takes everything there is, each get with a 2 s timeout. Prints what it
# got; a line "done" means the consumer finished.
SCENARIO = r"""
import os, signal, sys, time
kind = sys.argv[1]
if kind == "multiprocessing":
    import multiprocessing as mp
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    Empty = __import__("queue").Empty
else:
    import multiproc as mp, multiprocessing
    ctx = multiprocessing.get_context("fork")
    q = mp.Queue(buffer_bytes=4 << 20)
    for _ in range(4):         # fill the buffer: the victim's message cannot fit until one is taken
        q.put(b"\0" * 1_000_000)  # (each under a quarter of it, so in the ring: bigger ones go on their own)
    Empty = mp.Empty

def victim():
    q.put(b"\xee" * {big})
    time.sleep(60)                       # (multiprocessing returns from put at once; its feeder thread writes)

def survivor():
    for i in range(5):
        q.put(i)
    time.sleep(1)                        # multiprocessing: give the feeder thread time to flush

v = ctx.Process(target=victim); v.start()
time.sleep(0.5)                          # the victim is now blocked mid-put (mid-write for multiprocessing)
os.kill(v.pid, signal.SIGKILL); v.join()
s = ctx.Process(target=survivor); s.start(); s.join(3)
print("survivor", "finished" if s.exitcode == 0 else "stuck", flush=True)
got = []
while True:
    try:
        m = q.get(timeout=2)
    except Empty:
        break
    got.append(m if isinstance(m, int) else len(m))
print("got", got, flush=True)
print("done", flush=True)
""".replace("{big}", str(BIG))


def run_scenario(kind, limit):
    # In a session of its own, so that all of it (children that hang included) can be ended.
    child = subprocess.Popen([sys.executable, "-c", SCENARIO, kind], stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        out, _ = child.communicate(timeout=limit)
        return out, True
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        out, _ = child.communicate()
        return out, False


def test_a_producer_killed_mid_put_leaves_the_queue_usable():
    out, finished = run_scenario("multiproc", limit=60)
    assert finished, out
    # The fillers, then the survivor's five messages; the victim's message never became visible.
    assert "survivor finished" in out and "got [1000000, 1000000, 1000000, 1000000, 0, 1, 2, 3, 4]" in out, out


def test_the_same_kill_wedges_multiprocessing_queue():
    # A healthy run takes under 5 s (each get waits at most 2 s). Python's queue wedges instead:
    # the survivor cannot even exit (its feeder thread waits for the write lock the victim died
    # holding), and the consumer reads the victim's half-written message and waits forever for the
    # rest (that read has no timeout). 15 s is three times what a healthy run needs.
    out, finished = run_scenario("multiprocessing", limit=15)
    assert "survivor stuck" in out and not finished, out


def test_random_kills_of_a_busy_producer_lose_nothing_else(name):
    q = multiproc.Queue.create(name, buffer_bytes=1 << 20)
    victim_code = ("import multiproc, sys\nq = multiproc.Queue.open(sys.argv[1])\ni = 0\n"
                   "while True:\n    q.put(('victim', i, b'v' * 50000)); i += 1\n")
    for trial in range(3):
        victim = subprocess.Popen([sys.executable, "-c", victim_code, name])
        while q.qsize() < 2:
            pass
        for _ in range(5):  # keep it busy putting while we drain
            q.get(timeout=10)
        victim.kill()
        victim.wait()
        for i in range(20):
            q.put(("survivor", trial, i))
        got = []
        while True:
            try:
                got.append(q.get(timeout=0.5))
            except multiproc.Empty:
                break
        victims = [m for m in got if m[0] == "victim"]
        assert all(len(m[2]) == 50000 for m in victims)  # whole messages only
        assert [m[2] for m in got if m[0] == "survivor"] == list(range(20))


BLOCKING = r"""
import sys, threading, time
import multiproc
q, full, lock, sem = multiproc.Queue(), multiproc.Queue(1), multiproc.Lock(), multiproc.Semaphore(0)
event, cond, barrier, joinable = multiproc.Event(), multiproc.Condition(), multiproc.Barrier(2), multiproc.JoinableQueue()
full.put(0)
joinable.put(0)
held = threading.Event()
def hold_lock():
    lock.acquire()
    held.set()
    threading.Event().wait()   # a live holder (a dead thread's lock would be recovered at once)
threading.Thread(target=hold_lock, daemon=True).start()
held.wait()
def in_condition():
    with cond:
        cond.wait()
calls = {"Queue.get": q.get, "Queue.put": lambda: full.put(1), "Lock.acquire": lock.acquire,
         "Semaphore.acquire": sem.acquire, "Event.wait": event.wait, "Condition.wait": in_condition,
         "Barrier.wait": barrier.wait, "JoinableQueue.join": joinable.join}
for what, call in calls.items():
    print("blocking", what, flush=True)
    try:
        call()
        print("returned", what, flush=True)
    except KeyboardInterrupt:
        print("interrupted", what, time.monotonic(), flush=True)
print("barrier broken:", barrier.broken, flush=True)
"""


def test_ctrl_c_interrupts_every_blocked_call():
    child = start_python(BLOCKING)
    latencies = {}
    try:
        for line in child.stdout:
            words = line.split()
            if words[0] == "blocking":
                time.sleep(0.3)  # let the call block
                sent = time.monotonic()
                child.send_signal(signal.SIGINT)
                # a hang guard only (no timing assert): the answer must come, however slowly
                ready, _, _ = select.select([child.stdout], [], [], 30)
                assert ready, f"{words[1]} ignored Ctrl-C"
            elif words[0] == "interrupted":
                latencies[words[1]] = float(words[2]) - sent
            elif words[0] == "returned":
                pytest.fail(f"{words[1]} returned instead of blocking")
            elif words[0] == "barrier":
                assert words[2] == "True"  # an interrupted wait breaks the barrier, as in Python
        assert child.wait(30) == 0
    finally:
        child.kill()
        child.wait()
    assert sorted(latencies) == sorted(["Queue.get", "Queue.put", "Lock.acquire", "Semaphore.acquire", "Event.wait",
                                        "Condition.wait", "Barrier.wait", "JoinableQueue.join"])
    print("Ctrl-C to KeyboardInterrupt, ms:", {k: round(v * 1000, 1) for k, v in latencies.items()})
