// SharedDict and SharedList as `multiproc inspect` shows them: size, entries, rebuilds, lock.
#include <multiproc/detail/store/shared_store.hpp>

#include "shm/inspection.hpp"
#include "sync/lock_inspection.hpp"

namespace multiproc::detail {

namespace {

bool inspect_store(const SegmentSnapshot& snapshot, FieldList& out) {
  const auto control = snapshot.control<StoreControl>();
  if (!control) {
    return false;
  }
  const SegmentHeader& h = snapshot.header();
  const std::uint64_t half = control->half_bytes;
  out.add("bytes", h.element_count);
  if (half == 0 || half > h.element_count / 2) {
    return false;
  }
  const std::uint64_t elements_end = h.elements_offset + h.element_count;  // checked by header_problem
  const auto live = snapshot.read_at<HalfHeader>(h.elements_offset + (control->active & 1) * half, elements_end);
  if (!live) {
    return false;
  }
  out.add("entries", live->count);
  out.add("rebuilds_after_crashes_or_clears", control->rebuilds);
  describe_lock(control->lock, false, out, "lock_");
  return true;
}

[[maybe_unused]] const bool store_inspectors_registered =
    register_inspector(ObjectKind::shared_dict, {no_element_type, inspect_store}) &&
    register_inspector(ObjectKind::shared_list, {no_element_type, inspect_store});

}  // namespace

}  // namespace multiproc::detail
