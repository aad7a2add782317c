#include <multiproc/detail/byte_ring.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <string>

#include <multiproc/error.hpp>

namespace multiproc::detail {

namespace {

std::uint64_t load(const std::uint64_t& field) noexcept {
  return std::atomic_ref<const std::uint64_t>(field).load(std::memory_order_relaxed);
}
void store(std::uint64_t& field, std::uint64_t value) noexcept {
  std::atomic_ref<std::uint64_t>(field).store(value, std::memory_order_relaxed);
}

}  // namespace

ByteRing::ByteRing(ByteRingControl& control, std::byte* bytes, std::size_t capacity) noexcept
    : control_(&control), bytes_(bytes), capacity_(capacity), lock_(Lock::borrow_t{}, control.lock) {}

void ByteRing::initialise(ByteRingControl& control, std::size_t max_messages, std::uint64_t message_type) {
  Lock::initialise(control.lock);
  control.max_messages = max_messages;
  control.message_type = message_type;
}

std::size_t ByteRing::record_bytes(std::size_t message_bytes) noexcept {
  return sizeof(RecordHeader) + (message_bytes + 7) / 8 * 8;
}

void ByteRing::copy_in(std::uint64_t at, const void* from, std::size_t size) noexcept {
  if (size == 0) {
    return;  // an empty message's data() may be null: no memcpy with it
  }
  const std::size_t offset = at % capacity_;
  const std::size_t first = std::min(size, capacity_ - offset);
  std::memcpy(bytes_ + offset, from, first);
  std::memcpy(bytes_, static_cast<const std::byte*>(from) + first, size - first);
}

void ByteRing::copy_out(std::uint64_t at, void* to, std::size_t size) const noexcept {
  if (size == 0) {
    return;
  }
  const std::size_t offset = at % capacity_;
  const std::size_t first = std::min(size, capacity_ - offset);
  std::memcpy(to, bytes_ + offset, first);
  std::memcpy(static_cast<std::byte*>(to) + first, bytes_, size - first);
}

Attempted ByteRing::try_write(std::span<const std::byte> message) {
  const std::size_t need = record_bytes(message.size());
  if (need > capacity_ || message.size() > UINT32_MAX) {
    throw MessageTooLarge("multiproc::Queue: a message of " + std::to_string(message.size()) +
                          " bytes can never fit in this queue's " + std::to_string(capacity_) + "-byte ring");
  }
  // Lock-free first look: a full ring (the common case of a waiting producer) costs no lock.
  if (load(control_->tail) - load(control_->head) > capacity_ - need ||
      load(control_->messages) >= load(control_->max_messages)) {
    return Attempted::blocked;
  }
  // A recovered lock needs no repair: a dead writer never moved `tail`, a dead reader never `head`.
  std::scoped_lock guard(lock_);
  const std::uint64_t head = control_->head;
  const std::uint64_t tail = control_->tail;
  if (tail - head > capacity_ - need || control_->messages >= control_->max_messages) {
    return Attempted::blocked;
  }
  const RecordHeader header{static_cast<std::uint32_t>(message.size()), ~static_cast<std::uint32_t>(message.size())};
  copy_in(tail, &header, sizeof header);
  copy_in(tail + sizeof header, message.data(), message.size());
  store(control_->tail, tail + need);
  store(control_->messages, control_->messages + 1);
  return Attempted::done;
}

Attempted ByteRing::try_read(std::vector<std::byte>& message) {
  // Lock-free first look: an empty ring (the common case of a waiting consumer) costs no lock, so
  // spinning consumers do not hold up the producer that is about to fill it.
  if (load(control_->head) == load(control_->tail)) {
    return Attempted::blocked;
  }
  std::scoped_lock guard(lock_);
  const std::uint64_t head = control_->head;
  const std::uint64_t tail = control_->tail;
  if (head == tail) {
    return Attempted::blocked;
  }
  RecordHeader header{};
  copy_out(head, &header, sizeof header);
  // Never trust a length from shared memory: it must be one the ring wrote, inside what was written.
  if (header.inverse != ~header.length || tail - head > capacity_ || record_bytes(header.length) > tail - head ||
      head % 8 != 0) {
    throw LayoutMismatch("multiproc::Queue: corrupt record in the ring (length " + std::to_string(header.length) +
                         ", " + std::to_string(tail - head) + " bytes queued)");
  }
  message.resize(header.length);
  copy_out(head + sizeof header, message.data(), header.length);
  store(control_->head, head + record_bytes(header.length));
  store(control_->messages, control_->messages - 1);
  return Attempted::done;
}

std::size_t ByteRing::messages_in(const ByteRingControl& control) noexcept {
  return static_cast<std::size_t>(load(control.messages));
}

std::size_t ByteRing::max_messages() const noexcept { return static_cast<std::size_t>(load(control_->max_messages)); }

}  // namespace multiproc::detail
