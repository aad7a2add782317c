// multiproc.Array (and RawArray, through lock=False): see cells.cpp.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <multiproc/array.hpp>

#include "cells.hpp"

namespace multiproc::python {

namespace {

class AnyArray : public AnyCells {
 public:
  [[nodiscard]] virtual std::size_t size() const = 0;
  [[nodiscard]] virtual py::object get(std::size_t i) = 0;
  virtual void set(std::size_t i, py::handle value) = 0;
};

template <class T, bool Locked>
class ArrayOf final : public HeldCells<AnyArray, BasicArray<T, Locked>, Locked> {
 public:
  using HeldCells<AnyArray, BasicArray<T, Locked>, Locked>::HeldCells;
  [[nodiscard]] std::size_t size() const override { return this->cells_.size(); }
  py::object get(std::size_t i) override { return to_python(load_element(this->cells_[i])); }
  void set(std::size_t i, py::handle value) override { store_element(this->cells_[i], from_python<T>(value)); }
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
        return make_cells<ArrayOf, T>(locked, typecode, where..., contents...);
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
  return open_cells<ArrayOf>(name, ObjectKind::array, ObjectKind::raw_array);
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

// The elements a slice names in `array`.
struct SliceRange {
  std::size_t start;
  std::size_t step;
  std::size_t length;
};
SliceRange slice_range(const AnyArray& array, py::handle slice) {
  std::size_t start = 0;
  std::size_t stop = 0;
  std::size_t step = 0;
  std::size_t length = 0;
  if (!py::reinterpret_borrow<py::slice>(slice).compute(array.size(), &start, &stop, &step, &length)) {
    throw py::error_already_set();
  }
  return {start, step, length};
}

py::object get_item(AnyArray& array, py::handle key) {
  if (py::isinstance<py::slice>(key)) {
    const auto [start, step, length] = slice_range(array, key);
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
    const auto [start, step, length] = slice_range(array, key);
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

}  // namespace

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

}  // namespace multiproc::python
