#include "shm/inspection.hpp"

#include <algorithm>
#include <array>

namespace multiproc::detail {

namespace {

constexpr std::size_t kinds_known = 32;  // ObjectKind numbers are small; this leaves room to grow
constinit std::array<KindInspector, kinds_known> inspectors{};

}  // namespace

std::vector<std::byte> SegmentSnapshot::element_bytes(std::uint64_t offset, std::uint64_t most) const {
  const std::uint64_t start = header_.elements_offset + offset;
  if (start < header_.elements_offset || start > bytes_) {
    return {};
  }
  const std::uint64_t count = std::min(most, bytes_ - start);
  return {base_ + start, base_ + start + count};
}

bool register_inspector(ObjectKind kind, KindInspector inspector) noexcept {
  const auto index = static_cast<std::size_t>(kind);
  if (index >= inspectors.size()) {
    return false;
  }
  inspectors[index] = inspector;
  return true;
}

const KindInspector* inspector_of(std::uint32_t kind) noexcept {
  if (kind >= inspectors.size() || inspectors[kind].inspect == nullptr) {
    return nullptr;
  }
  return &inspectors[kind];
}

}  // namespace multiproc::detail
