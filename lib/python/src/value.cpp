// multiproc.Value (and RawValue, through lock=False): see cells.cpp.
#include <memory>
#include <string>
#include <string_view>

#include <multiproc/value.hpp>

#include "cells.hpp"

namespace multiproc::python {

namespace {

class AnyValue : public AnyCells {
 public:
  [[nodiscard]] virtual py::object get() = 0;
  virtual void set(py::handle value) = 0;
};

template <class T, bool Locked>
class ValueOf final : public HeldCells<AnyValue, BasicValue<T, Locked>, Locked> {
 public:
  using HeldCells<AnyValue, BasicValue<T, Locked>, Locked>::HeldCells;
  py::object get() override { return to_python(load_element(this->cells_.value())); }
  void set(py::handle value) override { store_element(this->cells_.value(), from_python<T>(value)); }
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
    return make_cells<ValueOf, T>(locked, typecode, where..., initial);
  });
}

std::unique_ptr<AnyValue> open_value(const std::string& name) {
  return open_cells<ValueOf>(name, ObjectKind::value, ObjectKind::raw_value);
}

}  // namespace

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

}  // namespace multiproc::python
