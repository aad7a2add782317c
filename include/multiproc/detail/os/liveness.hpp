#pragma once
// Internal: who the calling process is, and whether another one still runs. Used by the rings to
// recognise a slot left half-done by a process that died.
#include <cstdint>

#include <multiproc/export.hpp>

namespace multiproc::detail {

// getpid(), without a system call: cached, and refreshed in a child after fork.
MULTIPROC_API std::uint32_t current_pid() noexcept;

// gettid(), without a system call: cached per thread, and refreshed in a child after fork.
MULTIPROC_API std::uint32_t current_tid() noexcept;

// False once `pid` has exited (a zombie counts as exited). A pid recycled by a new process after
// the old one died reads as alive: callers treat that as "not yet known dead".
MULTIPROC_API bool process_is_alive(std::uint32_t pid) noexcept;

// The process a thread id belongs to (its thread group, from /proc/<tid>/status), or 0 when the
// thread is gone or /proc cannot say.
MULTIPROC_API std::uint32_t process_of_thread(std::uint32_t tid);

}  // namespace multiproc::detail
