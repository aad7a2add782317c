#pragma once
// Internal: the calling thread's kernel id, inline for the Lock's fast path (the call through the
// exported current_tid() cost an uncontended acquire/release pair 14 instructions of 200).
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>

namespace multiproc::detail {

// The calling thread's id; 0 until it is first asked for, and reset in a forked child (whose only
// thread has a new id) by the fork handler in liveness.cpp. initial-exec: read at a fixed offset
// from the thread pointer. A library loaded with dlopen (under the Python module) still finds
// room for these 4 bytes in the static TLS reserve glibc keeps for that case.
extern constinit thread_local std::uint32_t cached_tid [[gnu::tls_model("initial-exec")]];

inline std::uint32_t this_thread_id() noexcept {
  if (cached_tid == 0) [[unlikely]] {
    cached_tid = static_cast<std::uint32_t>(::gettid());
  }
  return cached_tid;
}

}  // namespace multiproc::detail
