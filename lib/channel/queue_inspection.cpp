// Queue<T> (both backends) as `multiproc inspect` shows it: capacity, depth, closed, sleepers,
// unfinished tasks; for a codec queue also its ring's bytes and lock.
#include <algorithm>

#include <multiproc/detail/channel/queue_backends.hpp>

#include "ring/ring_inspection.hpp"
#include "sync/lock_inspection.hpp"

namespace multiproc::detail {

namespace {

void add_signals(FieldList& out, const QueueSignals& s) {
  out.add("closed", s.closed != 0);
  out.add("consumers_may_be_asleep", s.consumers_waiting != 0);
  out.add("producers_may_be_asleep", s.producers_waiting != 0);
  out.add("unfinished_tasks", s.unfinished_tasks);
}

bool inspect_slot_queue(const SegmentSnapshot& snapshot, FieldList& out) {
  const auto control = snapshot.control<SlotQueueControl>();
  if (!control) {
    return false;
  }
  // The capacity the creator recorded, if it is one the ring could have (it comes from shared memory).
  const std::uint64_t slots = snapshot.header().element_count;
  add_positions(out, control->capacity != 0 && control->capacity <= slots ? control->capacity : slots,
                control->ring.write_pos, control->ring.read_pos);
  add_signals(out, control->signals);
  return true;
}

bool inspect_record_queue(const SegmentSnapshot& snapshot, FieldList& out) {
  const auto control = snapshot.control<RecordQueueControl>();
  if (!control) {
    return false;
  }
  const std::uint64_t ring_bytes = snapshot.header().element_count;
  const auto& ring = control->ring;
  out.add("capacity", ring.max_messages);
  out.add("depth", ring.messages);
  out.add("ring_bytes", ring_bytes);
  out.add("bytes_used",
          ring.write_pos >= ring.read_pos ? std::min(ring.write_pos - ring.read_pos, ring_bytes) : std::uint64_t{0});
  add_signals(out, control->signals);
  describe_lock(ring.lock, false, out, "lock_");
  return true;
}

std::string serialised(const std::string&) { return "(serialised)"; }

[[maybe_unused]] const bool queue_inspectors_registered =
    register_inspector(ObjectKind::queue, {slot_message_type, inspect_slot_queue}) &&
    register_inspector(ObjectKind::byte_queue, {serialised, inspect_record_queue}) &&
    register_inspector(ObjectKind::joinable_queue, {slot_message_type, inspect_slot_queue}) &&
    register_inspector(ObjectKind::joinable_byte_queue, {serialised, inspect_record_queue});

}  // namespace

}  // namespace multiproc::detail
