#pragma once
// The message the loan tests build in place (tests/test_rings.cpp for SpscRing, test_queue_loan.cpp
// for Queue): 64 KiB, too big to want copied, its sequence number at both ends and one payload byte
// set from it, so that a torn or reused slot shows.
#include <array>
#include <cstddef>
#include <cstdint>
#include <new>

namespace test {

struct Frame {
  std::uint64_t sequence;
  std::array<std::byte, 64 * 1024 - 2 * sizeof(std::uint64_t)> payload;
  std::uint64_t trailer;
};

inline std::byte payload_mark(std::uint64_t sequence) { return std::byte{static_cast<unsigned char>(sequence)}; }

// Builds frame `sequence` in a loaned slot (nothing is copied into the ring) and publishes it.
template <class Loan>
void build(Loan& slot, std::uint64_t sequence) {
  Frame* frame = new (&*slot) Frame;
  frame->sequence = sequence;
  frame->payload[sequence % frame->payload.size()] = payload_mark(sequence);
  frame->trailer = sequence;
  slot.publish();
}

inline bool whole(const Frame& frame, std::uint64_t sequence) {
  return frame.sequence == sequence && frame.trailer == sequence &&
         frame.payload[sequence % frame.payload.size()] == payload_mark(sequence);
}

}  // namespace test
