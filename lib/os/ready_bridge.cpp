#include <multiproc/detail/os/ready_bridge.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace multiproc::detail {

namespace {

// A wait that nothing interrupts (its interrupt raced with the thread going to sleep) still ends
// this often, so the destructor never waits longer.
constexpr auto stop_check = std::chrono::milliseconds(100);

}  // namespace

ReadyBridge::ReadyBridge(std::function<bool(Deadline)> wait_ready, std::function<void()> interrupt)
    : wait_ready_(std::move(wait_ready)),
      interrupt_(std::move(interrupt)),
      event_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (event_fd_ < 0) {
    throw std::system_error(errno, std::generic_category(), "multiproc: cannot make a readiness eventfd");
  }
  try {
    thread_ = std::thread([this] { run(); });
  } catch (...) {
    ::close(event_fd_);
    throw;
  }
}

ReadyBridge::~ReadyBridge() {
  {
    std::scoped_lock lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_one();
  interrupt_();
  thread_.join();
  ::close(event_fd_);
}

void ReadyBridge::rearm() noexcept {
  {
    std::scoped_lock lock(mutex_);
    if (!signalled_) {
      // The fd is clear, and the thread is waiting for readiness (or about to): nothing to do, and
      // no system call, so an owner that keeps finding the object empty pays nothing.
      return;
    }
    // Clear the fd: it reads "ready" only until the owner finds nothing. The readiness it reported
    // may have come back since: arming the thread makes it look again and signal again.
    std::uint64_t count = 0;
    (void)!::read(event_fd_, &count, sizeof count);  // EAGAIN when already clear (EFD_NONBLOCK)
    signalled_ = false;
    armed_ = true;
  }
  changed_.notify_one();
}

void ReadyBridge::run() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [this] { return armed_ || stopping_; });
      if (stopping_) {
        return;
      }
      armed_ = false;
    }
    bool ready = false;
    while (!ready) {
      {
        std::scoped_lock lock(mutex_);
        if (stopping_) {
          return;
        }
      }
      try {
        ready = wait_ready_(Clock::now() + stop_check);
      } catch (...) {
        ready = true;  // the object failed (closed...): readable, so the owner finds out by taking
      }
    }
    std::scoped_lock lock(mutex_);  // with signalled_, so that rearm() clears what it sees
    const std::uint64_t one = 1;
    // Never blocks (EFD_NONBLOCK); fails only when the counter is about to overflow, which an
    // unread fd could reach only after 2^64 signals.
    (void)!::write(event_fd_, &one, sizeof one);
    signalled_ = true;
  }
}

}  // namespace multiproc::detail
