#pragma once
// Internal: the bounded multi-producer multi-consumer ring under MpmcRing<T> and Queue<T> (for
// trivially copyable T). A view over a control block and slots that live in a segment.
#include <atomic>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include <multiproc/detail/os/liveness.hpp>
#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/detail/os/tsan.hpp>
#include <multiproc/detail/ring/attempt.hpp>
#include <multiproc/error.hpp>
#include <multiproc/segment.hpp>

namespace multiproc::detail {

// Shared control block. Fixed layout, trivially copyable; the two positions on separate lines.
struct SlotRingControl {
  // Next position producers claim. Advanced (CAS, relaxed) by the producer that claimed the slot
  // of `write_pos`, or by any producer that finds that slot already claimed.
  alignas(cache_line) std::uint64_t write_pos;
  // Next position consumers claim. Advanced like `write_pos`, by consumers.
  alignas(cache_line) std::uint64_t read_pos;
};
static_assert(sizeof(SlotRingControl) == 2 * cache_line && alignof(SlotRingControl) == cache_line);
static_assert(on_separate_lines(offsetof(SlotRingControl, write_pos), offsetof(SlotRingControl, read_pos)));
static_assert(atomic_across_processes<std::uint64_t>);

// A slot: its state word and the value. `state` packs (lap << 32) | (phase << 30) | owner pid.
// Slots are packed (several to a cache line): a producer running ahead of its consumer then fills
// a whole line per transfer. (Measured: one slot per line cut Queue<long> from 26 to 19 M msg/s.)
template <class T>
struct Slot {
  std::uint64_t state;
  T value;
};

enum class SlotPhase : std::uint32_t { empty = 0, writing = 1, full = 2, reading = 3 };

// The state word's low bits hold the pid of a slot's writer (or reader, while a view holds it). Linux pids are at most
// PID_MAX_LIMIT = 2^22 (include/linux/threads.h), so 30 bits hold any of them.
inline constexpr unsigned slot_owner_bits = 30;
inline constexpr std::uint32_t slot_owner_mask = (std::uint32_t{1} << slot_owner_bits) - 1;
static_assert((std::uint32_t{1} << 22) <= slot_owner_mask, "a pid must fit in a slot's owner bits");

// A slot held by one process: claimed by a producer (a loan, writing) or by a consumer (a view,
// reading), and the lap it was claimed in. Empty (false) when nothing was claimed.
template <class T>
struct SlotClaim {
  Slot<T>* slot = nullptr;
  std::uint32_t lap = 0;
  [[nodiscard]] explicit operator bool() const noexcept { return slot != nullptr; }
};

// The segment layout of a slot ring of T whose control block is `Control` (which begins with a
// SlotRingControl): `capacity` rounded up to a power of two, at least 2. (A Queue keeps its own,
// exact capacity as a limit on top: see SlotRing's `limit`.)
template <class T, class Control>
Segment::Layout slot_ring_layout(ObjectKind kind, std::size_t capacity) {
  constexpr std::size_t largest = std::size_t{1} << (std::numeric_limits<std::size_t>::digits - 1);
  if (capacity > largest) {
    throw ValueError("multiproc: a ring of " + std::to_string(capacity) + " slots is too large (at most " +
                     std::to_string(largest) + ")");
  }
  return {kind, fingerprint_of<Slot<T>>(), sizeof(Control), alignof(Control),
          std::bit_ceil(std::max<std::size_t>(capacity, 2))};
}
// Checks an opened ring's capacity, which came from shared memory.
inline void check_ring_capacity(const Segment& segment) {
  if (!std::has_single_bit(segment.count()) || segment.count() < 2) {
    throw LayoutMismatch("multiproc: \"" + segment.name() + "\" has a ring capacity that is not a power of two");
  }
}

// The algorithm: a Vyukov-style bounded MPMC ring in which a producer claims a slot by a CAS on the
// slot's own state word that records its pid, so that a slot left half-written by a dead process
// can be recognised and passed over.
//
// Position p (64-bit, never wraps in practice) uses slot p & mask, in lap L = p >> log2(capacity)
// (kept to 32 bits: laps are only compared for equality or distance 1, modulo 2^32).
// A slot's state for lap L moves through
//     empty(L) --producer CAS--> writing(L, pid) --producer store--> full(L) --consumer CAS--> empty(L + 1)
// and, for the zero-copy calls (a loan is a claim left to its caller, a view a take in place):
//     writing(L, pid) --loan dropped unpublished: store--> empty(L + 1)
//     full(L) --view CAS--> reading(L, pid) --view released: store--> empty(L + 1)
// Invariants:
//   * Only the producer that claimed a slot writes its value, between writing and full (or the
//     release of its dropped loan); while the slot is full(L) or reading(L, pid) nobody writes it.
//     A consumer copies the value out while it reads full(L) and then takes it with one CAS
//     full(L) -> empty(L + 1): if the CAS succeeds the copy is exact; if it fails another consumer
//     took the slot (and a producer may since have written into it), so the copy is discarded, as a
//     seqlock read is. A viewer reads the value only between its CAS full(L) -> reading(L, pid) and
//     its store of empty(L + 1), while no producer can claim the slot.
//   * write_pos and read_pos only grow; a producer at position p may claim only empty(L of p); a
//     consumer only full(L of p). Whoever finds the slot of `write_pos` (`read_pos`) already claimed
//     or passed in its lap moves the position on (a consumer that finds reading(L) there moves on
//     too: that position was taken), so a claimer that dies before moving it stalls nobody.
//   * A slot in writing(L, pid) or reading(L, pid) whose pid has exited is reclaimed to
//     empty(L + 1) by whoever reaches it: a producer killed mid-put, or holding a loan, loses only
//     its own unpublished message; a consumer killed holding a view loses only the message it was
//     viewing (taken, it went with the consumer). A consumer holds nothing between its calls
//     otherwise, so one killed mid-get loses nothing (if its CAS had succeeded, the message was its).
//     No message is delivered twice; every other message is delivered.
//   * A stopped (SIGSTOP), not dead, process still holds what it claimed: a stopped writer stalls
//     the consumers at its position, a stopped viewer the producers that come round to its slot a
//     lap later, until it runs on. As everywhere, only death releases a claim.
// Memory orders: the full store, the consumer's CAS and every store or CAS to empty(L + 1) (a view
// released, a loan dropped, a slot reclaimed) are releases; every state load an acquire, so a value
// written before a release is visible to whoever acts on that state next, and a slot's last reads
// are done before the next lap's writes. The producer's claim CAS is acquire (it reads the release
// of the slot to its lap); the view's CAS is acquire (it reads the producer's full store: the value
// is complete before the viewer reads it in place). Position CASes are relaxed: a position is a
// hint of where to look; every decision is made on the slot's state.
// Position corruption: in a consistent ring a slot is at most one lap ahead of either position, so
// a call moves its position on a few times at most, unless other processes outrun it for a whole
// lap. A corrupt or hostile position (far behind every slot's lap) would have a call step forward
// for up to 2^31 laps; so a call that has moved its position on more than advance_budget() times
// gives up as if the ring were empty (full), and the caller looks again later, as after any failure.
// Liveness checks (a kill(2) and a read of /proc) are made only for a slot seen stuck in the same
// claimed state on two calls at least a millisecond apart, so they never slow the normal path.
// A limit below the number of slots (a Queue<T>{6} has 8 slots): a producer claims position p only
// if p < read_pos + limit. Every position below read_pos has been taken (or passed over), so the
// claimed and untaken positions, all in [read_pos, p], are at most `limit`: the ring never holds
// more, however many producers race (read_pos only grows, so a stale read of it only makes the
// test stricter). The producer keeps the read_pos it last saw in the handle and reads the shared
// one (the consumers' cache line) only when the stale one says full; a ring whose limit is its
// slot count skips the test. A viewed position is below read_pos (its message has left the queue),
// so it no longer counts, though its slot stays held until the view is released.
template <class T>
class SlotRing {
 public:
  SlotRing(SlotRingControl* control, Slot<T>* slots, std::size_t capacity) noexcept
      : SlotRing(control, slots, capacity, capacity) {}
  // At most `limit` messages (1 <= limit <= capacity, checked by the caller) in `capacity` slots.
  SlotRing(SlotRingControl* control, Slot<T>* slots, std::size_t capacity, std::size_t limit) noexcept
      : control_(control),
        slots_(slots),
        mask_(capacity - 1),
        lap_shift_(static_cast<unsigned>(std::countr_zero(capacity))),
        limit_(limit) {}
  // A view moves with the segment that holds it (whose mapping does not move); the suspect notes
  // are process-local hints and travel along. The moved-from view points nowhere and may only be
  // destroyed or assigned to.
  SlotRing(SlotRing&& other) noexcept
      : control_(std::exchange(other.control_, nullptr)),
        slots_(std::exchange(other.slots_, nullptr)),
        mask_(other.mask_),
        lap_shift_(other.lap_shift_),
        limit_(other.limit_),
        read_pos_seen_(other.read_pos_seen_.load(std::memory_order_relaxed)),
        suspect_state_(other.suspect_state_.load(std::memory_order_relaxed)),
        suspect_since_(other.suspect_since_.load(std::memory_order_relaxed)) {}
  SlotRing& operator=(SlotRing&& other) noexcept {
    control_ = std::exchange(other.control_, nullptr);
    slots_ = std::exchange(other.slots_, nullptr);
    mask_ = other.mask_;
    lap_shift_ = other.lap_shift_;
    limit_ = other.limit_;
    read_pos_seen_.store(other.read_pos_seen_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    suspect_state_.store(other.suspect_state_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    suspect_since_.store(other.suspect_since_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    return *this;
  }
  SlotRing(const SlotRing&) = delete;
  SlotRing& operator=(const SlotRing&) = delete;
  ~SlotRing() = default;

  // Producer: claims the next free slot (writing(L, this pid)) for the caller to write and then
  // publish() or release(). Empty when there is no room; then `why`, if given, says which:
  // `blocked` (full), or `stalled` (the slot is still held, from the previous lap, by a writer or a
  // viewer that may have died: look again soon).
  [[nodiscard]] SlotClaim<T> try_claim(Attempted* why = nullptr) noexcept {
    auto write_pos = shared_atomic(control_->write_pos);
    std::uint64_t position = write_pos.load(std::memory_order_relaxed);
    for (std::size_t advances = 0;;) {
      auto [slot, state, lap, seen, distance] = look_at(position);
      if (distance == 0 && phase_of(seen) == SlotPhase::empty) {
        if (limit_ <= mask_ && !below_limit(position)) {
          return failed<SlotClaim<T>>(why, Attempted::blocked);
        }
        if (state.compare_exchange_strong(seen, pack(lap, SlotPhase::writing, current_pid()), std::memory_order_acquire,
                                          std::memory_order_relaxed)) {
          const SlotClaim<T> claim{&slots_[position & mask_], lap};  // `slot`, which cppcheck takes for a local
          write_pos.compare_exchange_strong(position, position + 1, std::memory_order_relaxed);
          return claim;
        }
        continue;  // another producer claimed it: look again
      }
      if (distance >= 0 && ++advances <= advance_budget()) {  // claimed or passed over: move on
        advance(write_pos, position);
        continue;
      }
      // The slot is still in the previous lap: full, or held by a writer or a viewer.
      if (distance == -1 && held(seen)) {
        if (reclaim_if_abandoned(state, seen)) {
          continue;
        }
        return failed<SlotClaim<T>>(why, Attempted::stalled);
      }
      return failed<SlotClaim<T>>(why, Attempted::blocked);
    }
  }
  // Makes a claimed slot's message visible to consumers.
  static void publish(const SlotClaim<T>& claim) noexcept {
    // release: the message's bytes are visible to whoever acquires full(L).
    shared_atomic(claim.slot->state).store(pack(claim.lap, SlotPhase::full, 0), std::memory_order_release);
  }
  // Frees a claimed slot for the next lap: a view done reading, or a loan dropped unpublished
  // (consumers pass over its position, as over a reclaimed one).
  static void release(const SlotClaim<T>& claim) noexcept {
    // release: our reads (a view's) or writes (a loan's) of the value are done before the next
    // producer, acquiring empty(L + 1), writes it. Only we can move a slot we hold (a reclaim needs
    // our death), so a plain store suffices.
    shared_atomic(claim.slot->state).store(pack(claim.lap + 1, SlotPhase::empty, 0), std::memory_order_release);
  }

  // False when full; then `why`, if given, says which, as try_claim's.
  [[nodiscard]] bool try_push(const T& value, Attempted* why = nullptr) noexcept {
    const SlotClaim<T> claim = try_claim(why);
    if (!claim) {
      return false;
    }
    std::memcpy(&claim.slot->value, &value, sizeof(T));
    publish(claim);
    return true;
  }

  // Empty when there is nothing to take (or the next message is still being written); then `why`,
  // if given, says which: `blocked` (empty), or `stalled` (a producer is mid-write).
  [[nodiscard]] std::optional<T> try_pop(Attempted* why = nullptr) noexcept {
    std::optional<T> taken;
    (void)take_next(
        [&taken](const Look& look) {
          const T value = speculative_copy(look.slot.value);  // kept only if the CAS below succeeds
          std::uint64_t seen = look.seen;
          if (!look.state.compare_exchange_strong(seen, pack(look.lap + 1, SlotPhase::empty, 0),
                                                  std::memory_order_acq_rel, std::memory_order_relaxed)) {
            return false;
          }
          taken = value;
          return true;
        },
        why);
    return taken;
  }

  // Consumer: claims the oldest message for reading in place (full(L) -> reading(L, this pid)),
  // until release(). Empty when there is nothing to take; then `why`, if given, says why, as try_pop's.
  [[nodiscard]] SlotClaim<T> try_view(Attempted* why = nullptr) noexcept {
    SlotClaim<T> claim;
    (void)take_next(
        [&claim](const Look& look) {
          std::uint64_t seen = look.seen;
          // acquire: pairs with the producer's full store, so the value is complete before we read it.
          if (!look.state.compare_exchange_strong(seen, pack(look.lap, SlotPhase::reading, current_pid()),
                                                  std::memory_order_acquire, std::memory_order_relaxed)) {
            return false;
          }
          claim = {&look.slot, look.lap};
          return true;
        },
        why);
    return claim;
  }

  // Whether a consumer would find a message to take now, from the shared memory alone (for a
  // waiter that holds no SlotRing): `done` when the first position not yet taken holds a full
  // slot; `stalled` while that slot is held by a live writer (an open loan, or a put under way:
  // the messages behind it wait for it, and its publish or drop rings the consumers); `blocked`
  // when there is nothing. A writer that has died counts as `done`: a consumer's take reclaims its
  // slot and goes on to what is behind it. A hint, as size_of(); it changes nothing.
  [[nodiscard]] static Attempted look_for_message(SlotRingControl& control, Slot<T>* slots, std::size_t capacity) noexcept {
    return SlotRing(&control, slots, capacity).walk_to_message();
  }

  // The slots.
  [[nodiscard]] std::size_t capacity() const noexcept { return mask_ + 1; }
  // The most messages it holds (the capacity, unless a lower limit was given).
  [[nodiscard]] std::size_t limit() const noexcept { return limit_; }
  [[nodiscard]] std::size_t size_approx() const noexcept { return size_of(*control_, limit_); }
  // The same from the shared control block alone (for a reader that holds no SlotRing).
  [[nodiscard]] static std::size_t size_of(SlotRingControl& control, std::size_t capacity) noexcept {
    // acquire: a reader that acts on the size sees the slots behind it (a hint all the same).
    const std::uint64_t read_pos = shared_atomic(control.read_pos).load(std::memory_order_acquire);
    const std::uint64_t write_pos = shared_atomic(control.write_pos).load(std::memory_order_acquire);
    return write_pos > read_pos ? static_cast<std::size_t>(std::min<std::uint64_t>(write_pos - read_pos, capacity)) : 0;
  }

 private:
  static constexpr std::uint64_t pack(std::uint32_t lap, SlotPhase phase, std::uint32_t pid) noexcept {
    return (std::uint64_t{lap} << 32) | (std::uint64_t{static_cast<std::uint32_t>(phase)} << slot_owner_bits) |
           (pid & slot_owner_mask);
  }
  static constexpr std::uint32_t lap_of(std::uint64_t state) noexcept { return static_cast<std::uint32_t>(state >> 32); }
  static constexpr SlotPhase phase_of(std::uint64_t state) noexcept {
    return static_cast<SlotPhase>((state >> slot_owner_bits) & 3u);
  }
  static constexpr std::uint32_t owner_of(std::uint64_t state) noexcept {
    return static_cast<std::uint32_t>(state & slot_owner_mask);
  }
  // A position's slot, its state (read with acquire), and how many laps that state is ahead of the
  // position's own lap (0: this lap; -1: still the previous lap; > 0: the position was passed).
  struct Look {
    Slot<T>& slot;
    std::atomic_ref<std::uint64_t> state;
    std::uint32_t lap;
    std::uint64_t seen;
    std::int32_t distance;
  };
  [[nodiscard]] Look look_at(std::uint64_t position) const noexcept {
    Slot<T>& slot = slots_[position & mask_];
    auto state = shared_atomic(slot.state);
    const auto lap = static_cast<std::uint32_t>(position >> lap_shift_);
    const std::uint64_t seen = state.load(std::memory_order_acquire);
    return {slot, state, lap, seen, static_cast<std::int32_t>(lap_of(seen) - lap)};
  }
  // Held by a process: a producer's claim or a consumer's view.
  static constexpr bool held(std::uint64_t state) noexcept {
    return phase_of(state) == SlotPhase::writing || phase_of(state) == SlotPhase::reading;
  }
  // The position is no longer the consumers' to take: taken by a view, or passed (a later lap).
  static constexpr bool taken_or_passed(const Look& look) noexcept {
    return look.distance > 0 || (look.distance == 0 && phase_of(look.seen) == SlotPhase::reading);
  }
  template <class Result>
  static Result failed(Attempted* why, Attempted reason) noexcept {
    if (why != nullptr) {
      *why = reason;
    }
    return Result{};
  }

  // The consumers' walk from read_pos, shared by try_pop and try_view: at the first full slot of
  // its lap, `take(look)` tries to take it (false: another consumer was first, look again).
  // False when there is nothing to take; then `why`, if given, says why (see try_pop).
  template <class Take>
  [[nodiscard]] bool take_next(const Take& take, Attempted* why) noexcept {
    auto read_pos = shared_atomic(control_->read_pos);
    std::uint64_t position = read_pos.load(std::memory_order_relaxed);
    for (std::size_t advances = 0;;) {
      const Look look = look_at(position);
      if (look.distance == 0) {
        switch (phase_of(look.seen)) {
          case SlotPhase::full:
            if (take(look)) {
              read_pos.compare_exchange_strong(position, position + 1, std::memory_order_relaxed);
              return true;
            }
            continue;
          case SlotPhase::writing:  // a producer is still writing it, or died doing so
            if (reclaim_if_abandoned(look.state, look.seen)) {
              continue;
            }
            return failed<bool>(why, Attempted::stalled);
          case SlotPhase::reading:  // taken by a view: moved on below
            break;
          case SlotPhase::empty:
            return failed<bool>(why, Attempted::blocked);
        }
      }
      if (taken_or_passed(look) && ++advances <= advance_budget()) {  // taken or passed over: move on
        advance(read_pos, position);
        continue;
      }
      return failed<bool>(why, Attempted::blocked);  // nothing produced for this position yet
    }
  }

  // look_for_message's walk: take_next's, reading only (nothing is taken, moved or reclaimed).
  [[nodiscard]] Attempted walk_to_message() const noexcept {
    // relaxed: a hint of where to look, as in take_next; the slots' states decide.
    std::uint64_t position = shared_atomic(control_->read_pos).load(std::memory_order_relaxed);
    for (std::size_t steps = 0; steps <= advance_budget(); ++steps, ++position) {
      const Look look = look_at(position);
      if (taken_or_passed(look)) {
        continue;
      }
      if (look.distance < 0 || phase_of(look.seen) == SlotPhase::empty) {
        return Attempted::blocked;
      }
      const bool live_writer = phase_of(look.seen) == SlotPhase::writing && process_is_alive(owner_of(look.seen));
      return live_writer ? Attempted::stalled : Attempted::done;
    }
    return Attempted::blocked;  // positions no consistent ring has: as take_next, nothing to take
  }

  [[nodiscard]] std::size_t advance_budget() const noexcept { return 2 * capacity() + 16; }

  // Whether a producer may claim `position` under the limit (see the class comment). Looks at the
  // shared read_pos only when the one this handle saw last says no, and then also moves read_pos
  // over positions already taken: a consumer killed between its take (or view) and its move of
  // read_pos must not cost the producers a place until the next consumer comes.
  [[nodiscard]] bool below_limit(std::uint64_t position) noexcept {
    if (position - read_pos_seen_.load(std::memory_order_relaxed) < limit_) {
      return true;
    }
    auto read_pos = shared_atomic(control_->read_pos);
    // relaxed: read_pos is a hint, as everywhere; what was taken is decided on the slots' states.
    std::uint64_t oldest = read_pos.load(std::memory_order_relaxed);
    for (std::size_t advances = 0; position - oldest >= limit_; ++advances) {
      if (position < oldest || advances > advance_budget() || !taken_or_passed(look_at(oldest))) {
        return false;  // full (or positions no consistent ring has: refuse, as when full)
      }
      advance(read_pos, oldest);  // taken or passed over: move on
    }
    read_pos_seen_.store(oldest, std::memory_order_relaxed);
    return true;
  }

  // Moves a shared position from `position` to the next one, or learns where another process moved it.
  static void advance(std::atomic_ref<std::uint64_t>& shared_position, std::uint64_t& position) noexcept {
    if (shared_position.compare_exchange_strong(position, position + 1, std::memory_order_relaxed)) {
      ++position;
    }
  }

  // The seqlock half of a consumer's take: the value is copied while another consumer may take the
  // slot and a producer refill it, and the copy is used only if the CAS that follows proves the
  // slot unchanged. That overlap is the design (a consumer killed mid-copy holds nothing), so
  // ThreadSanitizer is told not to watch this copy; the producers' writes stay watched.
  static T speculative_copy(const T& source) noexcept {
    T copy;
    [[maybe_unused]] const RacyReadsByDesign unwatched;
    std::memcpy(&copy, &source, sizeof(T));
    return copy;
  }

  // A slot held (writing or reading) by a process that has exited is released to the next lap.
  // Checked only when this handle has seen the very same state before, at least a millisecond ago.
  // The suspect is kept in relaxed atomics because threads may share a handle; if two threads
  // interleave their notes, the check only comes sooner or later: what decides is
  // process_is_alive(). Returns true when it released the slot (or someone else moved it).
  bool reclaim_if_abandoned(std::atomic_ref<std::uint64_t> state, std::uint64_t seen) noexcept {
    if (!held(seen)) {
      return false;
    }
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    if (seen != suspect_state_.load(std::memory_order_relaxed)) {
      suspect_state_.store(seen, std::memory_order_relaxed);
      suspect_since_.store(now, std::memory_order_relaxed);
      return false;
    }
    const auto waited = std::chrono::steady_clock::duration(now - suspect_since_.load(std::memory_order_relaxed));
    if (waited < std::chrono::milliseconds(1) || process_is_alive(owner_of(seen))) {
      return false;
    }
    suspect_state_.store(0, std::memory_order_relaxed);
    // release: as the normal empty(L + 1) store. A dead writer's bytes are simply overwritten later;
    // a dead viewer's message went with it. If the CAS fails, someone else moved the slot on: the
    // caller looks again either way.
    (void)state.compare_exchange_strong(seen, pack(lap_of(seen) + 1, SlotPhase::empty, 0), std::memory_order_release,
                                        std::memory_order_relaxed);
    return true;
  }

  SlotRingControl* control_;
  Slot<T>* slots_;
  std::size_t mask_;
  unsigned lap_shift_;
  std::size_t limit_;
  // Process-local: the read_pos this handle last saw (a relaxed atomic, as threads may share a
  // handle: any value once seen is a safe under-estimate, since read_pos only grows).
  std::atomic<std::uint64_t> read_pos_seen_{0};
  // Process-local: a claimed state seen stuck, and since when (steady_clock ticks).
  std::atomic<std::uint64_t> suspect_state_{0};
  std::atomic<std::chrono::steady_clock::rep> suspect_since_{0};
};

}  // namespace multiproc::detail
