#pragma once
// Internal (lib/python/src/cells.cpp, value.cpp, array.cpp): what multiproc.Value and
// multiproc.Array share: the typecodes of multiprocessing.sharedctypes as C++ types, elements
// converted to and from Python and read or written whole, and the handle that holds a C++
// BasicValue or BasicArray of the locked or the raw kind.
#include <atomic>
#include <climits>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include <multiproc/lock.hpp>
#include <multiproc/segment.hpp>

#include "binding.hpp"

namespace multiproc::python {

// The typecodes of multiprocessing.sharedctypes, as C++ types.
template <class F>
decltype(auto) with_type(char typecode, F&& f) {
  switch (typecode) {
    case 'c': return f(std::type_identity<char>{});
    case 'u': return f(std::type_identity<wchar_t>{});
    case 'b': return f(std::type_identity<signed char>{});
    case 'B': return f(std::type_identity<unsigned char>{});
    case 'h': return f(std::type_identity<short>{});
    case 'H': return f(std::type_identity<unsigned short>{});
    case 'i': return f(std::type_identity<int>{});
    case 'I': return f(std::type_identity<unsigned int>{});
    case 'l': return f(std::type_identity<long>{});
    case 'L': return f(std::type_identity<unsigned long>{});
    case 'q': return f(std::type_identity<long long>{});
    case 'Q': return f(std::type_identity<unsigned long long>{});
    case 'f': return f(std::type_identity<float>{});
    case 'd': return f(std::type_identity<double>{});
    default: break;
  }
  throw py::value_error(std::string("unknown typecode '") + typecode + "' (use one of c u b B h H i I l L q Q f d)");
}

// A typecode ('i') or a ctypes type (ctypes.c_int, whose _type_ is 'i').
char typecode_of(py::handle typecode_or_type);

// The typecode and lock of an existing named Value or Array, from its header.
std::pair<char, bool> stored_layout(const std::string& name, ObjectKind locked, ObjectKind unlocked);

template <class T>
T from_python(py::handle obj) {
  if constexpr (std::is_same_v<T, char>) {
    if (py::isinstance<py::bytes>(obj) && py::len(obj) == 1) {
      return PyBytes_AS_STRING(obj.ptr())[0];
    }
    throw py::type_error("a 'c' element is one byte, such as b'x'");
  } else if constexpr (std::is_same_v<T, wchar_t>) {
    if (py::isinstance<py::str>(obj) && py::len(obj) == 1) {
      return static_cast<wchar_t>(PyUnicode_ReadChar(obj.ptr(), 0));
    }
    throw py::type_error("a 'u' element is one character, such as 'x'");
  } else if constexpr (std::is_floating_point_v<T>) {
    const double value = PyFloat_AsDouble(obj.ptr());
    if (value == -1.0 && PyErr_Occurred() != nullptr) {
      throw py::error_already_set();
    }
    return static_cast<T>(value);
  } else {
    // ctypes would wrap an out-of-range int silently; a shared counter that wraps is a bug, so here
    // it is an OverflowError and nothing is stored.
    const py::object index = py::reinterpret_steal<py::object>(PyNumber_Index(obj.ptr()));
    if (!index) {
      throw py::error_already_set();
    }
    int overflow = 0;
    const long long value = PyLong_AsLongLongAndOverflow(index.ptr(), &overflow);
    if (value == -1 && PyErr_Occurred() != nullptr) {
      throw py::error_already_set();
    }
    if constexpr (std::is_same_v<T, unsigned long long> || std::is_same_v<T, unsigned long>) {
      if (overflow > 0) {
        const unsigned long long big = PyLong_AsUnsignedLongLong(index.ptr());
        if (PyErr_Occurred() != nullptr) {
          throw py::error_already_set();
        }
        return static_cast<T>(big);
      }
    }
    if (overflow != 0 || value < static_cast<long long>(std::numeric_limits<T>::min()) ||
        (value > 0 && static_cast<unsigned long long>(value) > std::numeric_limits<T>::max())) {
      throw py::value_error("multiproc: " + py::repr(obj).cast<std::string>() + " does not fit the element type");
    }
    return static_cast<T>(value);
  }
}

template <class T>
py::object to_python(T value) {
  if constexpr (std::is_same_v<T, char>) {
    return py::bytes(&value, 1);
  } else if constexpr (std::is_same_v<T, wchar_t>) {
    return py::reinterpret_steal<py::object>(PyUnicode_FromOrdinal(static_cast<int>(value)));
  } else {
    return py::cast(value);
  }
}

// One element, read or written whole. acquire/release: a value stored by one process publishes
// what that process wrote before it (as the lock did in Python), to the process that reads it.
template <class T>
T load_element(T& element) {
  return std::atomic_ref<T>(element).load(std::memory_order_acquire);
}
template <class T>
void store_element(T& element, T value) {
  std::atomic_ref<T>(element).store(value, std::memory_order_release);
}

// What a Python Value and Array are alike: a typecode, a name, and a lock unless raw.
class AnyCells {
 public:
  virtual ~AnyCells() = default;
  [[nodiscard]] virtual multiproc::Lock* lock() = 0;  // null for a RawValue or RawArray
  [[nodiscard]] virtual const std::string& name() const = 0;
  [[nodiscard]] virtual char typecode() const = 0;
};

// `get_lock()`: the handle's Lock, kept alive by the Python object `self`; AttributeError if raw.
py::object lock_of(py::object self, multiproc::Lock* lock, const char* raw_kind);

// The part of ValueOf and ArrayOf that does not depend on which they are: the C++ object `Cells`
// (a BasicValue or BasicArray, with a lock if `Locked`) and the typecode it was made for.
template <class AnyKind, class Cells, bool Locked>
class HeldCells : public AnyKind {
 public:
  using Any = AnyKind;

  template <class... Where>
  explicit HeldCells(char typecode, Where&&... where) : cells_(std::forward<Where>(where)...), typecode_(typecode) {}
  multiproc::Lock* lock() override {
    if constexpr (Locked) {
      return &cells_.get_lock();
    } else {
      return nullptr;
    }
  }
  [[nodiscard]] const std::string& name() const override { return cells_.name(); }
  [[nodiscard]] char typecode() const override { return typecode_; }

 protected:
  Cells cells_;

 private:
  char typecode_;
};

// A new `Of<T, true>` (with a lock) or `Of<T, false>` (raw), as `locked` says.
template <template <class, bool> class Of, class T, class... Args>
std::unique_ptr<typename Of<T, true>::Any> make_cells(bool locked, char typecode, const Args&... args) {
  if (locked) {
    return std::make_unique<Of<T, true>>(typecode, args...);
  }
  return std::make_unique<Of<T, false>>(typecode, args...);
}

// Opens the named Value or Array `name` as an `Of` of the type and lock its header records.
template <template <class, bool> class Of>
auto open_cells(const std::string& name, ObjectKind locked_kind, ObjectKind raw_kind) {
  const auto [typecode, locked] = stored_layout(name, locked_kind, raw_kind);
  return with_type(typecode, [&, typecode = typecode, locked = locked](auto type) {
    using T = typename std::remove_cvref_t<decltype(type)>::type;
    return make_cells<Of, T>(locked, typecode, multiproc::open, name);
  });
}

void bind_value(py::module_& m);
void bind_array(py::module_& m);

}  // namespace multiproc::python
