#include <multiproc/detail/ring/locked_record_ring.hpp>

#include <array>
#include <mutex>
#include <string>

#include <multiproc/error.hpp>

namespace multiproc::detail {

namespace {

// relaxed: every field is written under the lock; a lock-free reader only takes a hint from it.
std::uint64_t load(const std::uint64_t& field) noexcept { return shared_atomic(field).load(std::memory_order_relaxed); }
void store(std::uint64_t& field, std::uint64_t value) noexcept {
  shared_atomic(field).store(value, std::memory_order_relaxed);
}

}  // namespace

LockedRecordRing::LockedRecordRing(LockedRecordRingControl& control, std::byte* bytes, std::size_t capacity) noexcept
    : control_(&control), buffer_(bytes, capacity), lock_(Lock::borrow_t{}, control.lock) {}

void LockedRecordRing::initialise(LockedRecordRingControl& control, std::size_t max_messages, std::uint64_t message_type) {
  Lock::initialise(control.lock);
  control.max_messages = max_messages;
  control.message_type = message_type;
}

Attempted LockedRecordRing::write(std::span<const std::byte> message, std::uint32_t tag, std::uint32_t* committed) {
  buffer_.check_fits(message.size(), "multiproc::Queue");
  const std::size_t need = record_bytes(message.size());
  const std::size_t capacity = buffer_.capacity();
  // Lock-free first look: a full ring (the common case of a waiting producer) costs no lock.
  if (load(control_->write_pos) - load(control_->read_pos) > capacity - need ||
      load(control_->messages) >= load(control_->max_messages)) {
    return Attempted::blocked;
  }
  std::scoped_lock guard(lock_);
  recount_if_recovered();
  const std::uint64_t read_pos = control_->read_pos;
  const std::uint64_t write_pos = control_->write_pos;
  if (write_pos - read_pos > capacity - need || control_->messages >= control_->max_messages) {
    return Attempted::blocked;
  }
  const std::span<const std::byte> parts[] = {message};
  const std::size_t written = buffer_.write_record(write_pos, parts, tag);
  if (committed != nullptr) {
    // relaxed: read by `multiproc gc` only once the writer no longer holds the message's segment;
    // giving up that hold (close(2) of its flocked file) comes after this store.
    shared_atomic(*committed).store(1, std::memory_order_relaxed);
  }
  store(control_->write_pos, write_pos + written);
  store(control_->messages, control_->messages + 1);
  return Attempted::done;
}

Attempted LockedRecordRing::try_read(std::vector<std::byte>& message, ReferenceTaker* taker) {
  // Lock-free first look: an empty ring (the common case of a waiting consumer) costs no lock, so
  // spinning consumers do not hold up the producer that is about to fill it.
  if (load(control_->read_pos) == load(control_->write_pos)) {
    return Attempted::blocked;
  }
  std::scoped_lock guard(lock_);
  recount_if_recovered();
  const std::uint64_t read_pos = control_->read_pos;
  const std::uint64_t write_pos = control_->write_pos;
  if (read_pos == write_pos) {
    return Attempted::blocked;
  }
  const RecordKind record = buffer_.checked_record(read_pos, write_pos - read_pos, "multiproc::Queue");
  const std::size_t length = record.length;
  if (!record.reference) {
    message.resize(length);
    buffer_.copy_out(read_pos + sizeof(RecordHeader), message.data(), length);
  } else {
    if (taker == nullptr || length > max_reference_bytes) {
      throw LayoutMismatch("multiproc::Queue: corrupt record in the ring (a reference of " + std::to_string(length) +
                           " bytes where none can be)");
    }
    std::array<std::byte, max_reference_bytes> reference{};
    buffer_.copy_out(read_pos + sizeof(RecordHeader), reference.data(), length);
    taker->take(std::span<const std::byte>(reference.data(), length));
  }
  store(control_->read_pos, read_pos + record_bytes(length));
  store(control_->messages, control_->messages - 1);
  return Attempted::done;
}

void LockedRecordRing::recount_if_recovered() {
  if (!lock_.recovered()) {
    return;
  }
  // Each record is checked against the bytes left, and each takes at least a header, so a corrupt
  // ring ends the walk with LayoutMismatch, never a loop without end.
  std::uint64_t count = 0;
  const std::uint64_t write_pos = control_->write_pos;
  for (std::uint64_t at = control_->read_pos; at != write_pos; ++count) {
    at += record_bytes(buffer_.checked_record(at, write_pos - at, "multiproc::Queue").length);
  }
  store(control_->messages, count);
}

std::size_t LockedRecordRing::messages_in(const LockedRecordRingControl& control) noexcept {
  return static_cast<std::size_t>(load(control.messages));
}

std::size_t LockedRecordRing::max_messages() const noexcept {
  return static_cast<std::size_t>(load(control_->max_messages));
}

}  // namespace multiproc::detail
