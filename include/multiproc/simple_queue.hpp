#pragma once
// SimpleQueue<T>: Python's multiprocessing.SimpleQueue, a Queue<T> cut down to put, get, empty and
// close.
//
//   multiproc::SimpleQueue<std::string> q;   q.put("job");   std::string job = q.get();
#include <string>
#include <string_view>

#include <multiproc/object_tags.hpp>
#include <multiproc/queue.hpp>

namespace multiproc {

// Python's SimpleQueue: put, get, empty (and close). Bounded like Queue, with its default capacity.
template <class T>
class SimpleQueue {
 public:
  SimpleQueue() = default;
  SimpleQueue(create_t how, std::string_view name) : queue_(how, name) {}
  SimpleQueue(open_t how, std::string_view name) : queue_(how, name) {}
  SimpleQueue(open_or_create_t how, std::string_view name) : queue_(how, name) {}

  void put(const T& value) { queue_.put(value); }
  T get() { return queue_.get(); }
  [[nodiscard]] bool empty() const noexcept { return queue_.empty(); }
  void close() noexcept { queue_.close(); }
  // The name it travels by to another process (see codec.hpp); ValueError when anonymous.
  [[nodiscard]] const std::string& name_to_travel() const { return queue_.name_to_travel(); }

 private:
  Queue<T> queue_;
};

}  // namespace multiproc
