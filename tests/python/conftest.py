"""What every test of the Python module shares: unique names (with the pid in them) that are
removed afterwards, and a check that the session leaves nothing in /dev/shm."""
import itertools
import os
import subprocess
import sys

import pytest

import multiproc

PREFIX = f"pytest-{os.getpid()}-"
_counter = itertools.count()


@pytest.fixture
def name():
    """A name no other test (or test run) uses; unlinked with the other names it starts."""
    base = f"{PREFIX}{next(_counter)}"
    yield base
    for leftover in os.listdir("/dev/shm"):
        if leftover.startswith(f"multiproc.{base}"):
            multiproc.unlink(leftover[len("multiproc."):])


@pytest.fixture(scope="session", autouse=True)
def nothing_left_in_dev_shm():
    yield
    left = [f for f in os.listdir("/dev/shm") if f.startswith(f"multiproc.{PREFIX}")]
    assert not left, f"left in /dev/shm: {left}"


def python(code, *args, timeout=60, check=True, **kwargs):
    """Runs `code` in a new Python interpreter (the one running the tests, importing the module
    from the same place): an unrelated program, not a child made by fork."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          check=check, **kwargs)


def start_python(code, *args, **kwargs):
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, **kwargs)
