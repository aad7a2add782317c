#pragma once
// Semaphore and BoundedSemaphore, shared by processes and threads, as Python's.
//
//   multiproc::Semaphore slots{3};        // three holders at a time
//   slots.acquire();  ...  slots.release();
//   if (slots.acquire(std::chrono::milliseconds(100))) { ...; slots.release(); }
//
// A semaphore has no owner: any thread or process may release it. A holder that dies without
// releasing keeps its unit, as in Python; use a Lock where death must be recovered from.
// An acquirer with nothing to take sleeps on a futex and uses no CPU.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <string_view>

#include <multiproc/detail/os/deadline.hpp>
#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/export.hpp>
#include <multiproc/segment.hpp>

namespace multiproc {

// Shared state. Fixed layout, trivially copyable.
struct SemaphoreState {
  // The count, and the futex word acquirers sleep on while it is 0. Decremented by acquirers
  // (CAS, acquire order: what the releaser wrote before release() is visible to the acquirer),
  // incremented by release() (CAS, seq_cst: orders it before the read of `sleepers`).
  std::uint32_t value;
  // Acquirers asleep on `value`; release() makes the wake system call only when it is non-zero.
  std::uint32_t sleepers;
  // BoundedSemaphore: the start value, above which release() refuses to go (0 is a bound too).
  // 0 and unused for a Semaphore, whose limit is INT_MAX. Written once by the creator before
  // publication, read-only afterwards.
  std::uint32_t bound;
};
static_assert(std::is_trivially_copyable_v<SemaphoreState> && sizeof(SemaphoreState) == 12 &&
              alignof(SemaphoreState) == 4 && offsetof(SemaphoreState, sleepers) == 4);
static_assert(detail::atomic_across_processes<std::uint32_t>);

class MULTIPROC_API Semaphore {
 public:
  explicit Semaphore(int value = 1) : Semaphore(Where(), ObjectKind::semaphore, value) {}
  Semaphore(create_t how, std::string_view name, int value = 1)
      : Semaphore(Where(how, name), ObjectKind::semaphore, value) {}
  Semaphore(open_t how, std::string_view name) : Semaphore(Where(how, name), ObjectKind::semaphore, 0) {}
  Semaphore(open_or_create_t how, std::string_view name, int value = 1)
      : Semaphore(Where(how, name), ObjectKind::semaphore, value) {}

  // Blocks until a unit is available and takes it.
  void acquire();
  // Returns false if no unit became available within `timeout` (monotonic clock).
  template <class Rep, class Period>
  [[nodiscard]] bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return acquire_until(detail::deadline_after(timeout));
  }
  [[nodiscard]] bool try_acquire();
  // Adds `n` units, waking up to `n` sleepers. Throws ValueError for n < 1, and
  // TooManyReleases when a BoundedSemaphore would exceed its start value.
  void release(int n = 1);
  [[nodiscard]] int get_value() const noexcept;

  // The standard names, so that std::scoped_lock works (Python's `with sem:`).
  void lock() { acquire(); }
  void unlock() { release(); }
  [[nodiscard]] bool try_lock() { return try_acquire(); }

  // Empty for an anonymous semaphore.
  [[nodiscard]] const std::string& name() const noexcept { return segment_.name(); }
  // The name it travels by to another process (see codec.hpp); ValueError when anonymous.
  [[nodiscard]] const std::string& name_to_travel() const { return segment_.name_to_travel("Semaphore"); }

 protected:
  Semaphore(const Where& where, ObjectKind kind, int value);

 private:
  [[nodiscard]] bool acquire_until(detail::Deadline deadline);

  Segment segment_;
  SemaphoreState* state_;
  bool bounded_;  // a BoundedSemaphore (the segment's kind says so; opening checks it)
};

// A Semaphore that may not be released above its start value.
class MULTIPROC_API BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(int value = 1) : Semaphore(Where(), ObjectKind::bounded_semaphore, value) {}
  BoundedSemaphore(create_t how, std::string_view name, int value = 1)
      : Semaphore(Where(how, name), ObjectKind::bounded_semaphore, value) {}
  BoundedSemaphore(open_t how, std::string_view name) : Semaphore(Where(how, name), ObjectKind::bounded_semaphore, 0) {}
  BoundedSemaphore(open_or_create_t how, std::string_view name, int value = 1)
      : Semaphore(Where(how, name), ObjectKind::bounded_semaphore, value) {}
};

}  // namespace multiproc
