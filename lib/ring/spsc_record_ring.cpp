#include <multiproc/detail/ring/spsc_record_ring.hpp>

namespace multiproc::detail {

namespace {
std::uint64_t acquire(const std::uint64_t& position) noexcept {
  return shared_atomic(position).load(std::memory_order_acquire);
}
void release(std::uint64_t& position, std::uint64_t value) noexcept {
  shared_atomic(position).store(value, std::memory_order_release);
}
// A side's own position: it is the only writer, so it needs no ordering.
std::uint64_t own(const std::uint64_t& position) noexcept {
  return shared_atomic(position).load(std::memory_order_relaxed);
}
}  // namespace

bool SpscRecordRing::try_write(std::span<const std::span<const std::byte>> parts) {
  std::size_t length = 0;
  for (const auto& part : parts) {
    length += part.size();
  }
  buffer_.check_fits(length, owner_);
  const std::uint64_t write_pos = own(control_->write_pos);
  // acquire: the consumer's copy-out of the bytes we are about to overwrite has finished.
  const std::uint64_t read_pos = acquire(control_->read_pos);
  if (write_pos - read_pos > buffer_.capacity() - RecordBuffer::record_bytes(length)) {
    return false;
  }
  release(control_->write_pos, write_pos + buffer_.write_record(write_pos, parts));
  return true;
}

bool SpscRecordRing::try_read(std::vector<std::byte>& message) {
  const std::uint64_t read_pos = own(control_->read_pos);
  const std::uint64_t write_pos = acquire(control_->write_pos);
  if (read_pos == write_pos) {
    return false;
  }
  const std::size_t length = buffer_.checked_length(read_pos, write_pos - read_pos, owner_);
  message.resize(length);
  buffer_.copy_out(read_pos + sizeof(RecordHeader), message.data(), length);
  release(control_->read_pos, read_pos + RecordBuffer::record_bytes(length));
  return true;
}

std::size_t SpscRecordRing::queued_bytes() const noexcept {
  const std::uint64_t read_pos = acquire(control_->read_pos);
  return static_cast<std::size_t>(acquire(control_->write_pos) - read_pos);
}

void SpscRecordRing::reset() noexcept {
  release(control_->read_pos, 0);
  release(control_->write_pos, 0);
}

}  // namespace multiproc::detail
