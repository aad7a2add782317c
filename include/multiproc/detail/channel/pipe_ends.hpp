#pragma once
// Internal: which processes hold each end of a Pipe, so that one end can tell when nobody is left
// at the other.
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/export.hpp>
#include <multiproc/segment.hpp>

namespace multiproc::detail {

// Shared: the holders of one end. Fixed layout, trivially copyable.
struct EndHolders {
  static constexpr int slots = 30;
  // 1 once a process could not be recorded for lack of slots: the end is then never judged
  // abandoned (death goes undetected rather than falsely reported). Stored relaxed, read relaxed.
  std::uint32_t overflow;
  // 1 once two processes have held the end at the same time (stored and read relaxed). Until then
  // the end belongs to one process, whose threads may use it later, so its hold always counts.
  std::uint32_t shared;
  // pid | confirmed_bit, or 0 for a free slot. Claimed, confirmed and freed by CAS (acq_rel) by the
  // process itself; a holder found dead is freed by whoever finds it.
  //   tentative: the process holds the end because it made the pipe, or was forked while the end
  //              was open in its parent (it may never use it);
  //   confirmed: the process has used the end (send, recv or poll).
  std::uint32_t holder[slots];
};
inline constexpr std::uint32_t confirmed_bit = 0x80000000u;

struct PipeEnds {
  EndHolders end[2];
};
static_assert(std::is_trivially_copyable_v<EndHolders> && sizeof(EndHolders) == (2 + std::size_t{EndHolders::slots}) * sizeof(std::uint32_t) &&
              alignof(EndHolders) == 4 && offsetof(EndHolders, holder) == 8);
static_assert(sizeof(PipeEnds) == 2 * sizeof(EndHolders));
static_assert(atomic_across_processes<std::uint32_t>);

// The holder tables of one pipe, in an anonymous segment of their own.
struct PipeHolders {
  Segment segment;
  [[nodiscard]] EndHolders& end(int which) const noexcept {
    return static_cast<PipeEnds*>(segment.elements())->end[which];
  }
};

// Records the calling process as a holder of `end` (or upgrades it to confirmed).
MULTIPROC_API void hold_end(EndHolders& end, bool confirmed) noexcept;
// Removes the calling process from `end`'s holders.
MULTIPROC_API void release_end(EndHolders& end) noexcept;
// True when no live process holds `end`. Once the end has been shared between processes, a merely
// tentative hold of the caller's own does not count: the caller is blocked on the other end and
// never used this one (typically a parent's copy of its child's end).
MULTIPROC_API bool end_abandoned(EndHolders& end) noexcept;
// While tracked, an end is held (tentatively) by every child forked from this process.
MULTIPROC_API void track_end(EndHolders& end);
MULTIPROC_API void untrack_end(EndHolders& end) noexcept;

}  // namespace multiproc::detail

