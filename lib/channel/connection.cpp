#include <multiproc/connection.hpp>

#include <poll.h>

#include <cerrno>
#include <system_error>

#include "os/futex.hpp"

namespace multiproc {

namespace {

// A plain fd is ready when it polls readable, hung up or in error (as Python's selectors count it).
constexpr short readable = POLLIN | POLLHUP | POLLERR;

void check_open(const pollfd& watched) {
  if ((watched.revents & POLLNVAL) != 0) {
    throw std::system_error(EBADF, std::generic_category(),
                            "multiproc::wait: file descriptor " + std::to_string(watched.fd) + " is not open");
  }
}

// poll(2) until `deadline`; EINTR only ends a slice.
void poll_until(std::vector<pollfd>& fds, detail::Deadline deadline) {
  const timespec at = detail::to_timespec(deadline);
  const timespec now = detail::to_timespec(detail::Clock::now());
  timespec left{at.tv_sec - now.tv_sec, at.tv_nsec - now.tv_nsec};
  if (left.tv_nsec < 0) {
    left.tv_nsec += 1'000'000'000;
    --left.tv_sec;
  }
  if (left.tv_sec < 0) {
    left = {0, 0};
  }
  if (::ppoll(fds.data(), fds.size(), deadline == detail::Deadline::max() ? nullptr : &left, nullptr) < 0 &&
      errno != EINTR) {
    throw std::system_error(errno, std::generic_category(), "multiproc::wait: poll");
  }
  for (const pollfd& watched : fds) {
    check_open(watched);
  }
}

}  // namespace

bool Waitable::ready() const {
  if (object_ != nullptr) {
    return ready_now_(object_);
  }
  if (fd_ < 0) {
    throw ValueError("multiproc::wait: " + std::to_string(fd_) + " is not a file descriptor");
  }
  pollfd watched{fd_, POLLIN, 0};
  if (::poll(&watched, 1, 0) < 0 && errno != EINTR) {
    throw std::system_error(errno, std::generic_category(), "multiproc::wait: poll");
  }
  check_open(watched);
  return (watched.revents & readable) != 0;
}

namespace detail {

std::vector<Waitable> wait_until(std::span<const Waitable> objects, Deadline deadline) {
  // The fds first: making an object's ready fd arms its helper thread, so whatever becomes ready
  // after the look below makes the poll return.
  std::vector<pollfd> fds;
  fds.reserve(objects.size());
  for (const Waitable& object : objects) {
    fds.push_back({object.fd(), POLLIN, 0});
  }
  for (;;) {
    std::vector<Waitable> ready;
    for (const Waitable& object : objects) {
      if (object.ready()) {
        ready.push_back(object);
      }
    }
    if (!ready.empty() || Clock::now() >= deadline) {
      return ready;
    }
    // A ready fd that was stale (its object drained by a recv that did not look again) was
    // re-armed by ready() above, so this sleeps until something really changes.
    poll_until(fds, deadline);
  }
}

}  // namespace detail

}  // namespace multiproc
