// The registry's census of processes, from /proc: when a process started, whether an object's
// creator is still alive, and which processes map which of our files.
#include "registry/proc_census.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

#include <multiproc/detail/os/liveness.hpp>

#include "shm/segment_checks.hpp"

namespace multiproc::detail {

namespace fs = std::filesystem;

namespace {

// When `pid` started, from /proc/<pid>/stat (field 22, clock ticks after boot) and the boot time
// in /proc/stat. Empty if the process is gone or /proc cannot say.
std::optional<std::chrono::system_clock::time_point> process_start(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) {
    return std::nullopt;
  }
  const auto after_name = line.rfind(')');  // the command name may contain spaces and ')'
  if (after_name == std::string::npos) {
    return std::nullopt;
  }
  std::istringstream fields(line.substr(after_name + 2));
  std::string field;
  // Field 3 (state) is the first after the name; starttime is field 22.
  for (int index = 3; index < 22 && fields >> field; ++index) {
  }
  unsigned long long ticks = 0;
  if (!(fields >> ticks)) {
    return std::nullopt;
  }
  std::ifstream boot("/proc/stat");
  long long boot_seconds = -1;
  for (std::string key; boot >> key;) {
    if (key == "btime") {
      boot >> boot_seconds;
      break;
    }
  }
  const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
  if (boot_seconds < 0 || ticks_per_second <= 0) {
    return std::nullopt;
  }
  const auto since_boot = std::chrono::duration<double>(static_cast<double>(ticks) / static_cast<double>(ticks_per_second));
  return std::chrono::system_clock::time_point(std::chrono::seconds(boot_seconds)) +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(since_boot);
}

}  // namespace

bool creator_alive(pid_t pid, std::chrono::system_clock::time_point created) {
  if (pid <= 0 || !detail::process_is_alive(static_cast<std::uint32_t>(pid))) {
    return false;
  }
  const auto started = process_start(pid);
  return !started || *started <= created + std::chrono::seconds(1);
}

std::uint64_t mapped_inode(const std::string& line) {
  std::istringstream fields(line);
  std::string range;
  std::string perms;
  std::string offset;
  std::string device;
  std::uint64_t inode = 0;
  return fields >> range >> perms >> offset >> device >> inode ? inode : 0;
}

std::map<std::uint64_t, std::vector<pid_t>> mappers() {
  std::map<std::uint64_t, std::vector<pid_t>> found;
  const std::string path_prefix = std::string(shm_dir) + "/multiproc";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string pid_text = entry.path().filename().string();
    if (pid_text.empty() || !std::all_of(pid_text.begin(), pid_text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    std::ifstream maps(entry.path() / "maps");
    const auto pid = static_cast<pid_t>(std::stol(pid_text));
    for (std::string line; std::getline(maps, line);) {
      if (line.find(path_prefix) == std::string::npos) {
        continue;
      }
      const std::uint64_t inode = mapped_inode(line);
      if (inode == 0) {
        continue;
      }
      auto& pids = found[inode];
      if (pids.empty() || pids.back() != pid) {
        pids.push_back(pid);
      }
    }
  }
  for (auto& [inode, pids] : found) {
    std::sort(pids.begin(), pids.end());
  }
  return found;
}

bool anonymous_memory_mapped(std::uint64_t inode) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    std::ifstream maps(entry.path() / "maps");
    for (std::string line; std::getline(maps, line);) {
      if (line.find("/memfd:multiproc") == std::string::npos) {
        continue;
      }
      if (mapped_inode(line) == inode) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace multiproc::detail
