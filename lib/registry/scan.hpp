#pragma once
// Internal to the registry: reading one file of /dev/shm without trusting it. Any local user can
// put anything there (a FIFO, a symlink, a file of their own or someone else's), so a file is
// opened without following links and without blocking, must be a regular file, is mapped
// read-only, and every byte read from it is checked before use.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <multiproc/registry.hpp>
#include <multiproc/segment.hpp>

namespace multiproc::detail {

// A read-only mapping of one file of /dev/shm, the header copied out of it, and why it could not
// be read when it could not (then `base` is null and only `problem` and `bytes` mean anything).
class ReadOnlyView {
 public:
  ReadOnlyView() = default;
  ReadOnlyView(ReadOnlyView&& other) noexcept;
  ReadOnlyView& operator=(ReadOnlyView&& other) noexcept;
  ReadOnlyView(const ReadOnlyView&) = delete;
  ReadOnlyView& operator=(const ReadOnlyView&) = delete;
  ~ReadOnlyView();

  // Empty when the file vanished. `file` is the name in /dev/shm.
  static std::optional<ReadOnlyView> open(const std::string& file);

  [[nodiscard]] const std::byte* base() const noexcept { return static_cast<const std::byte*>(base_); }
  [[nodiscard]] std::uint64_t bytes() const noexcept { return bytes_; }
  // Its inode (0 when unreadable): how /proc/<pid>/maps names it under any of its names.
  [[nodiscard]] std::uint64_t inode() const noexcept { return inode_; }
  [[nodiscard]] const SegmentHeader& header() const noexcept { return header_; }
  // Why it cannot be read ("permission denied", "a FIFO, not a regular file"), or empty.
  [[nodiscard]] const std::string& unreadable() const noexcept { return unreadable_; }
  // Some process holds it open (its shared flock), as the kernel sees it: true across PID
  // namespaces, where the holder's pid may be invisible to us.
  [[nodiscard]] bool in_use() const;

 private:
  int fd_ = -1;
  void* base_ = nullptr;
  std::uint64_t bytes_ = 0;
  std::uint64_t inode_ = 0;
  SegmentHeader header_{};
  std::string unreadable_;
};

// What the header of a mapped object says (without `mapped_by`). `file` is its name in /dev/shm.
SegmentInfo describe(const std::string& file, const ReadOnlyView& view);

[[noreturn]] void not_found(std::string_view name);

}  // namespace multiproc::detail
