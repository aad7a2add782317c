#pragma once
// multiproc::wait: Python's multiprocessing.connection.wait. Waits until at least one of several
// objects is ready and returns those that are, in the order given:
//
//   std::vector<multiproc::Connection<Msg>*> readers = ...;
//   for (auto* r : multiproc::wait(readers)) { try { use(r->recv()); } catch (const multiproc::Closed&) { drop(r); } }
//   auto ready = multiproc::wait({end, queue, process.sentinel(), socket_fd}, 5s);   // mixed: Waitable
//
// Ready means: a Pipe end's recv() would not wait (a message is in, or nobody is left at the other
// end); a Queue has a message or is closed; a plain file descriptor (a Process sentinel, a socket)
// polls readable (or hung up). A timeout of zero or less looks once; no timeout waits for ever.
// The waiter sleeps in poll(2) on the objects' ready_fd()s (each made on first use: one helper
// thread per queue or pipe end in this process, see Queue::ready_fd) and the plain fds: no
// busy-waiting. A Pipe end that cannot receive (the sending end of a one-way pipe) throws
// ValueError, a closed one Closed, as recv() would.
#include <chrono>
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <span>
#include <vector>

#include <multiproc/detail/os/deadline.hpp>
#include <multiproc/export.hpp>
#include <multiproc/pipe.hpp>
#include <multiproc/queue.hpp>

namespace multiproc {

// One thing wait() can watch: a Pipe end, a Queue (or JoinableQueue), or a plain file descriptor.
// Refers to the object (which must outlive it); two Waitables are equal when they refer to the
// same object (or fd).
class Waitable {
 public:
  // A plain file descriptor (a Process sentinel, a socket, a pipe(2) end).
  // NOLINTNEXTLINE(google-explicit-constructor): converts, as Python's wait takes a bare fd
  Waitable(int fd) noexcept : object_(nullptr), fd_(fd) {}
  template <class T>
  // NOLINTNEXTLINE(google-explicit-constructor): converts, so a mixed list reads as Python's
  Waitable(Connection<T>& end) noexcept : object_(&end), ready_fd_(&end_fd<T>), ready_now_(&end_ready<T>) {}
  template <class T>
  // NOLINTNEXTLINE(google-explicit-constructor)
  Waitable(Queue<T>& queue) noexcept : object_(&queue), ready_fd_(&queue_fd<T>), ready_now_(&queue_ready<T>) {}

  // The descriptor poll(2) watches: the fd itself, or the object's ready_fd() (made on first use).
  [[nodiscard]] int fd() const { return object_ == nullptr ? fd_ : ready_fd_(object_); }
  // Whether it is ready now. An object found not ready re-arms its ready fd.
  [[nodiscard]] MULTIPROC_API bool ready() const;

  bool operator==(const Waitable& other) const noexcept {
    return object_ == other.object_ && (object_ != nullptr || fd_ == other.fd_);
  }

 private:
  template <class T>
  static int end_fd(void* end) {
    return static_cast<Connection<T>*>(end)->ready_fd();
  }
  template <class T>
  static bool end_ready(void* end) {
    return static_cast<Connection<T>*>(end)->poll();  // false re-arms the fd
  }
  template <class T>
  static int queue_fd(void* queue) {
    return static_cast<Queue<T>*>(queue)->ready_fd();
  }
  template <class T>
  static bool queue_ready(void* queue) {
    auto& q = *static_cast<Queue<T>*>(queue);
    if (!q.empty() || q.closed()) {
      return true;
    }
    q.saw_empty();  // a message put since is seen by the helper thread, which fires the fd again
    return false;
  }

  void* object_;
  int fd_ = -1;
  int (*ready_fd_)(void*) = nullptr;
  bool (*ready_now_)(void*) = nullptr;
};

namespace detail {
// The loop under every wait(): `ready` (in `objects` order) once any is ready; empty at `deadline`.
MULTIPROC_API std::vector<Waitable> wait_until(std::span<const Waitable> objects, Deadline deadline);
}  // namespace detail

// Waits until at least one of `objects` is ready, at most `timeout`; returns the ready ones (empty
// after the timeout).
template <class Rep, class Period>
std::vector<Waitable> wait(std::span<const Waitable> objects, std::chrono::duration<Rep, Period> timeout) {
  return detail::wait_until(objects, detail::deadline_after(timeout));
}
inline std::vector<Waitable> wait(std::span<const Waitable> objects) {
  return detail::wait_until(objects, detail::Deadline::max());
}
template <class Rep, class Period>
std::vector<Waitable> wait(std::initializer_list<Waitable> objects, std::chrono::duration<Rep, Period> timeout) {
  return detail::wait_until(std::span(objects.begin(), objects.size()), detail::deadline_after(timeout));
}
inline std::vector<Waitable> wait(std::initializer_list<Waitable> objects) {
  return detail::wait_until(std::span(objects.begin(), objects.size()), detail::Deadline::max());
}

// Objects of one kind (Pipe ends, Queues), by pointer: returns the pointers of the ready ones.
template <class Object>
std::vector<Object*> wait(const std::vector<Object*>& objects, std::optional<std::chrono::nanoseconds> timeout = std::nullopt) {
  std::vector<Waitable> watched;
  watched.reserve(objects.size());
  for (Object* object : objects) {
    watched.emplace_back(*object);
  }
  const auto ready = detail::wait_until(watched, timeout ? detail::deadline_after(*timeout) : detail::Deadline::max());
  std::vector<Object*> out;
  for (std::size_t i = 0, r = 0; i < objects.size() && r < ready.size(); ++i) {
    if (watched[i] == ready[r]) {
      out.push_back(objects[i]);
      ++r;
    }
  }
  return out;
}

}  // namespace multiproc
