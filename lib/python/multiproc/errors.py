"""The exceptions of multiproc, and how the C++ library's errors appear in Python.

Where Python's multiprocessing raises a standard exception, multiproc raises that same one; its
own errors also derive from the built-in exception a Python programmer would catch:

=====================  ==========================================================
C++ (multiproc::)      Python
=====================  ==========================================================
Empty                  queue.Empty
Full                   queue.Full (also: a SharedDict/SharedList out of room)
Closed                 multiproc.ShutDown (queue.ShutDown on Python >= 3.13)
BrokenBarrier          threading.BrokenBarrierError
NotFound               multiproc.NotFound       (a FileNotFoundError)
AlreadyExists          multiproc.AlreadyExists  (a FileExistsError)
InvalidName            multiproc.InvalidName    (a ValueError)
LayoutMismatch         multiproc.LayoutMismatch (a TypeError: the name holds another type)
NotOwner               multiproc.NotOwner       (a RuntimeError, as threading's release)
TooManyReleases        multiproc.TooManyReleases (a ValueError, as multiprocessing's)
MessageTooLarge        multiproc.MessageTooLarge (a ValueError)
DecodeError            multiproc.DecodeError    (a ValueError; .payload holds the bytes)
Timeout                TimeoutError
ValueError             ValueError (e.g. a Lock acquired again by its holder, which would
                       deadlock in Python)
KeyError, IndexError   KeyError, IndexError
std::system_error      OSError with the errno
any other Error        multiproc.Error
=====================  ==========================================================

Every class below except the standard ones derives from multiproc.Error.
"""
import queue
import threading

Empty = queue.Empty
Full = queue.Full
BrokenBarrierError = threading.BrokenBarrierError


class Error(Exception):
    """Base of multiproc's own exceptions."""


class NotFound(Error, FileNotFoundError):
    """open() of a name that does not exist."""


class AlreadyExists(Error, FileExistsError):
    """create() of a name that already exists."""


class InvalidName(Error, ValueError):
    """A name that is empty, too long, or has characters other than [A-Za-z0-9._-]."""


class LayoutMismatch(Error, TypeError):
    """The name holds another kind of object, another type, or is not a multiproc object."""


class NotOwner(Error, RuntimeError):
    """A lock released by a thread that does not hold it."""


class TooManyReleases(Error, ValueError):
    """A BoundedSemaphore released above its start value."""


class MessageTooLarge(Error, ValueError):
    """A message bigger than the queue's whole buffer (see buffer_bytes)."""


class DecodeError(Error, ValueError):
    """A message that cannot be read back; it was taken, and its bytes are in .payload."""

    @property
    def payload(self):
        return self.args[1] if len(self.args) > 1 else None


if hasattr(queue, "ShutDown"):  # Python >= 3.13
    class ShutDown(Error, queue.ShutDown):
        """The queue was shut down (Queue.shutdown(), or C++ Queue::close())."""
else:
    class ShutDown(Error):
        """The queue was shut down (Queue.shutdown(), or C++ Queue::close())."""
