#pragma once
// Internal (lib/process/family.cpp): this process's bookkeeping of itself and of its children,
// which process.cpp's Process objects update as they start, move, end and are abandoned: who this
// process is, which children still run, which are daemons to end at exit.
#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include <sys/types.h>

#include <multiproc/process.hpp>

namespace multiproc::detail {

// Per-process bookkeeping. A child starts with fresh copies (see run_in_child).
struct Family {
  std::string identity;                // "" in the main process, "1" in Process-1, "1:2" below it
  std::atomic<int> children_named{0};  // for the default names of this process's children
  Process* current = nullptr;          // the running Process object inside a child
  Process* parent = nullptr;           // inside a child: fork's copy of the parent's own object
  bool is_daemon = false;              // this process is a daemon child: it may not start others
  std::mutex children_mutex;           // guards the lists below; held across fork so a child gets it free
  std::vector<pid_t> abandoned;        // started children whose Process object was destroyed unjoined
  std::vector<Process*> running;       // Process objects of started, not yet reaped children
  std::vector<pid_t> daemons;          // daemon children not yet reaped, with or without an object
};

// This process's Family: made at load time, never destroyed (children and atexit code use it).
Family& family();

// Python's _identity: "2" for the second child of the main process, "2:1" for the first below it.
std::string next_identity();

// Reaps abandoned children that have ended, so fire-and-forget children do not pile up as zombies.
void reap_abandoned();

// At normal exit, as Python's _exit_function: SIGTERM to every daemon child still running, then
// join them; one that is still there after a second is killed, so that exit never hangs. Also
// registered with atexit.
void end_daemons() noexcept;

}  // namespace multiproc::detail
