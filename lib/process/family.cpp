#include "process/family.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace multiproc {

namespace detail {

namespace {

// Made when the library is loaded, before any thread exists (a lazily initialised static could be
// caught mid-initialisation by a fork), and never destroyed: children and atexit code use it.
Family* const the_family = new Family;

}  // namespace

Family& family() { return *the_family; }

std::string next_identity() {
  Family& f = family();
  const std::string number = std::to_string(f.children_named.fetch_add(1, std::memory_order_relaxed) + 1);
  return f.identity.empty() ? number : f.identity + ":" + number;
}

void reap_abandoned() {
  Family& f = family();
  std::scoped_lock guard(f.children_mutex);
  std::erase_if(f.abandoned, [&f](pid_t pid) {
    if (::waitpid(pid, nullptr, WNOHANG) == 0) {
      return false;
    }
    std::erase(f.daemons, pid);
    return true;
  });
}

void end_daemons() noexcept {
  Family& f = family();
  std::vector<pid_t> daemons;
  {
    std::scoped_lock guard(f.children_mutex);
    daemons.swap(f.daemons);
  }
  for (const pid_t pid : daemons) {
    ::kill(pid, SIGTERM);  // unreaped children of ours: their pids cannot have been reused
  }
  const auto patience = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  for (const pid_t pid : daemons) {
    while (::waitpid(pid, nullptr, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= patience) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

namespace {

[[maybe_unused]] const bool daemons_ended_at_exit = std::atexit(end_daemons) == 0;

}  // namespace

}  // namespace detail

using detail::Family;
using detail::family;
using detail::reap_abandoned;

void Process::take_place_of(Process& other) noexcept {
  Family& f = family();
  std::scoped_lock guard(f.children_mutex);
  std::replace(f.running.begin(), f.running.end(), &other, this);
}

void Process::forget() noexcept {
  Family& f = family();
  std::scoped_lock guard(f.children_mutex);
  std::erase(f.running, this);
  std::erase(f.daemons, pid_);
}

// Also closes the sentinel: the object is going away.
void Process::abandon() noexcept {
  if (pid_ != 0 && !exitcode_ && parent_pid_ == ::getpid()) {  // started here, not yet reaped
    bool reaped = true;  // or reaped elsewhere: nothing left to do
    try {
      reaped = try_reap();
    } catch (...) {
      forget();
    }
    if (!reaped) {
      Family& f = family();
      std::scoped_lock guard(f.children_mutex);
      std::erase(f.running, this);
      f.abandoned.push_back(pid_);  // a daemon stays in f.daemons
    }
  }
  close_pidfd();
}

Process& current_process() {
  Family& f = family();
  if (f.current != nullptr) {
    return *f.current;
  }
  return *Process::main_process_;
}

std::vector<Process*> active_children() {
  reap_abandoned();
  std::vector<Process*> started;
  {
    Family& f = family();
    std::scoped_lock guard(f.children_mutex);
    started = f.running;
  }
  std::erase_if(started, [](Process* p) { return !p->is_alive(); });  // reaps, so unlocked here
  return started;
}

Process* parent_process() { return family().parent; }

}  // namespace multiproc
