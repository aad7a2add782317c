#include <multiproc/detail/ring/locked_record_ring.hpp>

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
    : control_(&control), buffer_(bytes, capacity), lock_(Lock::borrow_t{}, control.lock) {}

void ByteRing::initialise(ByteRingControl& control, std::size_t max_messages, std::uint64_t message_type) {
  Lock::initialise(control.lock);
  control.max_messages = max_messages;
  control.message_type = message_type;
}

Attempted ByteRing::try_write(std::span<const std::byte> message) {
  buffer_.check_fits(message.size(), "multiproc::Queue");
  const std::size_t need = record_bytes(message.size());
  const std::size_t capacity = buffer_.capacity();
  // Lock-free first look: a full ring (the common case of a waiting producer) costs no lock.
  if (load(control_->tail) - load(control_->head) > capacity - need ||
      load(control_->messages) >= load(control_->max_messages)) {
    return Attempted::blocked;
  }
  // A recovered lock needs no repair: a dead writer never moved `tail`, a dead reader never `head`.
  std::scoped_lock guard(lock_);
  const std::uint64_t head = control_->head;
  const std::uint64_t tail = control_->tail;
  if (tail - head > capacity - need || control_->messages >= control_->max_messages) {
    return Attempted::blocked;
  }
  const std::span<const std::byte> parts[] = {message};
  store(control_->tail, tail + buffer_.write_record(tail, parts));
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
  const std::size_t length = buffer_.checked_length(head, tail - head, "multiproc::Queue");
  message.resize(length);
  buffer_.copy_out(head + sizeof(RecordHeader), message.data(), length);
  store(control_->head, head + record_bytes(length));
  store(control_->messages, control_->messages - 1);
  return Attempted::done;
}

std::size_t ByteRing::messages_in(const ByteRingControl& control) noexcept {
  return static_cast<std::size_t>(load(control.messages));
}

std::size_t ByteRing::max_messages() const noexcept { return static_cast<std::size_t>(load(control_->max_messages)); }

}  // namespace multiproc::detail
