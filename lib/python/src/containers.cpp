// The compiled halves of multiproc.SharedDict and multiproc.SharedList: C++ SharedDict<std::string,
// std::string> and SharedList<std::string> holding the messages of binding.hpp. The Python classes
// (multiproc/__init__.py) put collections.abc.MutableMapping / MutableSequence on top.
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <multiproc/shared_dict.hpp>
#include <multiproc/shared_list.hpp>

#include "binding.hpp"

namespace multiproc::python {

namespace {

// What every call of a store shares: the C++ object (its calls run with the GIL released, as
// they may wait for the store's lock), the raw flag, and the named forms.
template <class Store>
class StoreHandle {
 public:
  StoreHandle(std::size_t bytes, bool raw) : store_(bytes), raw_(raw) {}
  StoreHandle(How how, const std::string& name, std::size_t bytes, bool raw) : store_(open_named(how, name, bytes)), raw_(raw) {}

  template <class Call>
  decltype(auto) call(Call&& body) {
    py::gil_scoped_release released;
    return body(store_);
  }
  [[nodiscard]] std::string payload(py::handle obj) const { return to_payload(obj, raw_); }
  [[nodiscard]] py::object object(std::string_view payload) const { return from_payload(payload, raw_); }
  [[nodiscard]] bool raw() const { return raw_; }
  [[nodiscard]] const std::string& name() const { return store_.name(); }

 private:
  static Store open_named(How how, const std::string& name, std::size_t bytes) {
    switch (how) {
      case How::create: return Store(multiproc::create, name, bytes);
      case How::open: return Store(multiproc::open, name);
      case How::open_or_create: return Store(multiproc::open_or_create, name, bytes);
    }
    throw std::logic_error("unreachable");
  }

  Store store_;
  bool raw_;
};

using DictHandle = StoreHandle<multiproc::SharedDict<std::string, std::string>>;
using ListHandle = StoreHandle<multiproc::SharedList<std::string>>;
using Dict = multiproc::SharedDict<std::string, std::string>;
using List = multiproc::SharedList<std::string>;

constexpr std::size_t default_bytes = std::size_t{1} << 20;

template <class Handle>
void add_named_forms(py::class_<Handle>& cls, const char* kind) {
  cls.def(py::init<std::size_t, bool>(), py::arg("size") = default_bytes, py::arg("raw") = false);
  for (const auto& [method, how] : {std::pair{"create", How::create}, std::pair{"open_or_create", How::open_or_create}}) {
    cls.def_static(
        method,
        [how = how](const std::string& name, std::size_t bytes, bool raw) { return std::make_unique<Handle>(how, name, bytes, raw); },
        py::arg("name"), py::arg("size") = default_bytes, py::arg("raw") = false);
  }
  cls.def_static(
      "open", [](const std::string& name, bool raw) { return std::make_unique<Handle>(How::open, name, 0, raw); },
      py::arg("name"), py::arg("raw") = false);
  cls.def("__reduce__", [kind](py::handle self) {
    auto& handle = self.cast<Handle&>();
    return reduce_by_name(handle.name(), kind, py::make_tuple(handle.raw()));
  });
  cls.def_property_readonly("name", [](const Handle& h) { return name_or_none(h.name()); });
  cls.def_property_readonly("raw", &Handle::raw);
  cls.def("__len__", [](Handle& h) { return h.call([](auto& store) { return store.size(); }); });
  cls.def("clear", [](Handle& h) { h.call([](auto& store) { store.clear(); }); });
}

void bind_dict(py::module_& m) {
  py::class_<DictHandle> cls(m, "_SharedDict");
  add_named_forms(cls, "SharedDict");
  cls.def("getitem", [](DictHandle& h, py::handle key) {
    const std::string k = h.payload(key);
    const auto value = h.call([&](Dict& d) { return d.get(k); });
    if (!value) {
      throw py::key_error(py::repr(key).cast<std::string>());
    }
    return h.object(*value);
  });
  cls.def("get", [](DictHandle& h, py::handle key, py::object otherwise) {
    const std::string k = h.payload(key);
    const auto value = h.call([&](Dict& d) { return d.get(k); });
    return value ? h.object(*value) : otherwise;
  });
  cls.def("setitem", [](DictHandle& h, py::handle key, py::handle value) {
    const std::string k = h.payload(key);
    const std::string v = h.payload(value);
    h.call([&](Dict& d) { d.set(k, v); });
  });
  // pop(key) -> the value, or `missing` if the key was absent; one atomic call.
  cls.def("pop", [](DictHandle& h, py::handle key, py::object missing) {
    const std::string k = h.payload(key);
    const auto value = h.call([&](Dict& d) { return d.pop(k); });
    return value ? h.object(*value) : missing;
  });
  cls.def("contains", [](DictHandle& h, py::handle key) {
    const std::string k = h.payload(key);
    return h.call([&](Dict& d) { return d.contains(k); });
  });
  cls.def("items", [](DictHandle& h) {
    const auto items = h.call([](Dict& d) { return d.items(); });
    py::list out;
    for (const auto& [key, value] : items) {
      out.append(py::make_tuple(h.object(key), h.object(value)));
    }
    return out;
  }, "A consistent snapshot of the entries, as a list of (key, value).");
}

void bind_list(py::module_& m) {
  py::class_<ListHandle> cls(m, "_SharedList");
  add_named_forms(cls, "SharedList");
  // Indices here are already made non-negative by the Python class.
  cls.def("getitem", [](ListHandle& h, std::size_t i) { return h.object(h.call([&](List& l) { return l[i]; })); });
  cls.def("setitem", [](ListHandle& h, std::size_t i, py::handle value) {
    const std::string v = h.payload(value);
    h.call([&](List& l) { l.set(i, v); });
  });
  cls.def("delitem", [](ListHandle& h, std::size_t i) { h.call([&](List& l) { l.erase(i); }); });
  cls.def("insert", [](ListHandle& h, std::size_t i, py::handle value) {
    const std::string v = h.payload(value);
    h.call([&](List& l) { l.insert(i, v); });
  });
  cls.def("append", [](ListHandle& h, py::handle value) {
    const std::string v = h.payload(value);
    h.call([&](List& l) { l.append(v); });
  });
  cls.def("extend", [](ListHandle& h, const py::iterable& values) {
    std::vector<std::string> payloads;
    for (const py::handle value : values) {
      payloads.push_back(h.payload(value));
    }
    h.call([&](List& l) { l.extend(payloads); });
  }, "Appends all the values, atomically: all or (if the list is full) none.");
  cls.def("pop_last", [](ListHandle& h) { return h.object(h.call([](List& l) { return l.pop(); })); });
  cls.def("snapshot", [](ListHandle& h) {
    const auto values = h.call([](List& l) { return l.snapshot(); });
    py::list out;
    for (const auto& value : values) {
      out.append(h.object(value));
    }
    return out;
  }, "A consistent snapshot, as a list.");
}

}  // namespace

void bind_containers(py::module_& m) {
  bind_dict(m);
  bind_list(m);
}

}  // namespace multiproc::python
