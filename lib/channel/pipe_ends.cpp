#include <multiproc/detail/channel/pipe_ends.hpp>

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <vector>

#include <multiproc/detail/os/liveness.hpp>
#include <multiproc/detail/os/shared_layout.hpp>

namespace multiproc::detail {

namespace {

constexpr std::uint32_t pid_mask = ~confirmed_bit;

std::atomic_ref<std::uint32_t> slot(EndHolders& end, int i) { return shared_atomic(end.holder[i]); }

void hold_as(EndHolders& end, std::uint32_t pid, bool confirmed) noexcept {
  const std::uint32_t want = pid | (confirmed ? confirmed_bit : 0);
  int free_slot = -1;
  bool others = false;
  for (int i = 0; i < EndHolders::slots; ++i) {
    std::uint32_t seen = slot(end, i).load(std::memory_order_acquire);
    if ((seen & pid_mask) == pid) {
      if (confirmed && (seen & confirmed_bit) == 0) {
        slot(end, i).compare_exchange_strong(seen, want, std::memory_order_acq_rel);
      }
      return;
    }
    others = others || seen != 0;
    if (seen == 0 && free_slot < 0) {
      free_slot = i;
    }
  }
  if (others) {
    shared_atomic(end.shared).store(1, std::memory_order_relaxed);
  }
  for (int i = std::max(free_slot, 0); i < EndHolders::slots; ++i) {
    std::uint32_t empty = 0;
    if (slot(end, i).compare_exchange_strong(empty, want, std::memory_order_acq_rel)) {
      return;
    }
  }
  shared_atomic(end.overflow).store(1, std::memory_order_relaxed);
}

// The ends open in this process, for the children it forks.
struct Tracked {
  std::mutex mutex;
  std::vector<EndHolders*> ends;
};
// Made when the library is loaded, before any thread exists, and never destroyed: fork handlers
// use it until the process ends, and a lazily initialised static could be caught mid-initialisation
// by a fork.
Tracked* const tracked_ends = new Tracked;
Tracked& tracked() { return *tracked_ends; }

void before_fork() { tracked().mutex.lock(); }
void after_fork_in_parent() { tracked().mutex.unlock(); }
void after_fork_in_child() {
  // getpid(), not current_pid(): this handler may run before the pid cache is refreshed.
  const auto pid = static_cast<std::uint32_t>(::getpid());
  for (EndHolders* end : tracked().ends) {
    hold_as(*end, pid, false);
  }
  tracked().mutex.unlock();
}

}  // namespace

void hold_end(EndHolders& end, bool confirmed) noexcept { hold_as(end, current_pid(), confirmed); }

void release_end(EndHolders& end) noexcept {
  const std::uint32_t me = current_pid();
  for (int i = 0; i < EndHolders::slots; ++i) {
    std::uint32_t seen = slot(end, i).load(std::memory_order_acquire);
    if ((seen & pid_mask) == me) {
      slot(end, i).compare_exchange_strong(seen, 0, std::memory_order_acq_rel);
    }
  }
}

bool end_abandoned(EndHolders& end) noexcept {
  if (shared_atomic(end.overflow).load(std::memory_order_relaxed) != 0) {
    return false;
  }
  const std::uint32_t me = current_pid();
  const bool was_shared = shared_atomic(end.shared).load(std::memory_order_relaxed) != 0;
  for (int i = 0; i < EndHolders::slots; ++i) {
    std::uint32_t seen = slot(end, i).load(std::memory_order_acquire);
    const std::uint32_t pid = seen & pid_mask;
    if (pid == 0 || (pid == me && (seen & confirmed_bit) == 0 && was_shared)) {
      continue;
    }
    if (pid == me || process_is_alive(pid)) {
      return false;
    }
    slot(end, i).compare_exchange_strong(seen, 0, std::memory_order_acq_rel);  // a dead holder: forget it
  }
  return true;
}

[[maybe_unused]] const bool fork_handlers = pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child) == 0;

void track_end(EndHolders& end) {
  std::scoped_lock guard(tracked().mutex);
  tracked().ends.push_back(&end);
}

void untrack_end(EndHolders& end) noexcept {
  std::scoped_lock guard(tracked().mutex);
  std::erase(tracked().ends, &end);
}

}  // namespace multiproc::detail
