// multiproc.Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition and Barrier: the C++ objects
// of the same names, with multiprocessing's signatures and `with` support. Every wait releases
// the GIL and, on the main thread, gives way to Ctrl-C (binding.hpp).
#include <pybind11/stl.h>

#include <cerrno>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include <multiproc/barrier.hpp>
#include <multiproc/error.hpp>
#include <multiproc/condition.hpp>
#include <multiproc/event.hpp>
#include <multiproc/lock.hpp>
#include <multiproc/rlock.hpp>
#include <multiproc/semaphore.hpp>

#include "binding.hpp"

namespace multiproc::python {

namespace {

// Python's acquire(block=True, timeout=None) on anything with try_acquire() and acquire(duration).
template <class Acquirable>
bool acquire(Acquirable& target, bool block, const std::optional<double>& timeout) {
  if (!block) {
    py::gil_scoped_release released;  // a Lock's try takes a pthread mutex, which may be contended
    return target.try_acquire();      // false for the holder itself, as in Python
  }
  try {
    return wait_interruptibly(Patience::from(timeout),
                              [&](Clock::time_point until) { return target.acquire(time_left(until)); });
  } catch (const multiproc::ValueError&) {
    // A Lock's holder asking for it again. Python answers a timed acquire with "not acquired"; an
    // untimed one would deadlock there, and raises (ValueError) here instead.
    if (timeout) {
      return false;
    }
    throw;
  }
}

// `cls.create(name, args...)`, `cls.open(name)`, `cls.open_or_create(name, args...)` and pickling by
// name, for a class whose C++ constructors are (create|open|open_or_create, name, Args...).
template <class T, class... Args, class Class, class... Extra>
void add_named_forms(Class& cls, const char* kind, const Extra&... args_doc) {
  cls.def_static(
      "create", [](const std::string& name, Args... args) { return std::make_unique<T>(multiproc::create, name, args...); },
      py::arg("name"), args_doc...);
  cls.def_static(
      "open_or_create",
      [](const std::string& name, Args... args) { return std::make_unique<T>(multiproc::open_or_create, name, args...); },
      py::arg("name"), args_doc...);
  cls.def_static("open", [](const std::string& name) { return std::make_unique<T>(multiproc::open, name); },
                 py::arg("name"));
  cls.def("__reduce__", [kind](py::handle self) { return reduce_by_name(self.cast<T&>().name(), kind); });
  cls.def_property_readonly("name", [](const T& self) { return name_or_none(self.name()); });
}

// acquire / release / with, alike for locks and semaphores.
template <class T, class Class>
void add_acquire_release(Class& cls) {
  cls.def("acquire", &acquire<T>, py::arg("block") = true, py::arg("timeout") = py::none(),
          "True once acquired; False if `block` is False or `timeout` seconds passed first.");
  cls.def("release", [](T& self) { self.release(); });
  cls.def("__enter__", [](T& self) { return acquire(self, true, std::nullopt); });
  cls.def("__exit__", [](T& self, const py::args&) { self.release(); });
}

template <class Mutex>
void bind_mutex(py::module_& m, const char* kind, const char* doc) {
  py::class_<Mutex> cls(m, kind, doc);
  cls.def(py::init([] { return std::make_unique<Mutex>(); }));
  add_named_forms<Mutex>(cls, kind);
  add_acquire_release<Mutex>(cls);
  cls.def("recovered", [](const Mutex& self) { return self.recovered(); },
          "True when the current acquisition took the lock over from a holder that died with it.");
}

template <class Sem, class... Base>
void bind_semaphore(py::module_& m, const char* kind, const char* doc) {
  py::class_<Sem, Base...> cls(m, kind, doc);
  cls.def(py::init([](int value) { return std::make_unique<Sem>(value); }), py::arg("value") = 1);
  add_named_forms<Sem, int>(cls, kind, py::arg("value") = 1);
  cls.def("acquire", &acquire<Sem>, py::arg("block") = true, py::arg("timeout") = py::none());
  cls.def("release", [](Sem& self, int n) { self.release(n); }, py::arg("n") = 1);
  cls.def("__enter__", [](Sem& self) { return acquire(self, true, std::nullopt); });
  cls.def("__exit__", [](Sem& self, const py::args&) { self.release(); });
  cls.def("get_value", &Sem::get_value);
}

// Barrier with Python's default timeout, kept per handle as Python keeps it per object.
struct BarrierHandle {
  multiproc::Barrier barrier;
  std::optional<double> default_timeout;

  [[nodiscard]] const std::string& name() const { return barrier.name(); }

  std::size_t wait(std::optional<double> timeout) {
    const Patience patience = Patience::from(timeout ? timeout : default_timeout);
    auto wait_in_cpp = [this, patience] {
      return patience.deadline ? barrier.wait(time_left(*patience.deadline)) : barrier.wait();
    };
    if (!on_main_thread()) {
      py::gil_scoped_release released;
      return wait_in_cpp();
    }
    // A barrier wait cannot be cut into slices (a wait that times out breaks the barrier), so on
    // the main thread it runs on a helper thread while this one watches for signals. On Ctrl-C
    // the barrier is broken, as Python's own Barrier does when a wait is interrupted; that ends
    // the helper's wait too.
    auto waiting = std::async(std::launch::async, wait_in_cpp);
    try {
      (void)wait_interruptibly(Patience{}, [&](Clock::time_point until) {
        return waiting.wait_until(until) == std::future_status::ready;
      });
    } catch (...) {
      barrier.abort();
      py::gil_scoped_release released;
      waiting.wait();
      throw;
    }
    return waiting.get();
  }
};

void bind_barrier(py::module_& m) {
  py::class_<BarrierHandle> cls(m, "Barrier", "`parties` processes or threads wait until all have arrived.");
  auto make = [](auto... where) {
    return [where...](int parties, const py::object& action, std::optional<double> timeout) {
      if (!action.is_none()) {
        // C++'s Barrier releases every party at once, so there is no moment at which one party
        // could run the action while the others still wait, as Python's does.
        throw py::type_error("multiproc.Barrier does not run an action: call it after wait() in the party that got index 0");
      }
      return std::unique_ptr<BarrierHandle>(new BarrierHandle{multiproc::Barrier(where..., parties), timeout});
    };
  };
  cls.def(py::init(make()), py::arg("parties"), py::arg("action") = py::none(), py::arg("timeout") = py::none());
  cls.def_static("create", [make](const std::string& name, int parties, const py::object& action, std::optional<double> timeout) {
    return make(multiproc::create, std::string_view(name))(parties, action, timeout);
  }, py::arg("name"), py::arg("parties"), py::arg("action") = py::none(), py::arg("timeout") = py::none());
  cls.def_static("open_or_create", [make](const std::string& name, int parties, const py::object& action, std::optional<double> timeout) {
    return make(multiproc::open_or_create, std::string_view(name))(parties, action, timeout);
  }, py::arg("name"), py::arg("parties"), py::arg("action") = py::none(), py::arg("timeout") = py::none());
  cls.def_static("open", [](const std::string& name, std::optional<double> timeout) {
    return std::unique_ptr<BarrierHandle>(new BarrierHandle{multiproc::Barrier(multiproc::open, name), timeout});
  }, py::arg("name"), py::arg("timeout") = py::none());
  cls.def("__reduce__", [](py::handle self) {
    const auto& h = self.cast<BarrierHandle&>();
    return reduce_by_name(h.name(), "Barrier", py::make_tuple(h.default_timeout));
  });
  cls.def_property_readonly("name", [](const BarrierHandle& h) { return name_or_none(h.name()); });
  cls.def("wait", &BarrierHandle::wait, py::arg("timeout") = py::none(),
          "Waits until all parties have arrived; returns this party's index (0..parties-1). Raises "
          "threading.BrokenBarrierError if the barrier is or becomes broken (a timeout breaks it).");
  cls.def("abort", [](BarrierHandle& h) { h.barrier.abort(); });
  cls.def("reset", [](BarrierHandle& h) { h.barrier.reset(); });
  cls.def_property_readonly("broken", [](const BarrierHandle& h) { return h.barrier.broken(); });
  cls.def_property_readonly("parties", [](const BarrierHandle& h) { return h.barrier.parties(); });
  cls.def_property_readonly("n_waiting", [](const BarrierHandle& h) { return h.barrier.n_waiting(); });
}

void bind_event(py::module_& m) {
  py::class_<multiproc::Event> cls(m, "Event", "A flag that processes and threads wait on.");
  cls.def(py::init([] { return std::make_unique<multiproc::Event>(); }));
  add_named_forms<multiproc::Event>(cls, "Event");
  cls.def("set", &multiproc::Event::set);
  cls.def("clear", &multiproc::Event::clear);
  cls.def("is_set", &multiproc::Event::is_set);
  cls.def(
      "wait",
      [](multiproc::Event& self, std::optional<double> timeout) {
        return wait_interruptibly(Patience::from(timeout),
                                  [&](Clock::time_point until) { return self.wait(time_left(until)); });
      },
      py::arg("timeout") = py::none(), "True once the event is set; False if `timeout` seconds passed first.");
}

void bind_condition(py::module_& m) {
  using multiproc::Condition;
  py::class_<Condition> cls(m, "Condition",
                            "Wait until notified. Owns a Lock, or borrows the multiproc.Lock given (an RLock "
                            "cannot be borrowed).");
  auto with_lock = [](auto&&... where) {
    return [where...](const py::object& lock) {
      if (lock.is_none()) {
        return std::make_unique<Condition>(where...);
      }
      if (!py::isinstance<multiproc::Lock>(lock)) {
        throw py::type_error("multiproc.Condition borrows a multiproc.Lock only");
      }
      return std::make_unique<Condition>(where..., lock.cast<multiproc::Lock&>());
    };
  };
  // keep_alive: a borrowed Lock lives at least as long as the Condition.
  cls.def(py::init(with_lock()), py::arg("lock") = py::none(), py::keep_alive<1, 2>());
  cls.def_static("create", [with_lock](const std::string& name, const py::object& lock) {
    return with_lock(multiproc::create, std::string_view(name))(lock);
  }, py::arg("name"), py::arg("lock") = py::none(), py::keep_alive<0, 2>());
  cls.def_static("open", [with_lock](const std::string& name, const py::object& lock) {
    return with_lock(multiproc::open, std::string_view(name))(lock);
  }, py::arg("name"), py::arg("lock") = py::none(), py::keep_alive<0, 2>());
  cls.def_static("open_or_create", [with_lock](const std::string& name, const py::object& lock) {
    return with_lock(multiproc::open_or_create, std::string_view(name))(lock);
  }, py::arg("name"), py::arg("lock") = py::none(), py::keep_alive<0, 2>());
  cls.def("__reduce__", [](py::handle self) { return reduce_by_name(self.cast<Condition&>().name(), "Condition"); });
  cls.def_property_readonly("name", [](const Condition& self) { return name_or_none(self.name()); });
  cls.def("acquire", [](Condition& self, bool block, std::optional<double> timeout) {
    return acquire(self.get_lock(), block, timeout);
  }, py::arg("block") = true, py::arg("timeout") = py::none());
  cls.def("release", &Condition::release);
  cls.def("__enter__", [](Condition& self) { return acquire(self.get_lock(), true, std::nullopt); });
  cls.def("__exit__", [](Condition& self, const py::args&) { self.release(); });
  auto wait = [](Condition& self, std::optional<double> timeout) {
    // Between slices this thread holds the lock again, so a notifier (who holds it too) cannot
    // notify in the gap: no notification is missed.
    return wait_interruptibly(Patience::from(timeout),
                              [&](Clock::time_point until) { return self.wait(time_left(until)); });
  };
  cls.def("wait", wait, py::arg("timeout") = py::none(),
          "Releases the lock, waits for a notification, takes the lock again. False if `timeout` passed.");
  cls.def(
      "wait_for",
      [wait](Condition& self, const py::object& predicate, std::optional<double> timeout) {
        const Patience patience = Patience::from(timeout);
        py::object result = predicate();
        while (!PyObject_IsTrue(result.ptr())) {
          std::optional<double> left;
          if (patience.deadline) {
            left = std::chrono::duration<double>(time_left(*patience.deadline)).count();
            if (*left <= 0) {
              break;
            }
          }
          (void)wait(self, left);
          result = predicate();
        }
        return result;
      },
      py::arg("predicate"), py::arg("timeout") = py::none(),
      "Waits until predicate() is true (called with the lock held); returns its last value.");
  cls.def("notify", &Condition::notify, py::arg("n") = 1);
  cls.def("notify_all", &Condition::notify_all);
}

}  // namespace

void bind_sync(py::module_& m) {
  bind_mutex<multiproc::Lock>(m, "Lock",
                              "A lock shared by processes and threads; if its holder dies, the next acquire "
                              "takes it over (recovered() says so).");
  bind_mutex<multiproc::RLock>(m, "RLock", "A re-entrant Lock.");
  bind_semaphore<multiproc::Semaphore>(m, "Semaphore", "A counter that acquire takes from and release adds to.");
  bind_semaphore<multiproc::BoundedSemaphore, multiproc::Semaphore>(m, "BoundedSemaphore",
                                              "A Semaphore that may not be released above its start value.");
  bind_event(m);
  bind_condition(m);
  bind_barrier(m);
}

}  // namespace multiproc::python
