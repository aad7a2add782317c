#pragma once
// Internal: one side's MPI traffic on a cluster pool's communicator. Sends are non-blocking (a
// blocking send of a big message waits for the receiver to post its receive: a client sending
// tasks to a rank that is sending it results would wait on each other); each send's bytes are
// kept until MPI says the send is complete. Receives take whatever message is waiting, of any size.
//
// MPI reports errors on this communicator with MPI's default handler, which ends the whole job
// with a message: a failure there can never leave a rank waiting for ever.
#include <mpi.h>
#include <sys/prctl.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include <multiproc/error.hpp>

namespace multiproc::mpi::detail {

using Clock = std::chrono::steady_clock;

struct Message {
  int source = 0;
  int tag = 0;
  std::vector<std::byte> bytes;
};

class Mailbox {
 public:
  explicit Mailbox(MPI_Comm comm) : comm_(comm) {}
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  // MessageTooLarge for a message past MPI's int count (2 GiB).
  void send(int rank, int tag, std::vector<std::byte> bytes) {
    if (bytes.size() > static_cast<std::size_t>(INT_MAX)) {
      throw MessageTooLarge("multiproc::mpi: a message of " + std::to_string(bytes.size()) +
                            " bytes is past MPI's limit of 2 GiB per message");
    }
    Send& send = sends_.emplace_back(Send{MPI_REQUEST_NULL, std::move(bytes)});
    MPI_Isend(send.bytes.data(), static_cast<int>(send.bytes.size()), MPI_BYTE, rank, tag, comm_, &send.request);
  }
  // Takes the next waiting message from `source` (MPI_ANY_SOURCE: from anyone); false if none.
  bool receive(int source, Message& out) {
    int waiting = 0;
    MPI_Message handle = MPI_MESSAGE_NULL;
    MPI_Status status;
    MPI_Improbe(source, MPI_ANY_TAG, comm_, &waiting, &handle, &status);
    if (waiting == 0) {
      return false;
    }
    int count = 0;
    MPI_Get_count(&status, MPI_BYTE, &count);
    out.bytes.resize(static_cast<std::size_t>(count));
    MPI_Mrecv(out.bytes.data(), count, MPI_BYTE, &handle, MPI_STATUS_IGNORE);
    out.source = status.MPI_SOURCE;
    out.tag = status.MPI_TAG;
    return true;
  }
  // Lets go of the sends that have completed; true while some are still in flight.
  bool sending() {
    std::erase_if(sends_, [](Send& send) {
      int done = 0;
      MPI_Test(&send.request, &done, MPI_STATUS_IGNORE);
      return done != 0;
    });
    return !sends_.empty();
  }

 private:
  struct Send {
    MPI_Request request;
    std::vector<std::byte> bytes;
  };
  MPI_Comm comm_;
  std::vector<Send> sends_;  // moving a Send keeps its bytes where MPI was told they are
};

// How long a side that found nothing to do waits before it looks for messages again. MPI has no
// file descriptor to sleep on, and its own blocking calls spin a core. So a side that expects an
// answer soon (`eager`: a lone call is waiting on it) does not sleep for the first `spin_window`
// after it last had something to do, yielding the CPU between looks (zero means that); after
// that, and at once when not eager, it sleeps a quarter of the time it has been idle, at least
// 10 us and at most a millisecond: an idle rank costs a thousand cheap looks a second, and ranks
// that wait on their local workers leave the CPUs to them. (On 2 cores, four ranks spinning at
// once kept the very worker they waited for off the CPU: round trips took milliseconds.)
constexpr auto spin_window = std::chrono::microseconds(200);
inline Clock::duration idle_pause(Clock::duration idle_for, bool eager) {
  if (eager && idle_for < spin_window) {
    return Clock::duration::zero();
  }
  return std::clamp<Clock::duration>(idle_for / 4, std::chrono::microseconds(10), std::chrono::milliseconds(1));
}

// Short sleeps on time, for the thread that makes one: the kernel lets a sleep overrun by the
// thread's timer slack, 50 us by default, which made every pause of this polling cost ~100 us
// (and a round trip between ranks 300 us instead of tens). Restores the slack it found.
class PreciseSleeps {
 public:
  PreciseSleeps() : saved_(::prctl(PR_GET_TIMERSLACK)) { ::prctl(PR_SET_TIMERSLACK, 1UL); }
  PreciseSleeps(const PreciseSleeps&) = delete;
  PreciseSleeps& operator=(const PreciseSleeps&) = delete;
  ~PreciseSleeps() {
    if (saved_ > 0) {
      ::prctl(PR_SET_TIMERSLACK, static_cast<unsigned long>(saved_));
    }
  }

 private:
  int saved_;
};

}  // namespace multiproc::mpi::detail
