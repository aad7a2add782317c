// multiproc.Queue, JoinableQueue and SimpleQueue: multiproc::Queue<std::string> (and
// JoinableQueue<std::string>) carrying the messages of binding.hpp, with multiprocessing's methods.
// Being Queue<std::string>, a Python queue and a C++ one opened on the same name are one queue.
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <multiproc/codec.hpp>
#include <multiproc/detail/channel/spilled_message.hpp>
#include <multiproc/error.hpp>
#include <multiproc/joinable_queue.hpp>
#include <multiproc/queue.hpp>
#include <multiproc/simple_queue.hpp>

#include "binding.hpp"

namespace multiproc::python {

namespace {

// The deadline-based put and get that Queue keeps for its subclasses: a slice of a wait is one
// call, and a slice that ends empty-handed throws nothing.
template <class Cpp>
class Reachable : public Cpp {
 public:
  using Cpp::Cpp;
  using Cpp::get_until;
  using Cpp::put_encoded_until;
};

// Room for messages when the caller does not say. A named queue with a maxsize gets what a C++
// Queue<std::string>(open_or_create, name, maxsize) makes (256 bytes a message), so that either
// side may be the one that creates it. Otherwise 4 MiB (at least): a pickled object of a few MiB
// fits, and pages of shared memory are only taken as the ring is written through.
constexpr std::size_t roomy_buffer_bytes = std::size_t{4} << 20;
constexpr std::size_t smallest_buffer_bytes = 64;

std::size_t cpp_default_buffer_bytes(long long maxsize) {
  return detail::LockedRecordRing::record_bytes(detail::RecordQueueBackend<std::string>::typical_bytes) *
         static_cast<std::size_t>(maxsize);
}

std::size_t buffer_bytes_for(bool named, long long maxsize, const std::optional<std::size_t>& asked) {
  if (asked) {
    return *asked;
  }
  if (maxsize <= 0) {
    return roomy_buffer_bytes;
  }
  return named ? cpp_default_buffer_bytes(maxsize) : std::max(roomy_buffer_bytes, cpp_default_buffer_bytes(maxsize));
}

template <class Cpp>
class QueueHandle {
 public:
  using Queue = Reachable<Cpp>;

  // maxsize <= 0: no limit but the buffer's (each message takes at least 8 bytes of it).
  static std::size_t capacity_for(long long maxsize, std::size_t buffer_bytes) {
    if (buffer_bytes < smallest_buffer_bytes) {
      throw py::value_error("buffer_bytes must be at least " + std::to_string(smallest_buffer_bytes));
    }
    return maxsize > 0 ? static_cast<std::size_t>(maxsize) : buffer_bytes / 8;
  }

  QueueHandle(long long maxsize, const std::optional<std::size_t>& buffer_bytes, bool raw)
      : QueueHandle(make_anonymous(maxsize, buffer_bytes_for(false, maxsize, buffer_bytes)), raw) {}
  QueueHandle(How how, const std::string& name, long long maxsize, const std::optional<std::size_t>& buffer_bytes,
              bool raw)
      : QueueHandle(open_named(how, name, maxsize, buffer_bytes_for(true, maxsize, buffer_bytes)), raw) {}

  void put(py::handle obj, bool block, const std::optional<double>& timeout) {
    check_usable();
    // Encoded once, into bytes of this call's own, and kept for every slice of the wait: a big
    // message is then written to its own segment once, not once per slice. (Not in the thread's
    // encode buffer, as a C++ put does: a signal handler run between two slices may put too.)
    const std::vector<std::byte> encoded = encode(to_payload(obj, raw_));
    const detail::OutgoingMessage message(encoded);
    if (!wait_interruptibly(Patience::from(block, timeout),
                            [&](Clock::time_point until) { return queue_->put_encoded_until(message, until); })) {
      raise("Full", "");
    }
  }

  py::object get(bool block, const std::optional<double>& timeout) {
    check_usable();
    std::optional<std::string> message;
    if (!wait_interruptibly(Patience::from(block, timeout), [&](Clock::time_point until) {
          message = queue_->get_until(until);
          return message.has_value();
        })) {
      raise("Empty", "");
    }
    return from_payload(*message, raw_);
  }

  [[nodiscard]] std::size_t qsize() const { return queue_->qsize(); }
  [[nodiscard]] bool empty() const { return queue_->empty(); }
  [[nodiscard]] bool full() const { return queue_->full(); }
  [[nodiscard]] std::size_t capacity() const { return queue_->capacity(); }
  [[nodiscard]] const std::string& name() const { return queue_->name(); }
  [[nodiscard]] bool raw() const { return raw_; }
  // multiprocessing's close(): this handle is done; the queue goes on for everyone else.
  void close() { closed_ = true; }
  // For every process: puts raise ShutDown, gets drain what is left, then raise ShutDown (Python
  // 3.13's queue.Queue.shutdown(); C++ Queue::close()).
  void shutdown() { queue_->close(); }
  [[nodiscard]] bool is_shutdown() const { return queue_->closed(); }

  Queue& queue() { return *queue_; }
  void check_usable() const {
    if (closed_) {
      throw py::value_error("the queue handle is closed");
    }
  }

 private:
  QueueHandle(std::unique_ptr<Queue> queue, bool raw) : queue_(std::move(queue)), raw_(raw) {}

  static std::unique_ptr<Queue> make_anonymous(long long maxsize, std::size_t buffer_bytes) {
    return std::make_unique<Queue>(capacity_for(maxsize, buffer_bytes), buffer_bytes);
  }
  static std::unique_ptr<Queue> open_named(How how, const std::string& name, long long maxsize,
                                           std::size_t buffer_bytes) {
    switch (how) {
      case How::create:
        return std::make_unique<Queue>(multiproc::create, name, capacity_for(maxsize, buffer_bytes), buffer_bytes);
      case How::open:
        return std::make_unique<Queue>(multiproc::open, name);
      case How::open_or_create:
        // Opened first: an existing queue is taken whatever its sizes (C++'s open_or_create would
        // insist that they match what this call asks for).
        try {
          return std::make_unique<Queue>(multiproc::open, name);
        } catch (const multiproc::NotFound&) {
          try {
            return open_named(How::create, name, maxsize, buffer_bytes);
          } catch (const multiproc::AlreadyExists&) {
            return std::make_unique<Queue>(multiproc::open, name);  // made by another process meanwhile
          }
        }
    }
    throw std::logic_error("unreachable");
  }

  std::unique_ptr<Queue> queue_;
  bool raw_;
  bool closed_ = false;
};

using PlainHandle = QueueHandle<multiproc::Queue<std::string>>;
using JoinableHandle = QueueHandle<multiproc::JoinableQueue<std::string>>;
// The same queue behind fewer methods; a type of its own, as pybind11 binds each type once.
struct SimpleHandle : PlainHandle {
  using PlainHandle::PlainHandle;
};

// The named constructors and pickling, alike for the three classes. `Handle` is what the Python
// class wraps; `maxsize` says whether its constructors take one (SimpleQueue's do not).
template <class Handle>
void add_named_forms(py::class_<Handle>& cls, const char* kind, bool maxsize) {
  auto named = [](How how) {
    return [how](const std::string& name, long long maxsize, const std::optional<std::size_t>& buffer_bytes, bool raw) {
      return std::make_unique<Handle>(how, name, maxsize, buffer_bytes, raw);
    };
  };
  if (maxsize) {
    cls.def_static("create", named(How::create), py::arg("name"), py::arg("maxsize") = 0, py::kw_only(),
                   py::arg("buffer_bytes") = py::none(), py::arg("raw") = false,
                   "Makes the named queue; AlreadyExists (a FileExistsError) if the name is taken.");
    cls.def_static("open_or_create", named(How::open_or_create), py::arg("name"), py::arg("maxsize") = 0,
                   py::kw_only(), py::arg("buffer_bytes") = py::none(), py::arg("raw") = false,
                   "Opens the named queue, or makes it if absent.");
  } else {
    auto without_maxsize = [named](How how) {
      return [make = named(how)](const std::string& name, const std::optional<std::size_t>& buffer_bytes, bool raw) {
        return make(name, 0, buffer_bytes, raw);
      };
    };
    cls.def_static("create", without_maxsize(How::create), py::arg("name"), py::kw_only(),
                   py::arg("buffer_bytes") = py::none(), py::arg("raw") = false);
    cls.def_static("open_or_create", without_maxsize(How::open_or_create), py::arg("name"), py::kw_only(),
                   py::arg("buffer_bytes") = py::none(), py::arg("raw") = false);
  }
  cls.def_static(
      "open", [](const std::string& name, bool raw) { return std::make_unique<Handle>(How::open, name, 0, std::nullopt, raw); },
      py::arg("name"), py::arg("raw") = false,
      "Opens the named queue (made by Python or by a C++ Queue<std::string>); NotFound if absent.");
  cls.def("__reduce__", [kind](py::handle self) {
    auto& handle = self.cast<Handle&>();
    return reduce_by_name(handle.name(), kind, py::make_tuple(handle.raw()));
  });
  cls.def_property_readonly("name", [](const Handle& h) { return name_or_none(h.name()); },
                            "The name, or None for an anonymous queue.");
  cls.def("close", &Handle::close, "This handle puts and gets no more; the queue goes on for everyone else.");
  cls.def("shutdown", &Handle::shutdown,
          "Shuts the queue down for every process: puts raise ShutDown, gets take what is left, then raise it.");
  cls.def_property_readonly("is_shutdown", &Handle::is_shutdown);
}

template <class Handle>
py::class_<Handle> bind_queue(py::module_& m, const char* kind, const char* doc) {
  py::class_<Handle> cls(m, kind, doc);
  cls.def(py::init<long long, const std::optional<std::size_t>&, bool>(), py::arg("maxsize") = 0, py::kw_only(),
          py::arg("buffer_bytes") = py::none(), py::arg("raw") = false);
  add_named_forms(cls, kind, true);
  cls.def("put", &Handle::put, py::arg("obj"), py::arg("block") = true, py::arg("timeout") = py::none(),
          "Puts obj; waits while full (at most `timeout` seconds, then raises queue.Full).");
  cls.def("get", &Handle::get, py::arg("block") = true, py::arg("timeout") = py::none(),
          "Takes the oldest message; waits while empty (at most `timeout` seconds, then raises queue.Empty).");
  cls.def("put_nowait", [](Handle& h, py::handle obj) { h.put(obj, false, std::nullopt); }, py::arg("obj"));
  cls.def("get_nowait", [](Handle& h) { return h.get(false, std::nullopt); });
  cls.def("qsize", &Handle::qsize);
  cls.def("empty", &Handle::empty);
  cls.def("full", &Handle::full);
  cls.def_property_readonly("maxsize", &Handle::capacity, "How many messages the queue holds at most.");
  // multiprocessing's feeder thread has nothing to match here: a put is in shared memory when it
  // returns. Kept so that code written for multiprocessing.Queue runs unchanged.
  cls.def("join_thread", [](Handle&) {});
  cls.def("cancel_join_thread", [](Handle&) {});
  return cls;
}

}  // namespace

void bind_queues(py::module_& m) {
  bind_queue<PlainHandle>(m, "Queue",
                          "A queue for any number of producer and consumer processes and threads, as "
                          "multiprocessing.Queue; see help(multiproc) for what a message is.");

  auto joinable = bind_queue<JoinableHandle>(m, "JoinableQueue", "A Queue that counts unfinished tasks.");
  joinable.def("task_done", [](JoinableHandle& h) {
    try {
      h.queue().task_done();
    } catch (const multiproc::ValueError&) {
      throw py::value_error("task_done() called too many times");
    }
  });
  joinable.def(
      "join",
      [](JoinableHandle& h, const std::optional<double>& timeout) {
        return wait_interruptibly(Patience::from(timeout),
                                  [&](Clock::time_point until) { return h.queue().join(time_left(until)); });
      },
      py::arg("timeout") = py::none(),
      "Waits until every message put was marked done. (A timeout is multiproc's addition: False if it passed.)");

  py::class_<SimpleHandle> simple(m, "SimpleQueue", "multiprocessing.SimpleQueue: put, get, empty, close.");
  simple.def(py::init([](const std::optional<std::size_t>& buffer_bytes, bool raw) {
               return std::make_unique<SimpleHandle>(0, buffer_bytes, raw);
             }),
             py::kw_only(), py::arg("buffer_bytes") = py::none(), py::arg("raw") = false);
  add_named_forms(simple, "SimpleQueue", false);
  simple.def("put", [](SimpleHandle& h, py::handle obj) { h.put(obj, true, std::nullopt); }, py::arg("obj"));
  simple.def("get", [](SimpleHandle& h) { return h.get(true, std::nullopt); });
  simple.def("empty", &SimpleHandle::empty);
}

}  // namespace multiproc::python
