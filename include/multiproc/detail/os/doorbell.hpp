#pragma once
// Internal: the doorbell, the one way a sleeper in one process is woken by another.
//
// A doorbell is a 32-bit futex word in shared memory plus a count of its sleepers. A sleeper reads
// the word, makes its last check of what it waits for, and sleeps while the word still holds the
// value it read; a waker changes the word (with a seq_cst read-modify-write) and then rings: a
// FUTEX_WAKE, made only when the count says someone sleeps. Two shapes share this protocol:
//   * the word is the state itself: a Semaphore's count, an Event's flag, a Condition's sequence,
//     a Barrier's generation, a JoinableQueue's unfinished tasks (wait_at_doorbell/ring_doorbell);
//   * a standalone Doorbell whose word only counts rings: the pool's channels.
// A queue's doorbell (QueueSignals, channel layer) keeps a waiting flag instead of a count, so that
// a busy stream of puts makes no system call; it rings through ring_doorbell(QueueSignals&, Side).
//
// Why a wake cannot be lost: the sleeper raises `sleepers` (seq_cst) and the kernel then compares
// the word under its own full barrier; the waker changes the word (seq_cst) and then reads
// `sleepers` (seq_cst). Either the waker sees the sleeper counted and wakes it, or the sleeper's
// comparison sees the new word and does not sleep. A sleeper that dies leaves `sleepers` one too
// high, which costs later wakers a needless system call and nothing else.
#include <cstdint>

#include <multiproc/detail/os/deadline.hpp>
#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/export.hpp>

namespace multiproc::detail {

// Whether a sleeper also looks again by itself every lost_wake_recheck (100 ms). A waker that
// wakes fewer sleepers than wait (a Semaphore's release) hands its wake to one process, which may
// be killed before it acts on it while the others sleep on: such waiters pass `periodically`.
// (A Condition may not: its waiters cannot tell a notify(1) meant for another from their own, so
// a notification taken by a waiter that dies is lost, as in Python.)
enum class Recheck { never, periodically };
// Spin::first: poll for up to spin_budget (20 us) before sleeping, worth it when the partner
// answers from another CPU. Spin::never: sleep at once, for a waiter whose partner is usually busy
// elsewhere (spinning would take a CPU it needs).
enum class Spin { first, never };

// Sleeps while `word` holds `seen`, counted in `sleepers`, until rung, a signal, or `deadline`.
// Returns false only once the deadline has passed; callers re-check their condition in a loop
// (wakes may be spurious, and with Recheck::periodically a slice ends with true, "look again").
MULTIPROC_API bool wait_at_doorbell(std::uint32_t& word, std::uint32_t& sleepers, std::uint32_t seen,
                                    Deadline deadline, Recheck recheck = Recheck::never,
                                    Spin spin = Spin::first) noexcept;
// Wakes up to `how_many` sleepers (INT_MAX: all). Call after changing `word`; makes a system
// call only if someone sleeps.
MULTIPROC_API void ring_doorbell(std::uint32_t& word, std::uint32_t& sleepers, int how_many) noexcept;

// A standalone doorbell in shared memory. Fixed layout, trivially copyable; zeroed means quiet.
struct Doorbell {
  // Bumped (seq_cst fetch_add) by every ring; a sleeper waits while it holds the value the sleeper
  // read (acquire, in doorbell_state) before its last look at what it waits for.
  std::uint32_t rings;
  // How many sleep on `rings` now: raised (seq_cst) before sleeping, read (seq_cst) by ringers.
  std::uint32_t sleepers;
};
static_assert(sizeof(Doorbell) == 8 && alignof(Doorbell) == 4);
static_assert(atomic_across_processes<std::uint32_t>);

// What a sleeper reads before its last look at the condition it waits for.
MULTIPROC_API std::uint32_t doorbell_state(const Doorbell& bell) noexcept;
// Wakes everyone asleep at `bell`. Call after publishing what they wait for.
MULTIPROC_API void ring_doorbell(Doorbell& bell) noexcept;
// Sleeps until `bell` rings after `seen` was read, a signal, or `deadline`; false once the
// deadline passed.
MULTIPROC_API bool wait_at_doorbell(Doorbell& bell, std::uint32_t seen, Deadline deadline, Spin spin) noexcept;

}  // namespace multiproc::detail
