"""multiproc: queues, dicts, locks and the rest of multiprocessing's shared objects, in shared memory,
shared by Python processes and C++ programs alike.

Names, arguments and exceptions are multiprocessing's::

    import multiproc
    q = multiproc.Queue(1000)                 # anonymous: shared with children made by fork
    jobs = multiproc.Queue.create("jobs")     # named: any process of this user can open it
    jobs = multiproc.Queue.open("jobs")       # ... as a C++ Queue<std::string> can
    multiproc.unlink("jobs")                  # removes the name (handles stay valid)

Each object also has ``open_or_create(name, ...)``. Queue, SimpleQueue, JoinableQueue; Lock,
RLock, Semaphore, BoundedSemaphore, Event, Condition, Barrier; Value, Array (and RawValue,
RawArray); SharedDict (a MutableMapping) and SharedList (a MutableSequence) without a server
process. Named objects pickle by name (so they can be sent through a Queue or to a Pool);
anonymous ones are shared only with children made by fork.

Messages (what a Queue carries, and the keys and values of SharedDict and SharedList)
------------------------------------------------------------------------------------
A message is one byte string: exactly what a C++ ``Queue<std::string>`` or
``SharedDict<std::string, std::string>`` holds, so C++ and Python read each other's messages.

Writing:
  * ``bytes`` (exactly bytes, not a subclass): its bytes, as they are (unless they begin with
    ``PICKLE_TAG``: such bytes travel pickled, as below, so that they come back as they went);
  * ``str`` (exactly str): its UTF-8, as it is;
  * anything else: ``PICKLE_TAG`` (the 7 bytes ``b"\\xffpickle"``) followed by
    ``pickle.dumps(obj, protocol=5)``.
Reading, by the first rule that applies:
  1. the message starts with ``PICKLE_TAG``: the object ``pickle.loads`` makes of the rest (if
     that fails, ``DecodeError`` is raised with the message's bytes in ``.payload``);
  2. the message is valid UTF-8 (as Python's strict decoder says): a ``str``;
  3. otherwise: ``bytes``.
So a str always comes back as the same str, and any other object (int, None, bytearray, a
dict...) as an equal object. Bytes that are not valid UTF-8 come back as the same bytes; bytes
that are (``b"abc"``, ``b""``) come back as the ``str`` with the same UTF-8: the message itself has
no room for a type mark that a C++ reader would not see. A C++ string that begins like a pickle
(``"\\x80\\x05..."``) is not valid UTF-8 and is read as bytes, never unpickled; only the tag, whose
first byte 0xFF never occurs in UTF-8, marks a pickle. A C++ program may send Python objects on
purpose by writing the tag and a pickle.

Where bytes must stay bytes (a binary protocol spoken with C++), open the object with
``raw=True``: it writes bytes (str as UTF-8) and reads every message as bytes, unpickling nothing.

SharedDict keys are compared by their messages: ``"a"`` and ``b"a"`` are the same key, and keys of
other types match when they pickle alike (ints, strs, tuples of them do; ``1`` and ``1.0`` do not).

Blocking calls and Ctrl-C
-------------------------
Every call that can wait releases the GIL. On the main thread it wakes every 50 ms to run
signal handlers, so Ctrl-C raises KeyboardInterrupt at once, with nothing taken, put or
acquired by the interrupted call (a Barrier wait so interrupted breaks the barrier, as Python's
own does).

Differences from multiprocessing
--------------------------------
  * Queues are bounded by a shared buffer (``buffer_bytes``) as well as by maxsize; a message
    over a quarter of the buffer travels in shared memory of its own, so messages of any size go.
    By default the buffer is 4 MiB (or more), except for a named queue with a maxsize: it gets
    what a C++ ``Queue<std::string>(open_or_create, name, maxsize)`` makes (256 bytes a message),
    so that either side may create it.
  * ``Queue.close()`` ends this handle only, as in multiprocessing; ``shutdown()`` ends the queue for
    everyone (Python 3.13's queue.Queue.shutdown; C++ Queue::close()).
  * A Lock belongs to the thread that acquired it: only that thread may release it (the price of
    recovering from a holder's death: the next acquire takes it over, ``recovered()`` says so).
    Acquiring it again from the holding thread raises ValueError instead of deadlocking.
  * Value and Array hold their own Lock (not an RLock), and ``.value`` / items are read and
    written as single atomic accesses, without it; ints that do not fit the type raise
    ValueError instead of wrapping.
  * Barrier takes no ``action``; Condition borrows a multiproc.Lock only (not an RLock).

Errors: see multiproc.errors.
"""
from collections.abc import MutableMapping, MutableSequence

from . import errors
from .errors import (AlreadyExists, BrokenBarrierError, DecodeError, Empty, Error, Full, InvalidName,
                     LayoutMismatch, MessageTooLarge, NotFound, NotOwner, ShutDown, TooManyReleases)
from ._core import (PICKLE_TAG, Array, Barrier, BoundedSemaphore, Condition, Event, JoinableQueue, Lock, Queue,
                    RLock, Semaphore, SimpleQueue, Value, _SharedDict, _SharedList, unlink)

__all__ = [
    "Queue", "SimpleQueue", "JoinableQueue", "Lock", "RLock", "Semaphore", "BoundedSemaphore", "Event",
    "Condition", "Barrier", "Value", "RawValue", "Array", "RawArray", "SharedDict", "SharedList", "unlink",
    "PICKLE_TAG", "Empty", "Full", "ShutDown", "BrokenBarrierError", "Error", "NotFound", "AlreadyExists",
    "InvalidName", "LayoutMismatch", "NotOwner", "TooManyReleases", "MessageTooLarge", "DecodeError",
]

DEFAULT_STORE_BYTES = 1 << 20


def _reopen(kind, name, *args):
    """How a named object unpickles: opened again by name."""
    return globals()[kind].open(name, *args)


def RawValue(typecode_or_type, *args):
    """A Value without a lock, as multiprocessing.RawValue."""
    return Value(typecode_or_type, *args, lock=False)


def RawArray(typecode_or_type, size_or_initializer):
    """An Array without a lock, as multiprocessing.RawArray."""
    return Array(typecode_or_type, size_or_initializer, lock=False)


class _Store:
    """What SharedDict and SharedList share: the named forms over their compiled half."""

    _core_class = None

    def __init__(self, data=(), *, size=DEFAULT_STORE_BYTES, raw=False, _core=None):
        self._core = _core if _core is not None else self._core_class(size, raw)
        if data:
            self._fill(data)

    @classmethod
    def _wrap(cls, core):
        return cls(_core=core)

    @classmethod
    def create(cls, name, *, size=DEFAULT_STORE_BYTES, raw=False):
        """Makes the named object; AlreadyExists if the name is taken. `size`: bytes of shared memory
        (about half of it holds entries, each its key and value plus some 40 bytes)."""
        return cls._wrap(cls._core_class.create(name, size, raw))

    @classmethod
    def open(cls, name, raw=False):
        """Opens the named object (made by Python or by C++); NotFound if absent."""
        return cls._wrap(cls._core_class.open(name, raw))

    @classmethod
    def open_or_create(cls, name, *, size=DEFAULT_STORE_BYTES, raw=False):
        return cls._wrap(cls._core_class.open_or_create(name, size, raw))

    @property
    def name(self):
        return self._core.name

    def __reduce__(self):
        if self._core.name is None:
            self._core.__reduce__()  # raises the TypeError that says why
        return (_reopen, (type(self).__name__, self._core.name, self._core.raw))

    def __len__(self):
        return len(self._core)

    def clear(self):
        """Removes everything, atomically."""
        self._core.clear()


_MISSING = object()


class SharedDict(_Store, MutableMapping):
    """A dict in shared memory, as Manager().dict() without a server process; a C++
    SharedDict<std::string, std::string> of the same name is the same dict. Every call is atomic;
    iteration walks a snapshot of the keys. A process killed in the middle of a call leaves the
    dict consistent. The size is fixed when it is made: a call that does not fit raises queue.Full
    and changes nothing."""

    _core_class = _SharedDict

    def _fill(self, data):
        self.update(data)

    def __getitem__(self, key):
        return self._core.getitem(key)

    def __setitem__(self, key, value):
        self._core.setitem(key, value)

    def __delitem__(self, key):
        if self._core.pop(key, _MISSING) is _MISSING:
            raise KeyError(key)

    def __contains__(self, key):
        return self._core.contains(key)

    def __iter__(self):
        return iter([key for key, _ in self._core.items()])

    def get(self, key, default=None):
        return self._core.get(key, default)

    def pop(self, key, default=_MISSING):
        """Removes the key and returns its value, atomically."""
        value = self._core.pop(key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                raise KeyError(key)
            return default
        return value

    def items(self):
        """A consistent snapshot: a list of (key, value)."""
        return self._core.items()

    def keys(self):
        return [key for key, _ in self._core.items()]

    def values(self):
        return [value for _, value in self._core.items()]

    def copy(self):
        """A consistent snapshot, as a plain dict."""
        return dict(self._core.items())

    def __repr__(self):
        return f"multiproc.SharedDict({self.copy()!r})"


class SharedList(_Store, MutableSequence):
    """A list in shared memory, as Manager().list() without a server process; a C++
    SharedList<std::string> of the same name is the same list. append, extend, insert, del,
    item assignment and pop() of the last item are each atomic; iteration walks a snapshot."""

    _core_class = _SharedList

    def _fill(self, data):
        self.extend(data)

    def _index(self, i):
        n = len(self._core)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("SharedList index out of range")
        return i

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self._core.snapshot()[i]
        try:
            return self._core.getitem(self._index(i))
        except IndexError:
            raise IndexError("SharedList index out of range") from None

    def __setitem__(self, i, value):
        if isinstance(i, slice):
            raise TypeError("SharedList does not assign slices")
        self._core.setitem(self._index(i), value)

    def __delitem__(self, i):
        if isinstance(i, slice):
            raise TypeError("SharedList does not delete slices")
        self._core.delitem(self._index(i))

    def insert(self, i, value):
        n = len(self._core)
        if i < 0:
            i = max(i + n, 0)
        self._core.insert(min(i, n), value)

    def append(self, value):
        self._core.append(value)

    def extend(self, values):
        """Appends all the values, atomically (all, or none if the list has no room)."""
        self._core.extend(list(values))

    def pop(self, i=-1):
        if i == -1:
            try:
                return self._core.pop_last()
            except IndexError:
                raise IndexError("pop from empty SharedList") from None
        value = self[i]
        del self[i]
        return value

    def __iter__(self):
        return iter(self._core.snapshot())

    def copy(self):
        """A consistent snapshot, as a plain list."""
        return self._core.snapshot()

    def __eq__(self, other):
        if isinstance(other, (SharedList, list)):
            return self.copy() == list(other)
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        return f"multiproc.SharedList({self.copy()!r})"
