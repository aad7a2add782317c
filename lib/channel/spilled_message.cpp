// The segments of messages too big for their queue's ring: made by the sender, taken (and their
// names removed) by the reader, and described to `multiproc ls` and `inspect`.
#include <multiproc/detail/channel/spilled_message.hpp>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include <multiproc/error.hpp>

#include "shm/inspection.hpp"

namespace multiproc::detail {

namespace {

Segment::Layout spill_layout(std::size_t message_bytes) {
  return {ObjectKind::spilled_message, fingerprint_of<std::byte>(), sizeof(SpilledMessageControl),
          alignof(SpilledMessageControl), message_bytes};
}

// This process's spilled messages so far: with the pid, a name no other live process makes.
std::atomic<std::uint64_t> spilled_so_far{0};

// A leftover of a dead process that had this pid may hold a name: the next serial is tried.
constexpr int name_attempts = 64;

}  // namespace

std::string spill_name(std::uint32_t sender_pid, std::uint64_t serial) {
  return "spill-" + std::to_string(sender_pid) + "-" + std::to_string(serial);
}

std::uint64_t mapping_inode(const void* address) {
  const auto at = reinterpret_cast<std::uintptr_t>(address);
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    // "start-end perms offset major:minor inode path"
    std::istringstream fields(line);
    std::uintptr_t start = 0;
    std::uintptr_t end = 0;
    char dash = 0;
    std::string perms;
    std::string offset;
    std::string device;
    std::uint64_t inode = 0;
    if (fields >> std::hex >> start >> dash >> end >> perms >> offset >> device >> std::dec >> inode && start <= at &&
        at < end) {
      return inode;
    }
  }
  return 0;
}

OutgoingSpill::OutgoingSpill(std::span<const std::byte> message, const std::string& owner_name,
                             std::uint64_t owner_inode) {
  const auto pid = static_cast<std::uint32_t>(::getpid());
  auto fill = [&](Segment& s) {
    auto& control = *static_cast<SpilledMessageControl*>(s.prefix());
    control.magic = spilled_message_magic;
    control.queued = 0;
    control.message_bytes = message.size();
    control.owner_inode = owner_name.empty() ? owner_inode : 0;
    std::memset(control.owner_name, 0, sizeof control.owner_name);
    owner_name.copy(control.owner_name, std::min(owner_name.size(), sizeof control.owner_name - 1));
    std::memcpy(s.elements(), message.data(), message.size());
  };
  for (int attempt = 1;; ++attempt) {
    // relaxed: only the count matters, no other memory is published through it.
    const std::uint64_t serial = spilled_so_far.fetch_add(1, std::memory_order_relaxed);
    try {
      segment_ = Segment(create, spill_name(pid, serial), spill_layout(message.size()), fill);
      reference_ = {spill_reference_magic, pid, serial, message.size()};
      return;
    } catch (const AlreadyExists&) {
      if (attempt == name_attempts) {
        throw;
      }
    }
  }
}

OutgoingSpill::~OutgoingSpill() {
  // relaxed: stored by this thread (under the ring's lock) if at all.
  if (shared_atomic(queued()).load(std::memory_order_relaxed) == 0) {
    try {
      (void)unlink(segment_.name());
    } catch (...) {  // NOLINT(bugprone-empty-catch): a name this library made is valid; nothing to report
    }
  }
}

std::span<const std::byte> OutgoingSpill::reference() const noexcept {
  return std::as_bytes(std::span<const SpillReference, 1>(&reference_, 1));
}

std::uint32_t& OutgoingSpill::queued() const noexcept {
  return static_cast<SpilledMessageControl*>(segment_.prefix())->queued;
}

void IncomingSpill::take(std::span<const std::byte> reference) {
  SpillReference named{};
  if (reference.size() == sizeof named) {
    std::memcpy(&named, reference.data(), sizeof named);
  }
  if (reference.size() != sizeof named || named.magic != spill_reference_magic || named.sender_pid == 0) {
    throw LayoutMismatch("multiproc::Queue: corrupt record in the ring (a reference of " +
                         std::to_string(reference.size()) + " bytes that names no message)");
  }
  const std::string name = spill_name(named.sender_pid, named.serial);
  forget();
  std::unique_ptr<Segment> segment;
  try {
    segment = std::make_unique<Segment>(open, name, spill_layout(0));
  } catch (const NotFound&) {
    taken_ = Taken::vanished;
    return;
  }
  const auto& control = *static_cast<const SpilledMessageControl*>(segment->prefix());
  if (control.magic != spilled_message_magic || control.message_bytes != named.message_bytes ||
      segment->count() != named.message_bytes) {
    throw LayoutMismatch("multiproc::Queue: \"" + name + "\" is not the message of " +
                         std::to_string(named.message_bytes) + " bytes its reference names");
  }
  (void)unlink(name);  // from here on the message is this reader's, even if it dies
  segment_ = std::move(segment);
  taken_ = Taken::message;
}

std::span<const std::byte> IncomingSpill::message() const noexcept {
  if (!segment_) {
    return {};
  }
  return {static_cast<const std::byte*>(segment_->elements()), segment_->count()};
}

namespace {

std::string serialised(const std::string&) { return "(serialised)"; }

bool inspect_spilled_message(const SegmentSnapshot& snapshot, FieldList& out) {
  const auto control = snapshot.control<SpilledMessageControl>();
  if (!control) {
    return false;
  }
  out.add("message_bytes", control->message_bytes);
  out.add("queued", control->queued != 0);
  const std::size_t name_length = ::strnlen(control->owner_name, sizeof control->owner_name);
  if (control->owner_inode != 0 || name_length == 0) {
    out.add("queue", "anonymous (memory inode " + std::to_string(control->owner_inode) + ")");
  } else {
    out.add("queue", std::string(control->owner_name, name_length));
  }
  return true;
}

[[maybe_unused]] const bool spilled_message_inspector_registered =
    register_inspector(ObjectKind::spilled_message, {serialised, inspect_spilled_message});

}  // namespace

}  // namespace multiproc::detail
