// multiproc.Value and multiproc.Array (and, through lock=False, RawValue and RawArray): the C++
// Value<T>/Array<T> of the ctypes type a typecode names, so a Python Value('l') and a C++
// Value<long> opened on the same name are one value.
//
// `.value` and items are read and written as single atomic accesses, without the lock: each one
// is whole, and `with v.get_lock(): v.value += 1` works with a plain (non-re-entrant) Lock. As in
// Python, compound updates need the lock.
#include <pybind11/stl.h>

#include <atomic>
#include <climits>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <multiproc/array.hpp>
#include <multiproc/error.hpp>
#include <multiproc/registry.hpp>
#include <multiproc/value.hpp>

#include "binding.hpp"

namespace multiproc::python {

namespace {

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
char typecode_of(py::handle typecode_or_type) {
  py::object code = py::reinterpret_borrow<py::object>(typecode_or_type);
  if (!py::isinstance<py::str>(code) && py::hasattr(code, "_type_")) {
    code = code.attr("_type_");
  }
  if (!py::isinstance<py::str>(code) || py::len(code) != 1) {
    throw py::type_error("expected a typecode such as 'i' or a ctypes type such as ctypes.c_int");
  }
  const auto text = code.cast<std::string>();
  return with_type(text[0], [&](auto) { return text[0]; });
}

// The typecode and lock of an existing named Value or Array, from its header.
std::pair<char, bool> stored_layout(const std::string& name, ObjectKind locked, ObjectKind unlocked) {
  const SegmentInfo info = describe_segment(name);
  if (info.kind != static_cast<std::uint32_t>(locked) && info.kind != static_cast<std::uint32_t>(unlocked)) {
    throw LayoutMismatch("multiproc: \"" + name + "\" is a " + std::string(kind_name(info.kind)) + ", not a " +
                         std::string(kind_name(static_cast<std::uint32_t>(locked))));
  }
  static const std::pair<const char*, char> names[] = {
      {"char", 'c'}, {"wchar_t", 'u'}, {"signed char", 'b'}, {"unsigned char", 'B'}, {"short", 'h'},
      {"unsigned short", 'H'}, {"int", 'i'}, {"unsigned int", 'I'}, {"long", 'l'}, {"unsigned long", 'L'},
      {"long long", 'q'}, {"unsigned long long", 'Q'}, {"float", 'f'}, {"double", 'd'}};
  for (const auto& [type, code] : names) {
    if (info.type == type) {
      return {code, info.kind == static_cast<std::uint32_t>(locked)};
    }
  }
  throw LayoutMismatch("multiproc: \"" + name + "\" holds " + info.type + ", which has no typecode");
}

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

// ---- Value ---------------------------------------------------------------------------------------

class AnyValue {
 public:
  virtual ~AnyValue() = default;
  [[nodiscard]] virtual py::object get() = 0;
  virtual void set(py::handle value) = 0;
  [[nodiscard]] virtual multiproc::Lock* lock() = 0;  // null for a RawValue
  [[nodiscard]] virtual const std::string& name() const = 0;
  [[nodiscard]] virtual char typecode() const = 0;
};

template <class T, bool Locked>
class ValueOf final : public AnyValue {
 public:
  template <class... Where>
  explicit ValueOf(char typecode, Where&&... where) : value_(std::forward<Where>(where)...), typecode_(typecode) {}
  py::object get() override { return to_python(load_element(value_.value())); }
  void set(py::handle value) override { store_element(value_.value(), from_python<T>(value)); }
  multiproc::Lock* lock() override {
    if constexpr (Locked) {
      return &value_.get_lock();
    } else {
      return nullptr;
    }
  }
  [[nodiscard]] const std::string& name() const override { return value_.name(); }
  [[nodiscard]] char typecode() const override { return typecode_; }

 private:
  BasicValue<T, Locked> value_;
  char typecode_;
};

// Value(typecode, *args, lock=True): no args is zero, one is the start value.
template <class... Where>
std::unique_ptr<AnyValue> make_value(char typecode, bool locked, const py::args& args, Where&&... where) {
  if (args.size() > 1) {
    throw py::type_error("Value takes at most one start value");
  }
  return with_type(typecode, [&](auto type) -> std::unique_ptr<AnyValue> {
    using T = typename std::remove_cvref_t<decltype(type)>::type;
    const T initial = args.empty() ? T{} : from_python<T>(args[0]);
    if (locked) {
      return std::make_unique<ValueOf<T, true>>(typecode, where..., initial);
    }
    return std::make_unique<ValueOf<T, false>>(typecode, where..., initial);
  });
}

std::unique_ptr<AnyValue> open_value(const std::string& name) {
  const auto [typecode, locked] = stored_layout(name, ObjectKind::value, ObjectKind::raw_value);
  return with_type(typecode, [&, typecode = typecode, locked = locked](auto type) -> std::unique_ptr<AnyValue> {
    using T = typename std::remove_cvref_t<decltype(type)>::type;
    if (locked) {
      return std::make_unique<ValueOf<T, true>>(typecode, multiproc::open, name);
    }
    return std::make_unique<ValueOf<T, false>>(typecode, multiproc::open, name);
  });
}

py::object lock_of(py::object self, multiproc::Lock* lock, const char* raw_kind) {
  if (lock == nullptr) {
    throw py::attribute_error(std::string("a ") + raw_kind + " has no lock");
  }
  // The Lock lives inside the object's segment: the Python Lock keeps the object alive.
  return py::cast(lock, py::return_value_policy::reference_internal, self);
}

void bind_value(py::module_& m) {
  py::class_<AnyValue> cls(m, "Value", "One number (or character) in shared memory, as multiprocessing.Value.");
  cls.def(py::init([](py::handle type, const py::args& args, bool lock) { return make_value(typecode_of(type), lock, args); }),
          py::arg("typecode_or_type"), py::kw_only(), py::arg("lock") = true);
  cls.def_static("create", [](const std::string& name, py::handle type, const py::args& args, bool lock) {
    return make_value(typecode_of(type), lock, args, multiproc::create, std::string_view(name));
  }, py::arg("name"), py::arg("typecode_or_type"), py::kw_only(), py::arg("lock") = true);
  cls.def_static("open_or_create", [](const std::string& name, py::handle type, const py::args& args, bool lock) {
    return make_value(typecode_of(type), lock, args, multiproc::open_or_create, std::string_view(name));
  }, py::arg("name"), py::arg("typecode_or_type"), py::kw_only(), py::arg("lock") = true);
  cls.def_static("open", &open_value, py::arg("name"),
                 "Opens a named Value (made by Python or C++); its type and lock are read from it.");
  cls.def("__reduce__", [](py::handle self) { return reduce_by_name(self.cast<AnyValue&>().name(), "Value"); });
  cls.def_property_readonly("name", [](const AnyValue& v) { return name_or_none(v.name()); });
  cls.def_property("value", &AnyValue::get, &AnyValue::set, "The value, read or written as one atomic access.");
  cls.def_property_readonly("typecode", [](const AnyValue& v) { return std::string(1, v.typecode()); });
  cls.def("get_lock", [](py::object self) { return lock_of(self, self.cast<AnyValue&>().lock(), "RawValue"); });
  cls.def("get_obj", [](py::object self) { return self; });
  cls.def("__repr__", [](AnyValue& v) {
    return "<multiproc.Value('" + std::string(1, v.typecode()) + "', " + py::repr(v.get()).cast<std::string>() + ")>";
  });
}

// ---- Array ---------------------------------------------------------------------------------------

class AnyArray {
 public:
  virtual ~AnyArray() = default;
  [[nodiscard]] virtual std::size_t size() const = 0;
  [[nodiscard]] virtual py::object get(std::size_t i) = 0;
  virtual void set(std::size_t i, py::handle value) = 0;
  [[nodiscard]] virtual multiproc::Lock* lock() = 0;
  [[nodiscard]] virtual const std::string& name() const = 0;
  [[nodiscard]] virtual char typecode() const = 0;
};

template <class T, bool Locked>
class ArrayOf final : public AnyArray {
 public:
  template <class... Where>
  explicit ArrayOf(char typecode, Where&&... where) : array_(std::forward<Where>(where)...), typecode_(typecode) {}
  [[nodiscard]] std::size_t size() const override { return array_.size(); }
  py::object get(std::size_t i) override { return to_python(load_element(array_[i])); }
  void set(std::size_t i, py::handle value) override { store_element(array_[i], from_python<T>(value)); }
  multiproc::Lock* lock() override {
    if constexpr (Locked) {
      return &array_.get_lock();
    } else {
      return nullptr;
    }
  }
  [[nodiscard]] const std::string& name() const override { return array_.name(); }
  [[nodiscard]] char typecode() const override { return typecode_; }

 private:
  BasicArray<T, Locked> array_;
  char typecode_;
};

// Array(typecode, size_or_initializer, lock=True): an int is a size (zeros); anything else is
// iterated for the values (bytes for 'c', str for 'u').
template <class... Where>
std::unique_ptr<AnyArray> make_array(char typecode, py::handle size_or_initializer, bool locked, Where&&... where) {
  return with_type(typecode, [&](auto type) -> std::unique_ptr<AnyArray> {
    using T = typename std::remove_cvref_t<decltype(type)>::type;
    auto build = [&](auto&&... contents) -> std::unique_ptr<AnyArray> {
      // open_or_create takes a size only: what an existing array holds is not the caller's to set.
      if constexpr (std::is_constructible_v<BasicArray<T, true>, Where..., decltype(contents)...>) {
        if (locked) {
          return std::make_unique<ArrayOf<T, true>>(typecode, where..., contents...);
        }
        return std::make_unique<ArrayOf<T, false>>(typecode, where..., contents...);
      } else {
        throw py::type_error("Array.open_or_create takes a size, not values");
      }
    };
    if (py::isinstance<py::int_>(size_or_initializer)) {
      const auto n = size_or_initializer.cast<long long>();
      if (n < 0) {
        throw py::value_error("an Array's size cannot be negative");
      }
      return build(static_cast<std::size_t>(n));
    }
    std::vector<T> values;
    if constexpr (std::is_same_v<T, char>) {
      if (py::isinstance<py::bytes>(size_or_initializer)) {
        const auto bytes = size_or_initializer.cast<std::string>();
        return build(std::vector<char>(bytes.begin(), bytes.end()));
      }
    }
    for (const py::handle item : py::iter(size_or_initializer)) {
      if constexpr (std::is_same_v<T, char>) {
        values.push_back(py::isinstance<py::int_>(item) ? static_cast<char>(from_python<unsigned char>(item))
                                                        : from_python<char>(item));
      } else {
        values.push_back(from_python<T>(item));
      }
    }
    return build(values);
  });
}

std::unique_ptr<AnyArray> open_array(const std::string& name) {
  const auto [typecode, locked] = stored_layout(name, ObjectKind::array, ObjectKind::raw_array);
  return with_type(typecode, [&, typecode = typecode, locked = locked](auto type) -> std::unique_ptr<AnyArray> {
    using T = typename std::remove_cvref_t<decltype(type)>::type;
    if (locked) {
      return std::make_unique<ArrayOf<T, true>>(typecode, multiproc::open, name);
    }
    return std::make_unique<ArrayOf<T, false>>(typecode, multiproc::open, name);
  });
}

std::size_t checked_index(const AnyArray& array, long long i) {
  const auto n = static_cast<long long>(array.size());
  if (i < 0) {
    i += n;
  }
  if (i < 0 || i >= n) {
    throw py::index_error("array index out of range");
  }
  return static_cast<std::size_t>(i);
}

py::object get_item(AnyArray& array, py::handle key) {
  if (py::isinstance<py::slice>(key)) {
    std::size_t start = 0;
    std::size_t stop = 0;
    std::size_t step = 0;
    std::size_t length = 0;
    if (!py::reinterpret_borrow<py::slice>(key).compute(array.size(), &start, &stop, &step, &length)) {
      throw py::error_already_set();
    }
    py::list out(length);
    for (std::size_t k = 0; k < length; ++k) {
      out[k] = array.get(start + k * step);
    }
    if (array.typecode() == 'c') {
      return py::bytes("").attr("join")(out);
    }
    return out;
  }
  return array.get(checked_index(array, key.cast<long long>()));
}

void set_item(AnyArray& array, py::handle key, py::handle value) {
  if (py::isinstance<py::slice>(key)) {
    std::size_t start = 0;
    std::size_t stop = 0;
    std::size_t step = 0;
    std::size_t length = 0;
    if (!py::reinterpret_borrow<py::slice>(key).compute(array.size(), &start, &stop, &step, &length)) {
      throw py::error_already_set();
    }
    py::list values;
    if (array.typecode() == 'c' && py::isinstance<py::bytes>(value)) {
      for (const char byte : value.cast<std::string>()) {
        values.append(py::bytes(&byte, 1));
      }
    } else {
      values = py::list(py::iter(value));
    }
    if (static_cast<std::size_t>(py::len(values)) != length) {
      throw py::value_error("can only assign a sequence of the same length to an Array slice");
    }
    // Converted first, stored after: a bad value leaves the array unchanged.
    std::vector<py::object> items;
    for (std::size_t k = 0; k < length; ++k) {
      items.push_back(values[k]);
    }
    for (std::size_t k = 0; k < length; ++k) {
      array.set(start + k * step, items[k]);
    }
    return;
  }
  array.set(checked_index(array, key.cast<long long>()), value);
}

// The text of a 'c' or 'u' array up to its first NUL, as ctypes' .value.
py::object text_value(AnyArray& array) {
  if (array.typecode() != 'c' && array.typecode() != 'u') {
    throw py::attribute_error("only 'c' and 'u' arrays have .value");
  }
  py::list parts;
  for (std::size_t i = 0; i < array.size(); ++i) {
    py::object item = array.get(i);
    if (item.cast<std::string>() == std::string(1, '\0')) {
      break;
    }
    parts.append(item);
  }
  return array.typecode() == 'c' ? py::object(py::bytes("").attr("join")(parts)) : py::object(py::str("").attr("join")(parts));
}

void bind_array(py::module_& m) {
  py::class_<AnyArray> cls(m, "Array", "Numbers (or characters) in shared memory, as multiprocessing.Array.");
  cls.def(py::init([](py::handle type, py::handle size_or_initializer, bool lock) {
            return make_array(typecode_of(type), size_or_initializer, lock);
          }),
          py::arg("typecode_or_type"), py::arg("size_or_initializer"), py::kw_only(), py::arg("lock") = true);
  cls.def_static("create", [](const std::string& name, py::handle type, py::handle size_or_initializer, bool lock) {
    return make_array(typecode_of(type), size_or_initializer, lock, multiproc::create, std::string_view(name));
  }, py::arg("name"), py::arg("typecode_or_type"), py::arg("size_or_initializer"), py::kw_only(), py::arg("lock") = true);
  cls.def_static("open_or_create", [](const std::string& name, py::handle type, std::size_t size, bool lock) {
    return make_array(typecode_of(type), py::int_(size), lock, multiproc::open_or_create, std::string_view(name));
  }, py::arg("name"), py::arg("typecode_or_type"), py::arg("size"), py::kw_only(), py::arg("lock") = true);
  cls.def_static("open", &open_array, py::arg("name"),
                 "Opens a named Array (made by Python or C++); its type, size and lock are read from it.");
  cls.def("__reduce__", [](py::handle self) { return reduce_by_name(self.cast<AnyArray&>().name(), "Array"); });
  cls.def_property_readonly("name", [](const AnyArray& a) { return name_or_none(a.name()); });
  cls.def_property_readonly("typecode", [](const AnyArray& a) { return std::string(1, a.typecode()); });
  cls.def("__len__", &AnyArray::size);
  cls.def("__getitem__", &get_item);
  cls.def("__setitem__", &set_item);
  cls.def("get_lock", [](py::object self) { return lock_of(self, self.cast<AnyArray&>().lock(), "RawArray"); });
  cls.def("get_obj", [](py::object self) { return self; });
  cls.def_property_readonly("value", &text_value);
  cls.def_property_readonly("raw", [](AnyArray& a) {
    if (a.typecode() != 'c') {
      throw py::attribute_error("only 'c' arrays have .raw");
    }
    return get_item(a, py::slice(0, static_cast<Py_ssize_t>(a.size()), 1));
  });
  cls.def("__repr__", [](AnyArray& a) {
    return "<multiproc.Array('" + std::string(1, a.typecode()) + "', " +
           py::repr(get_item(a, py::slice(0, static_cast<Py_ssize_t>(a.size()), 1))).cast<std::string>() + ")>";
  });
}

}  // namespace

void bind_cells(py::module_& m) {
  bind_value(m);
  bind_array(m);
}

}  // namespace multiproc::python
