#pragma once
// Internal: what the rings' inspectors share with the queues' (channel layer).
#include <cstdint>
#include <string>

#include "shm/inspection.hpp"

namespace multiproc::detail {

// A slot ring's message type, from its stored element type "multiproc::detail::Slot<T>": T.
std::string slot_message_type(const std::string& element);
// `capacity` and `depth`, from two positions read at different moments (clamped into range).
void add_positions(FieldList& out, std::uint64_t capacity, std::uint64_t written, std::uint64_t read);

}  // namespace multiproc::detail
