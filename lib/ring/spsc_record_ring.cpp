#include <multiproc/detail/ring/spsc_record_ring.hpp>

#include <atomic>
#include <climits>

#include "os/futex.hpp"

namespace multiproc::detail {

std::uint32_t bell_state(const Bell& bell) noexcept {
  // acquire: pairs with ring()'s seq_cst bump, so what the ringer published before ringing is seen.
  return std::atomic_ref<const std::uint32_t>(bell.rings).load(std::memory_order_acquire);
}

void ring(Bell& bell) noexcept {
  // seq_cst: the bump and wake_sleepers' seq_cst read of `sleepers` pair with the sleeper's seq_cst
  // raise of `sleepers` and the kernel's comparison of `rings` (see sleep_while_equal).
  std::atomic_ref<std::uint32_t>(bell.rings).fetch_add(1, std::memory_order_seq_cst);
  wake_sleepers(bell.rings, bell.sleepers, INT_MAX);
}

bool wait_for_ring(Bell& bell, std::uint32_t seen, Deadline deadline, bool spin) noexcept {
  return sleep_while_equal(bell.rings, bell.sleepers, seen, deadline, Recheck::never, spin ? Spin::first : Spin::never);
}

namespace {
std::uint64_t acquire(const std::uint64_t& position) noexcept {
  return std::atomic_ref<const std::uint64_t>(position).load(std::memory_order_acquire);
}
void release(std::uint64_t& position, std::uint64_t value) noexcept {
  std::atomic_ref<std::uint64_t>(position).store(value, std::memory_order_release);
}
}  // namespace

bool SpscBytes::try_write(std::span<const std::span<const std::byte>> parts) {
  std::size_t length = 0;
  for (const auto& part : parts) {
    length += part.size();
  }
  buffer_.check_fits(length, owner_);
  // The producer's own position needs no ordering; the consumer's is acquired so that its copy-out
  // of the bytes we are about to overwrite has finished.
  const std::uint64_t tail = std::atomic_ref<const std::uint64_t>(control_->tail).load(std::memory_order_relaxed);
  const std::uint64_t head = acquire(control_->head);
  if (tail - head > buffer_.capacity() - RecordBuffer::record_bytes(length)) {
    return false;
  }
  release(control_->tail, tail + buffer_.write_record(tail, parts));
  return true;
}

bool SpscBytes::try_read(std::vector<std::byte>& message) {
  const std::uint64_t head = std::atomic_ref<const std::uint64_t>(control_->head).load(std::memory_order_relaxed);
  const std::uint64_t tail = acquire(control_->tail);
  if (head == tail) {
    return false;
  }
  const std::size_t length = buffer_.checked_length(head, tail - head, owner_);
  message.resize(length);
  buffer_.copy_out(head + sizeof(RecordHeader), message.data(), length);
  release(control_->head, head + RecordBuffer::record_bytes(length));
  return true;
}

std::size_t SpscBytes::queued_bytes() const noexcept {
  const std::uint64_t head = acquire(control_->head);
  return static_cast<std::size_t>(acquire(control_->tail) - head);
}

void SpscBytes::reset() noexcept {
  release(control_->head, 0);
  release(control_->tail, 0);
}

}  // namespace multiproc::detail
