#pragma once
// Internal: a readiness file descriptor for a shared object that can only be waited on by
// blocking (a futex in shared memory), so that event loops (epoll, poll, Boost.Asio) can wait on
// it together with sockets and timers.
//
// A helper thread of the owning process blocks on the object on the loop's behalf and makes an
// eventfd readable when the object becomes ready. It exists only once someone asked for the fd:
// other processes and the fast path of the object are unchanged, and since the thread waits the
// way any blocked consumer does, a producer makes a wake-up system call only on the
// empty-to-non-empty transition while the fd is armed.
//
// The thread must wait without spinning first (Spin::never): it always starts waiting just after
// its owner drained the object, so a spin finds nothing, and on a busy CPU a thread that spun
// before it slept is woken late. Measured by bench/ready_latency (2 cores, load average 10): send
// -> readable median 3.7 ms with the 20 us spin, 20 us without (issue 14.13); a bare futex waiter
// shows the same difference (Linux's EEVDF: a task that just ran is not eligible to preempt).
//
// Contract: the fd is readable from the moment the object becomes ready until the owning process
// next finds it not ready (a try_get that says empty, an Event seen clear), which clears the fd
// and re-arms the thread through rearm(). The owner need not read the fd itself.
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include <multiproc/detail/os/deadline.hpp>
#include <multiproc/export.hpp>

namespace multiproc::detail {

class MULTIPROC_API ReadyBridge {
 public:
  // `wait_ready(deadline)`: blocks until the object is ready (true) or the deadline passes
  // (false). `interrupt()`: makes a blocked wait_ready return early (it may be spurious for
  // others). Both are called from the helper thread and the destructor only; they must refer to
  // nothing that moves (shared memory, not a handle object).
  ReadyBridge(std::function<bool(Deadline)> wait_ready, std::function<void()> interrupt);
  ReadyBridge(const ReadyBridge&) = delete;
  ReadyBridge& operator=(const ReadyBridge&) = delete;
  ~ReadyBridge();  // stops the thread, closes the fd

  [[nodiscard]] int fd() const noexcept { return event_fd_; }
  // The owner found the object not ready: clear the fd, and signal again when it next becomes ready.
  void rearm() noexcept;

 private:
  void run();

  std::function<bool(Deadline)> wait_ready_;
  std::function<void()> interrupt_;
  int event_fd_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool armed_ = true;       // under mutex_: the thread is to wait for readiness (again)
  bool signalled_ = false;  // under mutex_: the fd was written since the owner last cleared it
  bool stopping_ = false;  // under mutex_
  std::thread thread_;
};

}  // namespace multiproc::detail
