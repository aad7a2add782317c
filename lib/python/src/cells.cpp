// multiproc.Value and multiproc.Array (and, through lock=False, RawValue and RawArray): the C++
// Value<T>/Array<T> of the ctypes type a typecode names, so a Python Value('l') and a C++
// Value<long> opened on the same name are one value. This file: what the two share (cells.hpp);
// value.cpp and array.cpp: each class.
//
// `.value` and items are read and written as single atomic accesses, without the lock: each one
// is whole, and `with v.get_lock(): v.value += 1` works with a plain (non-re-entrant) Lock. As in
// Python, compound updates need the lock.
#include "cells.hpp"

#include <string>

#include <multiproc/error.hpp>
#include <multiproc/registry.hpp>

namespace multiproc::python {

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

py::object lock_of(py::object self, multiproc::Lock* lock, const char* raw_kind) {
  if (lock == nullptr) {
    throw py::attribute_error(std::string("a ") + raw_kind + " has no lock");
  }
  // The Lock lives inside the object's segment: the Python Lock keeps the object alive.
  return py::cast(lock, py::return_value_policy::reference_internal, self);
}

void bind_cells(py::module_& m) {
  bind_value(m);
  bind_array(m);
}

}  // namespace multiproc::python
