#pragma once
// Internal to the Python module (`multiproc._core`): what the bindings of every kind of object share.
//
//   * wait_interruptibly: every call that can block runs with the GIL released; on the main thread
//     it waits in slices and runs Python's signal handlers between them, so Ctrl-C raises
//     KeyboardInterrupt within a slice (50 ms) instead of never.
//   * to_payload / from_payload: the message format shared with C++ (see the rule in
//     multiproc/__init__.py and below).
//   * Named: the create / open / open_or_create forms of every class.
#include <pybind11/pybind11.h>

#include <chrono>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>

#include <multiproc/segment.hpp>

namespace multiproc::python {

namespace py = pybind11;

using Clock = std::chrono::steady_clock;  // the library's own clock for timeouts (detail/deadline.hpp)

// ---- Blocking calls --------------------------------------------------------------------------

// How long a blocked call on the main thread waits before it looks for a pending signal. The
// promise is "Ctrl-C is seen within 0.1 s"; half of that leaves room for the wake-up itself.
// Waking 20 times a second while blocked costs nothing measurable. Other threads never run
// signal handlers (Python runs them on the main thread only), so they wait in one piece.
inline constexpr std::chrono::milliseconds signal_check_interval{50};

// True on the thread that runs Python's signal handlers (tracked across fork, see module.cpp).
bool on_main_thread() noexcept;

// Python's (block, timeout) pair: no deadline (block forever), or a point on Clock. A timeout of
// None means forever; a negative one counts as 0, as in multiprocessing; block=False is "now".
struct Patience {
  std::optional<Clock::time_point> deadline;

  static Patience from(bool block, const std::optional<double>& timeout);
  static Patience from(const std::optional<double>& timeout) { return from(true, timeout); }
};

// Calls `wait(until)` with the GIL released until it returns true (done), for as long as the
// caller's patience lasts; `until` is the end of the current slice. Returns false when the
// deadline passed without success. Between slices, on the main thread, runs the signal handlers:
// an exception from one (KeyboardInterrupt) propagates, with nothing taken or changed by the
// slice that was cut short. `wait` must leave nothing half-done when it returns false.
template <class Wait>
bool wait_interruptibly(const Patience& patience, Wait&& wait) {
  const bool slices = on_main_thread();
  for (;;) {
    Clock::time_point until = patience.deadline.value_or(Clock::time_point::max());
    if (slices) {
      until = std::min(until, Clock::now() + signal_check_interval);
    }
    bool done = false;
    {
      py::gil_scoped_release released;
      done = wait(until);
    }
    if (done) {
      return true;
    }
    if (PyErr_CheckSignals() != 0) {
      throw py::error_already_set();
    }
    if (patience.deadline && Clock::now() >= *patience.deadline) {
      return false;
    }
  }
}

// A std::chrono timeout that ends at `until` (zero if it passed): for calls that take durations.
inline Clock::duration time_left(Clock::time_point until) {
  const auto now = Clock::now();
  return until > now ? until - now : Clock::duration::zero();
}

// ---- Messages --------------------------------------------------------------------------------

// A message is one byte string: exactly what a C++ Queue<std::string> or SharedDict<std::string,
// std::string> holds. The rule (documented for users in multiproc/__init__.py):
//   writing:  bytes (exactly bytes, not a subclass)  -> its bytes (unless they begin with
//                                                        pickle_tag: then pickled, as below)
//             str (exactly str)                      -> its UTF-8
//             anything else                          -> pickle_tag + pickle.dumps(obj, protocol=5)
//   reading:  starts with pickle_tag                 -> pickle.loads(the rest)
//             valid UTF-8 (Python's strict decoder)  -> str
//             otherwise                              -> bytes
// pickle_tag starts with 0xFF, which never occurs in UTF-8, so no str is ever read as a pickle.
// A raw handle (raw=True) skips all of it: it writes bytes (str as UTF-8) and reads bytes.
inline constexpr std::string_view pickle_tag{"\xffpickle", 7};

std::string to_payload(py::handle obj, bool raw);
py::object from_payload(std::string_view payload, bool raw);

// ---- Errors ----------------------------------------------------------------------------------

// Raises the Python class `name` of multiproc.errors with `message` (and `payload`, for
// DecodeError): throws py::error_already_set.
[[noreturn]] void raise(const char* name, const std::string& message);
[[noreturn]] void raise_decode_error(const std::string& message, std::string_view payload);

// ---- Named forms -----------------------------------------------------------------------------

// The second argument of Python's create / open / open_or_create, as the C++ tags.
enum class How { create, open, open_or_create };

// A named object's pickled form: multiproc._reopen(kind, name, extra...), which opens it again by name; anonymous
// objects cannot be pickled (they are shared only with children made by fork).
py::object name_or_none(const std::string& name);
py::tuple reduce_by_name(const std::string& name, const char* kind, py::tuple open_extra = py::tuple());

// ---- The bindings, one function per family ----------------------------------------------------

void bind_errors(py::module_& m);
void bind_queues(py::module_& m);
void bind_sync(py::module_& m);
void bind_cells(py::module_& m);
void bind_containers(py::module_& m);

}  // namespace multiproc::python
