#include <multiproc/detail/os/liveness.hpp>

#include "os/thread_id.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <string>

namespace multiproc::detail {

namespace {

// Relaxed: every thread of a process computes the same value, so any thread may store it and a
// stale 0 only costs one getpid(); the fork handler resets it in the child's only thread.
std::atomic<std::uint32_t> cached_pid{0};
void forget_pid() noexcept {
  cached_pid.store(0, std::memory_order_relaxed);
  cached_tid = 0;
}

// Registered when the library is loaded, before any thread exists (see futex.cpp's several_cpus:
// no lazily initialised static may be reachable from a forked child).
[[maybe_unused]] const bool forget_pid_in_children = pthread_atfork(nullptr, nullptr, forget_pid) == 0;

}  // namespace

constinit thread_local std::uint32_t cached_tid [[gnu::tls_model("initial-exec")]] = 0;

std::uint32_t current_pid() noexcept {
  std::uint32_t pid = cached_pid.load(std::memory_order_relaxed);
  if (pid == 0) {
    pid = static_cast<std::uint32_t>(::getpid());
    cached_pid.store(pid, std::memory_order_relaxed);
  }
  return pid;
}

std::uint32_t current_tid() noexcept { return this_thread_id(); }

bool process_is_alive(std::uint32_t pid) noexcept {
  if (pid == 0) {
    return false;
  }
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
    return false;
  }
  // It exists, but a zombie has finished: its parent just has not reaped it yet.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string field;
  std::string line;
  if (!std::getline(stat, line)) {
    return true;  // no /proc: trust kill()
  }
  const auto after_name = line.rfind(')');  // the command name may contain spaces and ')'
  if (after_name == std::string::npos || after_name + 2 >= line.size()) {
    return true;
  }
  const char state = line[after_name + 2];
  return state != 'Z' && state != 'X';
}

std::uint32_t process_of_thread(std::uint32_t tid) {
  std::ifstream status("/proc/" + std::to_string(tid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Tgid:", 0) == 0) {
      return static_cast<std::uint32_t>(std::stoul(line.substr(5)));
    }
  }
  return 0;
}

}  // namespace multiproc::detail
