#pragma once
// Internal: the checks that both the library's openers and the registry (multiproc ls/inspect)
// apply to names and to headers read from shared memory.
#include <cstdint>
#include <string>
#include <string_view>

#include <multiproc/segment.hpp>

namespace multiproc::detail {

// Throws InvalidName unless `name` is 1..max_name_length of [A-Za-z0-9._-]: no '/', so a name
// can never reach outside /dev/shm.
void validate_name(std::string_view name);

// Why a header copied out of a mapping of `actual` bytes cannot be used, or empty if it can: the
// magic, the layout version, the recorded size against the real one, and every offset and count
// against that size (overflow included). Does not know which object the caller expects.
std::string header_problem(const SegmentHeader& h, std::uint64_t actual);

}  // namespace multiproc::detail
