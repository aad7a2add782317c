#include "shm/segment_checks.hpp"

#include <cctype>
#include <cstdio>

#include <multiproc/error.hpp>

namespace multiproc::detail {

void validate_name(std::string_view name) {
  if (name.empty()) {
    throw InvalidName("multiproc: a shared object's name must not be empty");
  }
  if (name.size() > max_name_length) {
    throw InvalidName("multiproc: name of " + std::to_string(name.size()) + " characters is longer than the " +
                      std::to_string(max_name_length) + " allowed");
  }
  for (const char c : name) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) == 0 && c != '.' && c != '_' && c != '-') {
      char shown[8];
      std::snprintf(shown, sizeof shown, std::isprint(byte) != 0 ? "'%c'" : "\\x%02x", byte);
      throw InvalidName("multiproc: name " + quoted(name) + " contains " + shown +
                        "; names use only letters, digits, '.', '_' and '-'");
    }
  }
}

std::string header_problem(const SegmentHeader& h, std::uint64_t actual) {
  if (h.magic != segment_magic) {
    return never_published(actual, h.magic) ? "it never became an object (its creator died or failed building it)"
                                            : "it is not a multiproc object";
  }
  if (h.layout_version != segment_layout_version) {
    return "it has layout version " + std::to_string(h.layout_version) + ", this library reads version " +
           std::to_string(segment_layout_version);
  }
  if (h.mapped_bytes != actual) {
    return "its header says " + std::to_string(h.mapped_bytes) + " bytes but it has " + std::to_string(actual) +
           " (truncated or corrupt)";
  }
  std::uint64_t prefix_end = 0;
  std::uint64_t element_bytes = 0;
  std::uint64_t elements_end = 0;
  if (h.prefix_offset < sizeof(SegmentHeader) || __builtin_add_overflow(h.prefix_offset, h.prefix_bytes, &prefix_end) ||
      prefix_end > h.elements_offset || __builtin_mul_overflow(h.element_count, h.element_size, &element_bytes) ||
      __builtin_add_overflow(h.elements_offset, element_bytes, &elements_end) || elements_end > actual ||
      h.element_align == 0 || (h.element_align & (h.element_align - 1)) != 0 || h.elements_offset % h.element_align != 0) {
    return "its offsets or element count do not fit its size (corrupt)";
  }
  return {};
}

}  // namespace multiproc::detail
