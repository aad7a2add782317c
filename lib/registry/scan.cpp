// The registry's listing: every named object's header, who made it, whether it is in use, who maps
// it, and which ones have leaked.
#include "registry/scan.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <multiproc/detail/channel/spilled_message.hpp>
#include <multiproc/error.hpp>

#include "os/demangle.hpp"
#include "registry/proc_census.hpp"
#include "shm/inspection.hpp"
#include "shm/segment_checks.hpp"

namespace fs = std::filesystem;

namespace multiproc {

namespace detail {

namespace {

const std::string file_prefix = shm_file_name("");

std::string path_of(const std::string& file) { return std::string(shm_dir) + "/" + file; }

// "a FIFO", "a symbolic link"...: what a non-regular file is, for the reason it is unreadable.
std::string what_kind_of_file(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return "not a file";
}

// A spilled message whose reference is in the ring of a queue still in use is in flight, not
// leaked, although no process holds its segment between its sender's put and its reader's get.
bool spill_in_flight(const SegmentInfo& info) {
  const auto view = ReadOnlyView::open(info.file);
  if (!view || view->base() == nullptr) {
    return false;
  }
  const SegmentSnapshot snapshot(view->base(), view->bytes(), view->header());
  const auto control = snapshot.control<SpilledMessageControl>();
  if (!control || control->queued == 0) {
    return false;  // its sender died before putting it
  }
  const std::size_t length = ::strnlen(control->owner_name, sizeof control->owner_name);
  if (length == 0) {
    return control->owner_inode != 0 && anonymous_memory_mapped(control->owner_inode);
  }
  const std::string queue(control->owner_name, length);
  try {
    validate_name(queue);
  } catch (const InvalidName&) {
    return false;  // not a name the library wrote
  }
  const auto queue_view = ReadOnlyView::open(shm_file_name(queue));
  return queue_view && queue_view->in_use();
}

}  // namespace

ReadOnlyView::ReadOnlyView(ReadOnlyView&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      base_(std::exchange(other.base_, nullptr)),
      bytes_(other.bytes_),
      inode_(other.inode_),
      header_(other.header_),
      unreadable_(std::move(other.unreadable_)) {}

ReadOnlyView& ReadOnlyView::operator=(ReadOnlyView&& other) noexcept {
  if (this != &other) {
    this->~ReadOnlyView();
    new (this) ReadOnlyView(std::move(other));
  }
  return *this;
}

ReadOnlyView::~ReadOnlyView() {
  if (base_ != nullptr) {
    ::munmap(base_, bytes_);
  }
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

std::optional<ReadOnlyView> ReadOnlyView::open(const std::string& file) {
  ReadOnlyView view;
  // O_NOFOLLOW: a symlink is reported, not followed; O_NONBLOCK: opening a FIFO does not wait.
  view.fd_ = ::open(path_of(file).c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (view.fd_ < 0) {
    if (errno == ENOENT) {
      return std::nullopt;
    }
    struct stat st {};
    if (errno == ELOOP && ::lstat(path_of(file).c_str(), &st) == 0) {
      view.unreadable_ = what_kind_of_file(st.st_mode) + ", not a regular file";
    } else {
      view.unreadable_ = std::error_code(errno, std::generic_category()).message();
    }
    return view;
  }
  struct stat st {};
  if (::fstat(view.fd_, &st) != 0) {
    view.unreadable_ = std::error_code(errno, std::generic_category()).message();
    return view;
  }
  if (!S_ISREG(st.st_mode)) {
    view.unreadable_ = what_kind_of_file(st.st_mode) + ", not a regular file";
    return view;
  }
  view.bytes_ = static_cast<std::uint64_t>(st.st_size);
  view.inode_ = static_cast<std::uint64_t>(st.st_ino);
  if (view.bytes_ >= sizeof(SegmentHeader)) {
    void* base = ::mmap(nullptr, view.bytes_, PROT_READ, MAP_SHARED, view.fd_, 0);
    if (base == MAP_FAILED) {
      view.unreadable_ = "cannot map it: " + std::error_code(errno, std::generic_category()).message();
      return view;
    }
    view.base_ = base;
    // A snapshot: the header is written before the object gets its name, and never after.
    std::memcpy(&view.header_, base, sizeof view.header_);
  }
  return view;
}

bool ReadOnlyView::in_use() const {
  if (fd_ < 0 || !unreadable_.empty()) {
    return false;
  }
  // Every process that holds the object holds a shared flock on it: if we can take the exclusive
  // one, nobody does. Released at once; an opener that arrives meanwhile waits that instant.
  if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) {
    ::flock(fd_, LOCK_UN);
    return false;
  }
  return true;
}

SegmentInfo describe(const std::string& file, const ReadOnlyView& view) {
  SegmentInfo info;
  info.file = file;
  if (file.rfind(file_prefix, 0) == 0) {
    info.name = file.substr(file_prefix.size());
  }
  info.file_bytes = view.bytes();
  if (!view.unreadable().empty()) {
    info.health = SegmentInfo::Health::unreadable;
    info.problem = view.unreadable();
    return info;
  }
  info.in_use = view.in_use();
  const bool building = file.rfind(building_prefix, 0) == 0;
  const SegmentHeader& h = view.header();
  if (never_published(view.bytes(), view.bytes() >= sizeof(SegmentHeader) ? h.magic : segment_magic)) {
    info.health = building ? SegmentInfo::Health::being_built : SegmentInfo::Health::abandoned;
    info.problem = building ? "being built, or its creator died while building it"
                            : "it never became an object (its creator died or failed while building it)";
    if (view.bytes() >= sizeof(SegmentHeader) && h.magic == segment_abandoned) {
      info.creator_pid = static_cast<pid_t>(h.creator_pid);
    }
    return info;
  }
  info.problem = header_problem(h, view.bytes());
  if (!info.problem.empty()) {
    info.health = SegmentInfo::Health::corrupt;
    return info;
  }
  if (building) {  // complete, about to get its name (or its creator died just before)
    info.health = SegmentInfo::Health::being_built;
    info.problem = "being built, or its creator died while building it";
  }
  info.creator_pid = static_cast<pid_t>(h.creator_pid);
  info.created = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(h.created_unix_ns)));
  info.creator_alive = creator_alive(info.creator_pid, info.created);
  info.kind = h.kind;
  char stored_name[sizeof h.element_name + 1] = {};
  std::memcpy(stored_name, h.element_name, sizeof h.element_name);
  const KindInspector* inspector = inspector_of(h.kind);
  info.type = inspector != nullptr ? inspector->shown_type(demangle(stored_name)) : std::string();
  info.element_size = h.element_size;
  info.element_count = h.element_count;
  return info;
}

[[noreturn]] void not_found(std::string_view name) {
  throw NotFound("multiproc: no shared object named \"" + std::string(name) + "\"");
}

}  // namespace detail

namespace {

// The pids mapping each listed file, matched by its inode.
void add_mappers(std::vector<SegmentInfo>& infos, const std::vector<std::uint64_t>& inodes) {
  const auto maps = detail::mappers();
  for (std::size_t i = 0; i < infos.size(); ++i) {
    if (const auto it = maps.find(inodes[i]); inodes[i] != 0 && it != maps.end()) {
      infos[i].mapped_by = it->second;
    }
  }
}

bool ours(const std::string& file) {
  return (file.rfind(detail::file_prefix, 0) == 0 && file.size() > detail::file_prefix.size()) ||
         file.rfind(detail::building_prefix, 0) == 0;
}

}  // namespace

std::vector<SegmentInfo> list_segments() {
  std::vector<std::pair<SegmentInfo, std::uint64_t>> found;  // with its inode
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(detail::shm_dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (!ours(file)) {
      continue;
    }
    if (const auto view = detail::ReadOnlyView::open(file)) {
      found.emplace_back(detail::describe(file, *view), view->inode());
    }
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first.file < b.first.file; });
  std::vector<SegmentInfo> infos;
  std::vector<std::uint64_t> inodes;
  for (auto& [info, inode] : found) {
    infos.push_back(std::move(info));
    inodes.push_back(inode);
  }
  add_mappers(infos, inodes);  // after every view is closed: the scan would otherwise count this process
  return infos;
}

SegmentInfo describe_segment(std::string_view name) {
  detail::validate_name(name);
  std::vector<SegmentInfo> one;
  std::uint64_t inode = 0;
  {
    const auto view = detail::ReadOnlyView::open(shm_file_name(name));
    if (!view) {
      detail::not_found(name);
    }
    one.push_back(detail::describe(shm_file_name(name), *view));
    inode = view->inode();
  }
  add_mappers(one, {inode});
  return one.front();
}

std::vector<SegmentInfo> find_leaked_segments(std::string_view name_prefix) {
  std::vector<SegmentInfo> leaked;
  for (auto& info : list_segments()) {
    const std::string_view named = info.name.empty() ? std::string_view(info.file) : std::string_view(info.name);
    if (named.rfind(name_prefix, 0) != 0 || info.in_use ||
        (info.kind == static_cast<std::uint32_t>(ObjectKind::spilled_message) && info.health == SegmentInfo::Health::ok &&
         detail::spill_in_flight(info))) {
      continue;
    }
    switch (info.health) {
      case SegmentInfo::Health::ok:
      case SegmentInfo::Health::being_built:
      case SegmentInfo::Health::abandoned: leaked.push_back(std::move(info)); break;
      case SegmentInfo::Health::corrupt:
      case SegmentInfo::Health::unreadable: break;  // maybe not ours: removed only by an explicit rm
    }
  }
  return leaked;
}

bool remove_if_unused(const SegmentInfo& leaked) {
  if (!ours(leaked.file) || leaked.file.find('/') != std::string::npos) {
    return false;
  }
  const std::string path = std::string(detail::shm_dir) + "/" + leaked.file;
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return false;
  }
  bool removed = false;
  struct stat held {};
  struct stat named {};
  // Under the exclusive lock nobody can be holding it, nor start to (an opener waits, then finds
  // the file removed and reports it gone); the name must still be this very file.
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && ::fstat(fd, &held) == 0 && S_ISREG(held.st_mode) &&
      ::lstat(path.c_str(), &named) == 0 && named.st_ino == held.st_ino && named.st_dev == held.st_dev) {
    removed = ::unlink(path.c_str()) == 0;
  }
  ::close(fd);
  return removed;
}

}  // namespace multiproc
