#pragma once
// Internal: a lock's state as `multiproc inspect` reports it, for every kind that keeps a LockState
// (Lock, RLock, Value, Array, Condition, a codec Queue, SharedDict, SharedList).
#include <string_view>

#include <multiproc/lock.hpp>

#include "shm/inspection.hpp"

namespace multiproc::detail {

// Fields `<prefix>held`, `held_by_tid`, `held_by_pid`, `holder_alive`, `depth` (RLock) and
// `holder_died`, from the holder the Lock itself records (LockState::holder_tid).
void describe_lock(const LockState& lock, bool recursive, FieldList& out, std::string_view prefix = "");

}  // namespace multiproc::detail
