#pragma once
// Internal: what every struct that lives in shared memory relies on. Such a struct is an ABI
// between processes, and between versions of this library: it is fixed-layout and trivially
// copyable, and beside it static_asserts pin its size, alignment and the offsets of the fields
// that must not share a cache line (lib/README.md draws each one).
#include <atomic>
#include <cstddef>
#include <type_traits>

namespace multiproc::detail {

// The unit of false sharing on the CPUs this library runs on (x86-64; arm64 cores use 64 too).
// Fields written by different sides of a ring are put this far apart.
// std::hardware_destructive_interference_size is not used: g++ warns that its value may change
// between compiler versions, and a layout shared with other processes must not change.
inline constexpr std::size_t cache_line = 64;

// True when std::atomic_ref<T> is atomic for other processes too. A type that is not always
// lock-free makes std::atomic_ref fall back to a lock table private to the calling process, so two
// processes would not be atomic with respect to each other at all.
template <class T>
inline constexpr bool atomic_across_processes = std::atomic_ref<std::remove_const_t<T>>::is_always_lock_free;

// Every atomic access to memory that another process may map goes through this.
template <class T>
[[nodiscard]] std::atomic_ref<T> shared_atomic(T& object) noexcept {
  static_assert(atomic_across_processes<T>,
                "multiproc: this type is not always lock-free: std::atomic_ref of it would be atomic only "
                "within one process");
  return std::atomic_ref<T>(object);
}

// True when fields at these two offsets lie on different cache lines (for the static_asserts).
constexpr bool on_separate_lines(std::size_t first, std::size_t second) noexcept {
  return first / cache_line != second / cache_line;
}

}  // namespace multiproc::detail
