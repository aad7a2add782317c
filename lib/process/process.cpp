#include <multiproc/process.hpp>

#include <multiproc/error.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
extern "C" {  // glibc 2.36's <sys/pidfd.h> forgets its own extern "C"
#include <sys/pidfd.h>
}
#include <thread>
#include <sys/wait.h>
#include <unistd.h>

#include "os/demangle.hpp"
#include "process/family.hpp"

namespace multiproc {

using detail::end_daemons;
using detail::Family;
using detail::family;
using detail::next_identity;
using detail::reap_abandoned;

namespace {

// Longest sleep between polls of a child's state, where pidfds are missing.
constexpr auto pause_cap = std::chrono::milliseconds(10);

std::system_error system_error(const std::string& what) {
  return std::system_error(errno, std::generic_category(), "multiproc::Process: " + what);
}

void flush_stdio() {
  std::cout.flush();
  std::cerr.flush();
  std::clog.flush();
  std::fflush(nullptr);
}

// One write(2), so that reports from several children never interleave mid-line.
void report_uncaught(const std::string& process_name, const std::string& what) {
  const std::string text = "Process " + process_name + " (pid " + std::to_string(::getpid()) +
                           "): uncaught exception " + detail::current_exception_type() + ": " + what + "\n";
  const ssize_t ignored = ::write(STDERR_FILENO, text.data(), text.size());
  (void)ignored;
}

}  // namespace

Process::Process() : identity_(next_identity()), name_("Process-" + identity_) {}

Process::Process(Target target, std::string name)
    : target_(std::move(target)), identity_(next_identity()), name_(name.empty() ? "Process-" + identity_ : std::move(name)) {}

Process::Process(main_process_t) : name_("MainProcess"), pid_(::getpid()) {}

Process::Process(Process&& other) noexcept
    : target_(std::move(other.target_)),
      identity_(std::move(other.identity_)),
      name_(std::move(other.name_)),
      pid_(std::exchange(other.pid_, 0)),
      parent_pid_(std::exchange(other.parent_pid_, 0)),
      pidfd_(std::exchange(other.pidfd_, -1)),
      child_exit_code_(other.child_exit_code_),
      exitcode_(std::exchange(other.exitcode_, std::nullopt)),
      daemon_(other.daemon_),
      closed_(other.closed_) {
  take_place_of(other);
}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    abandon();
    target_ = std::move(other.target_);
    identity_ = std::move(other.identity_);
    name_ = std::move(other.name_);
    pid_ = std::exchange(other.pid_, 0);
    parent_pid_ = std::exchange(other.parent_pid_, 0);
    pidfd_ = std::exchange(other.pidfd_, -1);
    child_exit_code_ = other.child_exit_code_;
    exitcode_ = std::exchange(other.exitcode_, std::nullopt);
    daemon_ = other.daemon_;
    closed_ = other.closed_;
    take_place_of(other);
  }
  return *this;
}

Process::~Process() { abandon(); }


void Process::close_pidfd() noexcept {
  if (pidfd_ >= 0) {
    ::close(std::exchange(pidfd_, -1));
  }
}

void Process::start() {
  require_open("start");
  if (pid_ != 0) {
    throw ValueError("multiproc::Process::start: " + name_ + " was already started");
  }
  if (family().is_daemon) {
    throw ValueError("multiproc::Process::start: " + current_process().name() +
                     " is a daemon, and daemons may not have children (as in Python)");
  }
  reap_abandoned();
  flush_stdio();
  Family& f = family();
  // Read before fork: the child cannot learn it later with getppid(), which says 1 (or a
  // subreaper) once this process has died, possibly before the child's first instruction.
  const pid_t parent = ::getpid();
  pid_t pid = 0;
  {
    // Holding the mutex across fork() means no other thread holds it at that instant, so the
    // child's copy is unlocked once this scope ends in both processes.
    std::scoped_lock guard(f.children_mutex);
    pid = ::fork();
    if (pid == 0) {
      f.abandoned.clear();  // the parent's children are not the child's to reap
      f.running.clear();
      f.daemons.clear();
    } else if (pid > 0) {
      f.running.push_back(this);
      if (daemon_) {
        f.daemons.push_back(pid);
      }
    }
  }
  if (pid == 0) {
    run_in_child(parent);
  }
  if (pid < 0) {
    throw system_error("fork failed");
  }
  pid_ = pid;
  parent_pid_ = parent;
  // Without pidfds (Linux < 5.3, valgrind, some sandboxes) everything still works: signals go
  // through kill(2), safe on our own unreaped child (its pid cannot be recycled before we reap it),
  // and join(timeout) polls instead of sleeping on the pidfd.
  pidfd_ = ::pidfd_open(pid, 0);
}

void Process::run_in_child(pid_t parent) {
  if (daemon_ && (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent)) {
    ::raise(SIGKILL);  // the parent is already gone (or the kernel cannot tie us to it)
  }
  Family& f = family();
  f.identity = identity_;
  f.children_named.store(0, std::memory_order_relaxed);
  f.parent = f.current != nullptr ? f.current : main_process_;
  f.current = this;
  f.is_daemon = daemon_;
  pid_ = ::getpid();
  parent_pid_ = parent;
  pidfd_ = -1;
  int code = 1;
  try {
    run();
    code = child_exit_code_;
  } catch (const std::exception& e) {
    report_uncaught(name_, e.what());
  } catch (...) {
    report_uncaught(name_, "(not derived from std::exception)");
  }
  flush_stdio();
  end_daemons();  // _exit runs no atexit handlers
  ::_exit(code);
}

void Process::run() {
  if (target_) {
    child_exit_code_ = target_();
  }
}

void Process::require_started(const char* operation) const {
  if (pid_ == 0) {
    throw ValueError(std::string("multiproc::Process::") + operation + ": " + name_ + " was not started");
  }
  if (parent_pid_ != ::getpid()) {
    throw ValueError(std::string("multiproc::Process::") + operation + ": only the process that started " +
                           name_ + " may do this");
  }
}

void Process::require_open(const char* operation) const {
  if (closed_) {
    throw ValueError(std::string("multiproc::Process::") + operation + ": " + name_ + " is closed");
  }
}

// The sentinel stays open: a caller may still hold it (Python keeps it until close()).
void Process::record(int wait_status) {
  exitcode_ = WIFSIGNALED(wait_status) ? -WTERMSIG(wait_status) : WEXITSTATUS(wait_status);
  forget();
}

bool Process::try_reap() {
  if (exitcode_) {
    return true;
  }
  int status = 0;
  const pid_t rc = ::waitpid(pid_, &status, WNOHANG);
  if (rc == pid_) {
    record(status);
    return true;
  }
  if (rc < 0 && errno != EINTR) {
    throw system_error("waitpid on " + name_ + " failed (was the child reaped elsewhere?)");
  }
  return false;
}

void Process::join() {
  require_open("join");
  require_started("join");
  while (!exitcode_) {
    int status = 0;
    if (::waitpid(pid_, &status, 0) == pid_) {
      record(status);
    } else if (errno != EINTR) {
      throw system_error("waitpid on " + name_ + " failed (was the child reaped elsewhere?)");
    }
  }
}

bool Process::join_until(Clock::time_point deadline) {
  require_open("join");
  require_started("join");
  for (auto pause = std::chrono::microseconds(100); pidfd_ < 0 && !try_reap(); pause = std::min<std::chrono::microseconds>(pause * 2, pause_cap)) {
    if (Clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::min<Clock::duration>(pause, deadline - Clock::now()));
  }
  while (!try_reap()) {
    const auto left = std::max(deadline - Clock::now(), Clock::duration::zero());
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(left);
    const timespec timeout{static_cast<time_t>(seconds.count()),
                           static_cast<long>(std::chrono::nanoseconds(left - seconds).count())};
    pollfd ended{pidfd_, POLLIN, 0};
    const int rc = ::ppoll(&ended, 1, &timeout, nullptr);
    if (rc == 0) {
      return try_reap();
    }
    if (rc < 0 && errno != EINTR) {
      throw system_error("ppoll on " + name_ + "'s pidfd failed");
    }
  }
  return true;
}

bool Process::is_alive() {
  require_open("is_alive");
  if (pid_ == 0) {
    return false;
  }
  if (parent_pid_ != ::getpid()) {
    // A child is alive to itself, and sees its parent alive while it is still the parent's child
    // (a child whose parent dies is handed to another process).
    return pid_ == ::getpid() || pid_ == ::getppid();
  }
  return !try_reap();
}

int Process::sentinel() const {
  require_open("sentinel");
  return pidfd_;
}

void Process::set_daemon(bool daemon) {
  if (pid_ != 0) {
    throw ValueError("multiproc::Process::set_daemon: " + name_ + " was already started");
  }
  daemon_ = daemon;
}

void Process::close() {
  if (closed_) {
    return;
  }
  if (pid_ != 0 && parent_pid_ == ::getpid() && !try_reap()) {
    throw ValueError("multiproc::Process::close: " + name_ + " is still running; join or kill it first");
  }
  close_pidfd();
  closed_ = true;
}

std::optional<int> Process::exitcode() {
  require_open("exitcode");
  if (pid_ != 0 && parent_pid_ == ::getpid()) {
    try_reap();
  }
  return exitcode_;
}

void Process::send(int signal) {
  require_open(signal == SIGKILL ? "kill" : "terminate");
  require_started(signal == SIGKILL ? "kill" : "terminate");
  if (exitcode_) {
    return;  // already ended and reaped: nothing to signal, as in Python
  }
  // Our child is not reaped yet, so its pid is still its own: plain kill(2) reaches it.
  if (::kill(pid_, signal) != 0 && errno != ESRCH) {
    throw system_error("cannot signal " + name_);
  }
}

void Process::terminate() { send(SIGTERM); }

void Process::kill() { send(SIGKILL); }


int cpu_count() {
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  if (online < 1) {
    throw std::system_error(errno, std::generic_category(), "multiproc::cpu_count: sysconf(_SC_NPROCESSORS_ONLN) failed");
  }
  return static_cast<int>(online);
}

// At load time, like the family; never destroyed.
Process* const Process::main_process_ = new Process(Process::main_process_t{});

}  // namespace multiproc
