#pragma once
// Internal: what ThreadSanitizer builds need to be told. Everything here is a no-op otherwise.
//
// MULTIPROC_TSAN is defined when compiling under -fsanitize=thread (gcc or clang).
#if defined(__SANITIZE_THREAD__)
#define MULTIPROC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MULTIPROC_TSAN 1
#endif
#endif

#ifdef MULTIPROC_TSAN
// The dynamic-annotations entry points the TSan runtime provides.
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
#endif

namespace multiproc::detail {

// Brackets reads that race by design and whose result is validated afterwards (a seqlock copy):
// TSan ignores the calling thread's reads in between, those made by intercepted calls such as
// memcpy included.
struct RacyReadsByDesign {
#ifdef MULTIPROC_TSAN
  RacyReadsByDesign() noexcept { AnnotateIgnoreReadsBegin(__FILE__, __LINE__); }
  ~RacyReadsByDesign() { AnnotateIgnoreReadsEnd(__FILE__, __LINE__); }
#endif
  RacyReadsByDesign(const RacyReadsByDesign&) = delete;
  RacyReadsByDesign& operator=(const RacyReadsByDesign&) = delete;
#ifndef MULTIPROC_TSAN
  RacyReadsByDesign() noexcept = default;
#endif
};

}  // namespace multiproc::detail
