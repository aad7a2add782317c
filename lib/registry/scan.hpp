#pragma once
// Internal to the registry: reading one named object's file without trusting it.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/interprocess/mapped_region.hpp>

#include <multiproc/registry.hpp>
#include <multiproc/segment.hpp>

namespace multiproc::detail {

// A read-only mapping of a named object and the header copied out of it.
struct ReadOnlyView {
  boost::interprocess::mapped_region region;
  SegmentHeader header{};
  std::uint64_t bytes = 0;

  [[nodiscard]] const std::byte* base() const noexcept { return static_cast<const std::byte*>(region.get_address()); }
};

// Empty when the name vanished. A file too small for a header maps nothing and copies nothing.
std::optional<ReadOnlyView> map_read_only(std::string_view name);
// What the header of a mapped object says (without `mapped_by`).
SegmentInfo describe(std::string_view name, const ReadOnlyView& view);

[[noreturn]] void not_found(std::string_view name);

}  // namespace multiproc::detail
