// SpscRing and MpmcRing as `multiproc inspect` shows them. (The rings are header-only templates.)
#include "ring/ring_inspection.hpp"

#include <algorithm>
#include <string_view>

#include <multiproc/detail/ring/slot_ring.hpp>
#include <multiproc/spsc_ring.hpp>

namespace multiproc::detail {

std::string slot_message_type(const std::string& element) {
  constexpr std::string_view slot = "multiproc::detail::Slot<";
  if (element.rfind(slot, 0) == 0 && element.back() == '>') {
    return element.substr(slot.size(), element.size() - slot.size() - 1);
  }
  return element;
}

void add_positions(FieldList& out, std::uint64_t capacity, std::uint64_t written, std::uint64_t read) {
  out.add("capacity", capacity);
  out.add("depth", written >= read ? std::min(written - read, capacity) : std::uint64_t{0});
}

namespace {

// A ring whose control block `Control` holds its two positions.
template <class Control>
bool inspect_ring(const SegmentSnapshot& snapshot, FieldList& out) {
  const auto control = snapshot.control<Control>();
  if (!control) {
    return false;
  }
  add_positions(out, snapshot.header().element_count, control->write_pos, control->read_pos);
  return true;
}

[[maybe_unused]] const bool ring_inspectors_registered =
    register_inspector(ObjectKind::spsc_ring, {element_type_as_is, inspect_ring<SpscControl>}) &&
    register_inspector(ObjectKind::mpmc_ring, {slot_message_type, inspect_ring<SlotRingControl>});

}  // namespace

}  // namespace multiproc::detail
