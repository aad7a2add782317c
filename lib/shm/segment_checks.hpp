#pragma once
// Internal (lib/shm/segment_checks.cpp): the checks that both the library's openers and the registry (multiproc ls/inspect)
// apply to names and to headers read from shared memory.
#include <cstdint>
#include <string>
#include <string_view>

#include <multiproc/segment.hpp>

namespace multiproc::detail {

// A name as messages show it: in double quotes. (Built by appending: GCC 12 gives a false
// -Wrestrict for "\"" + std::string(name).)
inline std::string quoted(std::string_view name) {
  std::string text;
  text.reserve(name.size() + 2);
  text += '"';
  text += name;
  text += '"';
  return text;
}

// Throws InvalidName unless `name` is 1..max_name_length of [A-Za-z0-9._-]: no '/', so a name
// can never reach outside /dev/shm.
void validate_name(std::string_view name);

// Why a header copied out of a mapping of `actual` bytes cannot be used, or empty if it can: the
// magic, the layout version, the recorded size against the real one, and every offset and count
// against that size (overflow included). Does not know which object the caller expects.
std::string header_problem(const SegmentHeader& h, std::uint64_t actual);

// A file that holds no object and never will: empty, or with a header never published (magic 0, or
// segment_abandoned). Only a creator that died or failed leaves one (under a name, only libraries
// older than this one, which built under the name itself). Anything else without a complete
// header is foreign or corrupt, and is never removed on our own initiative.
inline bool never_published(std::uint64_t file_bytes, std::uint32_t magic) {
  return file_bytes == 0 || (file_bytes >= sizeof(SegmentHeader) && (magic == 0 || magic == segment_abandoned));
}

// Where POSIX shared memory objects live on Linux (glibc's shm_open).
inline constexpr std::string_view shm_dir = "/dev/shm";
// The file of a named segment still being built: "multiproc~building-<pid>-<n>". '~' is in no
// valid name, so it can never be a name's file; it becomes the name's file when complete.
inline constexpr std::string_view building_prefix = "multiproc~building-";

}  // namespace multiproc::detail
