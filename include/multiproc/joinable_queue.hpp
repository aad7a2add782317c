#pragma once
// JoinableQueue<T>: Python's multiprocessing.JoinableQueue, a Queue<T> that counts unfinished work.
//
//   multiproc::JoinableQueue<long> jobs{64};
//   jobs.put(7);                  // in a worker: long job = jobs.get(); ...; jobs.task_done();
//   jobs.join();                  // returns once every job put was marked done
#include <chrono>
#include <cstddef>
#include <string_view>

#include <multiproc/codec.hpp>
#include <multiproc/detail/channel/queue_backends.hpp>
#include <multiproc/detail/channel/queue_signals.hpp>
#include <multiproc/detail/os/deadline.hpp>
#include <multiproc/error.hpp>
#include <multiproc/object_tags.hpp>
#include <multiproc/queue.hpp>
#include <multiproc/segment.hpp>

namespace multiproc {

// A Queue that counts unfinished work: every put adds a task, task_done() finishes one, join()
// waits until all are finished.
template <class T>
class JoinableQueue : public Queue<T> {
 public:
  explicit JoinableQueue(std::size_t capacity = Queue<T>::default_capacity) : Queue<T>(Where(), capacity, 0, true) {}
  JoinableQueue(create_t how, std::string_view name, std::size_t capacity = Queue<T>::default_capacity)
      : Queue<T>(Where(how, name), capacity, 0, true) {}
  JoinableQueue(open_t how, std::string_view name) : Queue<T>(Where(how, name), 2, 0, true) {}
  JoinableQueue(open_or_create_t how, std::string_view name, std::size_t capacity = Queue<T>::default_capacity)
      : Queue<T>(Where(how, name), capacity, 0, true) {}
  // With room for `ring_bytes` bytes of messages (a T that goes through the codec), as Queue's.
  JoinableQueue(std::size_t capacity, std::size_t ring_bytes)
    requires(!bitwise_message<T>)
      : Queue<T>(Where(), capacity, detail::checked_ring_bytes(ring_bytes), true) {}
  JoinableQueue(create_t how, std::string_view name, std::size_t capacity, std::size_t ring_bytes)
    requires(!bitwise_message<T>)
      : Queue<T>(Where(how, name), capacity, detail::checked_ring_bytes(ring_bytes), true) {}
  JoinableQueue(open_or_create_t how, std::string_view name, std::size_t capacity, std::size_t ring_bytes)
    requires(!bitwise_message<T>)
      : Queue<T>(Where(how, name), capacity, detail::checked_ring_bytes(ring_bytes), true) {}

  // Marks one message taken with get() as processed. Throws ValueError when called more
  // often than messages were put (Python raises ValueError).
  void task_done() {
    if (!detail::finish_task(this->signals())) {
      throw ValueError("multiproc::JoinableQueue::task_done: called more times than there were messages");
    }
  }
  // Blocks until every message put has been marked done.
  void join() { (void)detail::wait_tasks_done(this->signals(), detail::Deadline::max()); }
  // Returns false if work was still unfinished after `timeout`.
  template <class Rep, class Period>
  [[nodiscard]] bool join(std::chrono::duration<Rep, Period> timeout) {
    return detail::wait_tasks_done(this->signals(), detail::deadline_after(timeout));
  }
};

}  // namespace multiproc
