// The extension module multiproc._core: what the bindings share (see binding.hpp) and the module's
// entry point. The pure-Python package multiproc (lib/python/multiproc/) re-exports it.
#include "binding.hpp"

#include <pthread.h>
#include <pythread.h>

#include <atomic>
#include <cerrno>
#include <stdexcept>
#include <system_error>

#include <multiproc/error.hpp>

namespace multiproc::python {

namespace {

// The thread that runs signal handlers: the one that imported the module (Python imports on the
// main thread in practice), and after a fork the forking thread, which CPython makes the child's
// main thread. Written at import and in the fork child (single-threaded then); read by any thread.
std::atomic<unsigned long> main_thread_ident{0};

void became_main_thread() noexcept {
  // relaxed: the writers (import, fork child) run before any other thread of this process can
  // call into the module.
  main_thread_ident.store(PyThread_get_thread_ident(), std::memory_order_relaxed);
}

// Functions and classes looked up once, at import; never released (they live as long as the
// interpreter, and releasing them at exit would run after it is gone).
struct Globals {
  py::object pickle_dumps;
  py::object pickle_loads;
  py::object errors;  // the module multiproc.errors
};
Globals* globals = nullptr;

}  // namespace

bool on_main_thread() noexcept {
  return PyThread_get_thread_ident() == main_thread_ident.load(std::memory_order_relaxed);
}

Patience Patience::from(bool block, const std::optional<double>& timeout) {
  if (!block) {
    return {Clock::time_point::min()};  // one try, no wait (the C++ try_ forms use the same)
  }
  if (!timeout) {
    return {};
  }
  if (std::isnan(*timeout)) {
    throw py::value_error("timeout must be a number, not NaN");
  }
  const double seconds = std::max(*timeout, 0.0);
  // Longer than the clock can count (some 290 years): the same as no timeout.
  if (seconds >= std::chrono::duration<double>(Clock::time_point::max() - Clock::now()).count()) {
    return {};
  }
  return {Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds))};
}

std::string to_payload(py::handle obj, bool raw) {
  if (PyBytes_CheckExact(obj.ptr())) {
    std::string bytes{PyBytes_AS_STRING(obj.ptr()), static_cast<std::size_t>(PyBytes_GET_SIZE(obj.ptr()))};
    // Bytes that begin with the tag would be read as a pickle: they travel pickled themselves.
    if (raw || !bytes.starts_with(pickle_tag)) {
      return bytes;
    }
  }
  if (PyUnicode_CheckExact(obj.ptr())) {
    Py_ssize_t size = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(obj.ptr(), &size);
    if (utf8 != nullptr) {
      return {utf8, static_cast<std::size_t>(size)};
    }
    // A str with lone surrogates has no UTF-8: pickled (below), it still comes back equal.
    if (raw) {
      throw py::error_already_set();
    }
    PyErr_Clear();
  }
  if (raw) {
    throw py::type_error(std::string("a raw handle carries bytes and str only, not ") + Py_TYPE(obj.ptr())->tp_name);
  }
  PyObject* args[] = {obj.ptr(), py::int_(5).release().ptr()};
  const py::object protocol = py::reinterpret_steal<py::object>(args[1]);
  const auto pickled = py::reinterpret_steal<py::object>(PyObject_Vectorcall(globals->pickle_dumps.ptr(), args, 2, nullptr));
  if (!pickled) {
    throw py::error_already_set();
  }
  std::string payload;
  payload.reserve(pickle_tag.size() + static_cast<std::size_t>(PyBytes_GET_SIZE(pickled.ptr())));
  payload.append(pickle_tag);
  payload.append(PyBytes_AS_STRING(pickled.ptr()), static_cast<std::size_t>(PyBytes_GET_SIZE(pickled.ptr())));
  return payload;
}

py::object from_payload(std::string_view payload, bool raw) {
  const auto size = static_cast<Py_ssize_t>(payload.size());
  if (raw) {
    return py::bytes(payload.data(), payload.size());
  }
  if (payload.starts_with(pickle_tag)) {
    const std::string_view pickled = payload.substr(pickle_tag.size());
    // A view, not a copy: pickle.loads reads the bytes before this function returns.
    const auto view = py::reinterpret_steal<py::object>(PyMemoryView_FromMemory(
        const_cast<char*>(pickled.data()), static_cast<Py_ssize_t>(pickled.size()), PyBUF_READ));
    if (!view) {
      throw py::error_already_set();
    }
    PyObject* args[] = {view.ptr()};
    auto object = py::reinterpret_steal<py::object>(PyObject_Vectorcall(globals->pickle_loads.ptr(), args, 1, nullptr));
    if (!object) {
      // The message was taken: hand its bytes to the caller with the error, so nothing is lost.
      const py::error_already_set cause;
      raise_decode_error(std::string("a message tagged as a pickle does not unpickle: ") + cause.what(), payload);
    }
    return object;
  }
  PyObject* text = PyUnicode_DecodeUTF8(payload.data(), size, nullptr);
  if (text != nullptr) {
    return py::reinterpret_steal<py::object>(text);
  }
  if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
    throw py::error_already_set();  // MemoryError and the like
  }
  PyErr_Clear();
  return py::bytes(payload.data(), payload.size());
}

void raise(const char* name, const std::string& message) {
  const py::object type = globals->errors.attr(name);
  PyErr_SetString(type.ptr(), message.c_str());
  throw py::error_already_set();
}

void raise_decode_error(const std::string& message, std::string_view payload) {
  const py::object error = globals->errors.attr("DecodeError")(message, py::bytes(payload.data(), payload.size()));
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
  throw py::error_already_set();
}

py::object name_or_none(const std::string& name) {
  return name.empty() ? py::object(py::none()) : py::object(py::str(name));
}

py::tuple reduce_by_name(const std::string& name, const char* kind, py::tuple open_extra) {
  if (name.empty()) {
    throw py::type_error(std::string("an anonymous multiproc.") + kind +
                         " is shared only with children made by fork (multiprocessing's 'fork' start method); "
                         "to send it elsewhere, make it by name: multiproc." + kind + ".create(name, ...)");
  }
  py::list args;
  args.append(kind);
  args.append(name);
  for (const py::handle extra : open_extra) {
    args.append(extra);
  }
  return py::make_tuple(py::module_::import("multiproc").attr("_reopen"), py::tuple(args));
}

void bind_errors(py::module_& m) {
  (void)m;
  // The C++ errors as Python's (the table is in multiproc/errors.py). Sub-classes first.
  py::register_exception_translator([](std::exception_ptr thrown) {
    auto set = [](const char* name, const std::exception& e) {
      const py::object type = globals->errors.attr(name);
      PyErr_SetString(type.ptr(), e.what());
    };
    try {
      std::rethrow_exception(thrown);
    } catch (const multiproc::Empty& e) {
      set("Empty", e);
    } catch (const multiproc::Full& e) {
      set("Full", e);
    } catch (const multiproc::Closed& e) {
      set("ShutDown", e);
    } catch (const multiproc::NotFound& e) {
      set("NotFound", e);
    } catch (const multiproc::AlreadyExists& e) {
      set("AlreadyExists", e);
    } catch (const multiproc::InvalidName& e) {
      set("InvalidName", e);
    } catch (const multiproc::LayoutMismatch& e) {
      set("LayoutMismatch", e);
    } catch (const multiproc::NotOwner& e) {
      set("NotOwner", e);
    } catch (const multiproc::TooManyReleases& e) {
      set("TooManyReleases", e);
    } catch (const multiproc::BrokenBarrier& e) {
      set("BrokenBarrierError", e);
    } catch (const multiproc::MessageTooLarge& e) {
      set("MessageTooLarge", e);
    } catch (const multiproc::DecodeError& e) {
      set("DecodeError", e);
    } catch (const multiproc::Timeout& e) {
      PyErr_SetString(PyExc_TimeoutError, e.what());
    } catch (const multiproc::ValueError& e) {  // after TooManyReleases, one of its kind
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const multiproc::KeyError& e) {
      PyErr_SetString(PyExc_KeyError, e.what());
    } catch (const multiproc::IndexError& e) {
      PyErr_SetString(PyExc_IndexError, e.what());
    } catch (const multiproc::Error& e) {
      set("Error", e);
    } catch (const std::system_error& e) {
      // OSError(errno, text) becomes the matching subclass (FileNotFoundError for ENOENT...).
      const py::tuple args = py::make_tuple(e.code().value(), e.what());
      PyErr_SetObject(PyExc_OSError, args.ptr());
    }
  });
}

}  // namespace multiproc::python

PYBIND11_MODULE(_core, m) {
  namespace mp = multiproc::python;
  namespace py = pybind11;
  m.doc() = "The compiled half of the multiproc package; import multiproc, not this.";
  mp::globals = new mp::Globals{py::module_::import("pickle").attr("dumps"), py::module_::import("pickle").attr("loads"),
                                py::module_::import("multiproc.errors")};
  // Signal handlers run on threading's main thread, whichever thread imports the module.
  mp::main_thread_ident.store(
      py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>(),
      std::memory_order_relaxed);
  ::pthread_atfork(nullptr, nullptr, [] { mp::became_main_thread(); });

  mp::bind_errors(m);
  m.def("unlink", [](const std::string& name) { return multiproc::unlink(name); }, py::arg("name"),
        "Removes a named object (processes that opened it keep it until they let go). False if it did not exist.");
  m.attr("PICKLE_TAG") = py::bytes(mp::pickle_tag.data(), mp::pickle_tag.size());
  mp::bind_queues(m);
  mp::bind_sync(m);
  mp::bind_cells(m);
  mp::bind_containers(m);
}
