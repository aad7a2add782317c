#include <multiproc/detail/ring/record_buffer.hpp>

#include <algorithm>
#include <cstring>
#include <string>

#include <multiproc/error.hpp>

namespace multiproc::detail {

void RecordBuffer::check_fits(std::size_t message_bytes, const char* owner) const {
  if (record_bytes(message_bytes) > capacity_ || message_bytes > UINT32_MAX) {
    std::string what = owner;
    what += ": a message of ";
    what += std::to_string(message_bytes);
    what += " bytes can never fit in its ";
    what += std::to_string(capacity_);
    what += "-byte ring";
    throw MessageTooLarge(what);
  }
}

std::size_t RecordBuffer::write_record(std::uint64_t at, std::span<const std::span<const std::byte>> parts,
                                       std::uint32_t tag) noexcept {
  std::size_t length = 0;
  for (const auto& part : parts) {
    length += part.size();
  }
  const RecordHeader header{static_cast<std::uint32_t>(length), ~static_cast<std::uint32_t>(length) ^ tag};
  copy_in(at, &header, sizeof header);
  std::uint64_t next = at + sizeof header;
  for (const auto& part : parts) {
    copy_in(next, part.data(), part.size());
    next += part.size();
  }
  return record_bytes(length);
}

std::size_t RecordBuffer::checked_length(std::uint64_t at, std::uint64_t queued, const char* owner) const {
  const RecordKind record = checked_record(at, queued, owner);
  if (record.reference) {
    std::string what = owner;
    what += ": corrupt record in the ring (a reference, in a ring that holds none)";
    throw LayoutMismatch(what);
  }
  return record.length;
}

void RecordBuffer::corrupt(std::uint32_t length, std::uint64_t queued, const char* owner) {
  std::string what = owner;
  what += ": corrupt record in the ring (length ";
  what += std::to_string(length);
  what += ", ";
  what += std::to_string(queued);
  what += " bytes queued)";
  throw LayoutMismatch(what);
}

void RecordBuffer::copy_in(std::uint64_t at, const void* from, std::size_t size) noexcept {
  if (size == 0) {
    return;  // an empty message's data() may be null: no memcpy with it
  }
  const std::size_t offset = at % capacity_;
  const std::size_t first = std::min(size, capacity_ - offset);
  std::memcpy(bytes_ + offset, from, first);
  std::memcpy(bytes_, static_cast<const std::byte*>(from) + first, size - first);
}

void RecordBuffer::copy_out(std::uint64_t at, void* to, std::size_t size) const noexcept {
  if (size == 0) {
    return;
  }
  const std::size_t offset = at % capacity_;
  const std::size_t first = std::min(size, capacity_ - offset);
  std::memcpy(to, bytes_ + offset, first);
  std::memcpy(static_cast<std::byte*>(to) + first, bytes_, size - first);
}

}  // namespace multiproc::detail
