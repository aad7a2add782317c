#pragma once
// The error policy, followed by every call of the library:
//   * every error multiproc raises on purpose is a multiproc::Error (a std::runtime_error), of the
//     class below that names what went wrong; where Python's multiprocessing raises a built-in
//     exception, the class has its name: ValueError, KeyError, IndexError;
//   * a failure of the operating system itself (ENOMEM, EACCES, EMFILE, ...) that the library
//     cannot turn into one of those is a std::system_error carrying the errno;
//   * nothing else escapes: exceptions of the libraries underneath (Boost.Interprocess, cereal)
//     are translated into one of the two;
//   * an exception a user's own code throws (a task, a callback, a Process target) is passed on
//     as it is, or as RemoteError when it was thrown in another process.
// Messages name the object (its class and, for a named object, its name), what was asked, and why
// it could not be done.
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <multiproc/export.hpp>

namespace multiproc {

class MULTIPROC_API Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  ~Error() override;
};

// An argument outside what the call accepts (a count below 1, a mode outside 0777...), or a call
// that the object's state does not allow (joining a Process never started, task_done() once too
// often, acquiring a Lock the calling thread holds): Python's ValueError (and its AssertionError).
class MULTIPROC_API ValueError : public Error { public: using Error::Error; ~ValueError() override; };
// A key a SharedDict does not hold (at, pop without a default): Python's KeyError.
class MULTIPROC_API KeyError : public Error { public: using Error::Error; ~KeyError() override; };
// An index outside an Array or SharedList, or pop from an empty SharedList: Python's IndexError.
class MULTIPROC_API IndexError : public Error { public: using Error::Error; ~IndexError() override; };

// A blocking call ran out of time (Pool results, futures).
class MULTIPROC_API Timeout : public Error { public: using Error::Error; ~Timeout() override; };
// get_nowait() or a timed get() found nothing to take.
class MULTIPROC_API Empty : public Error { public: using Error::Error; ~Empty() override; };
// put_nowait() or a timed put() found no room.
class MULTIPROC_API Full : public Error { public: using Error::Error; ~Full() override; };
// The queue or pipe was closed, or its peer is gone, and nothing is left to read.
class MULTIPROC_API Closed : public Error { public: using Error::Error; ~Closed() override; };
// A named object exists but holds another type, another layout, or is not a multiproc object.
class MULTIPROC_API LayoutMismatch : public Error { public: using Error::Error; ~LayoutMismatch() override; };
// open of a name that does not exist.
class MULTIPROC_API NotFound : public Error { public: using Error::Error; ~NotFound() override; };
// create of a name that already exists.
class MULTIPROC_API AlreadyExists : public Error { public: using Error::Error; ~AlreadyExists() override; };
// A name that is empty, too long, or has characters other than [A-Za-z0-9._-].
class MULTIPROC_API InvalidName : public Error { public: using Error::Error; ~InvalidName() override; };
// A lock released by a thread that does not hold it (Python raises RuntimeError here).
class MULTIPROC_API NotOwner : public Error { public: using Error::Error; ~NotOwner() override; };
// A BoundedSemaphore released more times than it was acquired (Python raises ValueError).
class MULTIPROC_API TooManyReleases : public ValueError { public: using ValueError::ValueError; ~TooManyReleases() override; };
// A Barrier that was aborted, reset under its waiters, or broken by a wait that timed out.
class MULTIPROC_API BrokenBarrier : public Error { public: using Error::Error; ~BrokenBarrier() override; };
// A message bigger than the whole queue could ever hold: refused, never truncated.
class MULTIPROC_API MessageTooLarge : public Error { public: using Error::Error; ~MessageTooLarge() override; };
// Bytes that do not decode to the expected message type (truncated, corrupt, or another type).
class MULTIPROC_API DecodeError : public Error { public: using Error::Error; ~DecodeError() override; };
// A pool worker died while it held a task.
class MULTIPROC_API WorkerLost : public Error { public: using Error::Error; ~WorkerLost() override; };
// A Future whose task was cancelled before it started (Python's CancelledError).
class MULTIPROC_API Cancelled : public Error { public: using Error::Error; ~Cancelled() override; };
// A pool that can no longer run tasks (its initializer failed, or it was terminated).
class MULTIPROC_API BrokenPool : public Error { public: using Error::Error; ~BrokenPool() override; };

// Pipe's recv_bytes_into() given a buffer too small for the message (Python's
// multiprocessing.BufferTooShort, whose args carry the message): the message was taken from the
// pipe and travels here, whole.
class MULTIPROC_API BufferTooShort : public Error {
 public:
  BufferTooShort(const std::string& what, std::vector<std::byte> message);
  ~BufferTooShort() override;
  [[nodiscard]] const std::vector<std::byte>& message() const noexcept { return *message_; }

 private:
  std::shared_ptr<const std::vector<std::byte>> message_;  // shared: copying an exception never throws
};

// An exception raised in another process. what() reads "<type>: <message>".
class MULTIPROC_API RemoteError : public Error {
 public:
  RemoteError(std::string type_name, std::string message);
  ~RemoteError() override;
  [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }

 private:
  std::string type_name_;
  std::string message_;
};

}  // namespace multiproc
