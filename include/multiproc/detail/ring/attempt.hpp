#pragma once
// Internal: what one try at a ring operation found. The rings never wait; the layers above them
// decide how to (a queue sleeps at its doorbell, a ring user polls).
namespace multiproc::detail {

enum class Attempted {
  done,     // it happened
  blocked,  // empty (for a take) or full (for a put): wait until the other side moves
  stalled,  // the next message is being written by a process that may have died: look again soon
};

}  // namespace multiproc::detail
