#include "shm/segment_files.hpp"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <optional>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <multiproc/error.hpp>
#include <multiproc/segment.hpp>

#include "shm/segment_checks.hpp"

namespace multiproc::detail {

namespace {

// Free space on the file system of `path`, or empty if it cannot be read.
std::optional<std::uint64_t> free_bytes(const char* path) {
  struct statvfs fs {};
  if (::statvfs(path, &fs) != 0) {
    return std::nullopt;
  }
  return std::uint64_t{fs.f_bavail} * fs.f_frsize;
}

// The memory the system could still give (MemAvailable plus free swap, from /proc/meminfo).
std::optional<std::uint64_t> available_memory() {
  std::ifstream meminfo("/proc/meminfo");
  std::uint64_t total_kib = 0;
  int found = 0;
  for (std::string key; meminfo >> key;) {
    std::uint64_t kib = 0;
    meminfo >> kib;
    if (key == "MemAvailable:" || key == "SwapFree:") {
      total_kib += kib;
      ++found;
    }
    meminfo.ignore(64, '\n');
  }
  return found > 0 ? std::optional<std::uint64_t>(total_kib * 1024) : std::nullopt;
}

std::atomic<unsigned> builds_started{0};

// Removes the file `file` if no process holds it and it never became an object (see
// never_published). True if it removed it.
bool remove_if_never_published(const std::string& file) {
  const int fd = ::open(path_of(file).c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  bool removed = false;
  struct stat st {};
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    std::uint32_t magic = 0;
    const bool readable = st.st_size == 0 || ::pread(fd, &magic, sizeof magic, 0) == static_cast<ssize_t>(sizeof magic);
    struct stat named {};
    // Still the file the name points to (not removed and made anew meanwhile).
    if (readable && never_published(static_cast<std::uint64_t>(st.st_size), magic) &&
        ::lstat(path_of(file).c_str(), &named) == 0 && named.st_ino == st.st_ino && named.st_dev == st.st_dev) {
      removed = ::unlink(path_of(file).c_str()) == 0;
    }
  }
  ::close(fd);
  return removed;
}

}  // namespace

std::string mebibytes(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return text;
}

std::string path_of(std::string_view file) { return std::string(shm_dir) + "/" + std::string(file); }

std::string building_file() {
  return std::string(building_prefix) + std::to_string(::getpid()) + "-" +
         std::to_string(builds_started.fetch_add(1, std::memory_order_relaxed));
}

void allocate_pages(int fd, std::uint64_t bytes, const std::string& what, bool named) {
  const std::optional<std::uint64_t> room = named ? free_bytes(shm_dir.data()) : available_memory();
  const std::string where = named ? std::string(shm_dir) : "the system";
  const auto refuse = [&](int err) {
    std::string why = what + ": it needs " + mebibytes(bytes) + " of shared memory, and " + where + " has ";
    why += room ? mebibytes(*room) + " free" : "no more to give";
    if (named) {
      why += " (Docker's /dev/shm is 64 MiB unless the container is started with --shm-size)";
    }
    throw_errno(err, why);
  };
  if (room && bytes > *room) {
    refuse(named ? ENOSPC : ENOMEM);
  }
  const int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  if (rc == ENOSPC || rc == ENOMEM || rc == EFBIG) {
    refuse(rc);
  }
  if (rc != 0 && rc != EOPNOTSUPP) {  // a file system without fallocate: pages come on first touch
    throw_errno(rc, what + ": cannot allocate its pages");
  }
}

void hold_shared(int fd, const std::string& what) {
  while (::flock(fd, LOCK_SH) != 0) {
    if (errno != EINTR) {
      throw_errno(errno, what + ": cannot lock it");
    }
  }
}

void link_name(const std::string& building, const std::string& file, const std::string& what) {
  while (::link(path_of(building).c_str(), path_of(file).c_str()) != 0) {
    if (errno != EEXIST) {
      throw_errno(errno, what);
    }
    if (!remove_if_never_published(file)) {
      throw AlreadyExists(what + ": the name is already in use");
    }
  }
}

}  // namespace multiproc::detail

namespace multiproc {

std::string shm_file_name(std::string_view name) { return "multiproc." + std::string(name); }

bool unlink(std::string_view name) {
  detail::validate_name(name);
  if (::shm_unlink(shm_file_name(name).c_str()) == 0) {
    return true;
  }
  if (errno == ENOENT) {
    return false;
  }
  detail::throw_errno(errno, "multiproc: cannot unlink " + detail::quoted(name));
}

ScopedUnlink::~ScopedUnlink() {
  try {
    unlink(name_);
  } catch (...) {  // a malformed name was never created, nor one we may not remove: nothing to do
  }
}

}  // namespace multiproc
