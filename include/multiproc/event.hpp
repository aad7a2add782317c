#pragma once
// Event: a flag that processes and threads wait on, as Python's multiprocessing.Event.
//
//   multiproc::Event stop;
//   // in a child:  while (!stop.is_set()) work();     or   stop.wait();
//   stop.set();   // wakes every waiter
//
// Waiters sleep on a futex and use no CPU. set() makes a system call only if someone waits.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <string_view>

#include <multiproc/detail/os/deadline.hpp>
#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/export.hpp>
#include <multiproc/detail/os/ready_bridge.hpp>
#include <multiproc/segment.hpp>

namespace multiproc {

// Shared state. Fixed layout, trivially copyable.
struct EventState {
  // 1 when set, else 0; the futex word waiters sleep on while it is 0. set() exchanges it with
  // seq_cst (a release: what the setter wrote before set() is visible to a waiter that sees 1,
  // and ordered before the read of `sleepers`); clear() stores 0; readers load with acquire.
  std::uint32_t flag;
  // Waiters asleep on `flag`.
  std::uint32_t sleepers;
};
static_assert(std::is_trivially_copyable_v<EventState> && sizeof(EventState) == 8 && alignof(EventState) == 4);
static_assert(detail::atomic_across_processes<std::uint32_t>);

class MULTIPROC_API Event {
 public:
  Event() : Event(Where()) {}
  Event(create_t how, std::string_view name) : Event(Where(how, name)) {}
  Event(open_t how, std::string_view name) : Event(Where(how, name)) {}
  Event(open_or_create_t how, std::string_view name) : Event(Where(how, name)) {}
  Event(Event&&) noexcept;
  Event& operator=(Event&&) noexcept;
  ~Event();

  void set();
  void clear();
  [[nodiscard]] bool is_set() const noexcept;
  // Blocks until the event is set.
  void wait();
  // Returns true once the event is set, false if `timeout` passed first (monotonic clock).
  template <class Rep, class Period>
  [[nodiscard]] bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(detail::deadline_after(timeout));
  }

  // Empty for an anonymous event.
  [[nodiscard]] const std::string& name() const noexcept { return segment_.name(); }
  // The name it travels by to another process (see codec.hpp); ValueError when anonymous.
  [[nodiscard]] const std::string& name_to_travel() const { return segment_.name_to_travel("Event"); }

  // A file descriptor for epoll/poll or Boost.Asio that polls readable while the event is set:
  // from the moment it is set until this process next sees it clear (clear(), is_set() returning
  // false, or a wait that timed out). The first call starts a helper thread that waits on the
  // event for this process. The fd belongs to the event: do not close it. Do not call it from
  // two threads at once.
  [[nodiscard]] int ready_fd();

 private:
  explicit Event(const Where& where);
  [[nodiscard]] bool wait_until(detail::Deadline deadline);
  void saw_clear() const noexcept;

  Segment segment_;
  EventState* state_;
  std::unique_ptr<detail::ReadyBridge> ready_;  // made by the first ready_fd()
};

}  // namespace multiproc
