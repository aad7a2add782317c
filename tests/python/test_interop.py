"""Python and C++ on one named Queue<std::string> and SharedDict<std::string, std::string>, both
directions: the service example's two halves in either language, and an echo program that shows
the bytes C++ receives and sends them back as any C++ std::string."""
import os
import pickle
import subprocess
import sys

import pytest

import multiproc

SERVICE_CPP = os.environ["MULTIPROC_SERVICE_STRINGS"]
SERVICE_PY = [sys.executable, os.path.join(os.environ["MULTIPROC_EXAMPLES"], "service_strings.py")]
ECHO = os.environ["MULTIPROC_STRING_ECHO"]


@pytest.mark.parametrize("producer, consumer", [
    ([SERVICE_CPP], SERVICE_PY),   # C++ puts, Python gets; C++ writes the tally, Python reads it
    (SERVICE_PY, [SERVICE_CPP]),   # and the other way round
])
def test_the_service_pair_across_languages(name, producer, consumer):
    consuming = subprocess.Popen(consumer + ["consume", name], stdout=subprocess.PIPE, text=True)
    produced = subprocess.run(producer + ["produce", name, "40"], capture_output=True, text=True, timeout=60)
    out, _ = consuming.communicate(timeout=60)
    assert produced.returncode == 0, produced.stderr
    assert consuming.returncode == 0 and "40 orders handled, tally agrees" in out, out
    assert not [f for f in os.listdir("/dev/shm") if f.startswith(f"multiproc.{name}")]  # the consumer removed both


MESSAGES = [
    ("plain text", b"plain text", "plain text"),
    ("ünïcödé ✓", "ünïcödé ✓".encode(), "ünïcödé ✓"),
    ("", b"", ""),                                               # empty message
    (b"\x80\x05\x95\x00looks like a pickle", b"\x80\x05\x95\x00looks like a pickle",
     b"\x80\x05\x95\x00looks like a pickle"),                    # sent back by C++: bytes, not unpickled
    (b"\xff\xfe\xfd not UTF-8", b"\xff\xfe\xfd not UTF-8", b"\xff\xfe\xfd not UTF-8"),
    (b"a\x00b", b"a\x00b", "a\x00b"),                            # NUL inside: all of it travels
    ({"id": 7, "tags": ("x", "y")}, None, {"id": 7, "tags": ("x", "y")}),  # a pickle C++ passes on unread
]


def test_cpp_receives_exactly_the_bytes_and_sends_them_back_as_the_rule_reads_them(name):
    requests = multiproc.Queue.create(name + ".requests")
    replies = multiproc.Queue.create(name + ".replies")
    echo = subprocess.Popen([ECHO, name])
    for message, _, _ in MESSAGES:
        requests.put(message)
    answers = [replies.get(timeout=30) for _ in MESSAGES]
    requests.shutdown()
    assert echo.wait(60) == 0
    seen = multiproc.SharedDict.open(name + ".seen")
    for i, (message, on_the_wire, expected) in enumerate(MESSAGES):
        if on_the_wire is None:
            on_the_wire = multiproc.PICKLE_TAG + pickle.dumps(message, protocol=5)
        assert bytes.fromhex(seen[str(i)]) == on_the_wire
        assert answers[i] == expected and type(answers[i]) is type(expected)


def test_raw_handles_read_what_cpp_sends_as_bytes(name):
    requests = multiproc.Queue.create(name + ".requests")
    replies = multiproc.Queue.create(name + ".replies", raw=True)
    echo = subprocess.Popen([ECHO, name])
    requests.put("text")
    requests.put(b"\x01\x02")
    assert [replies.get(timeout=30), replies.get(timeout=30)] == [b"text", b"\x01\x02"]
    requests.shutdown()
    assert echo.wait(60) == 0
