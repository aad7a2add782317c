// The registry's listing: every named object's header, who made it, whether its creator lives,
// who maps it, and which ones have leaked.
#include "registry/scan.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <sys/stat.h>
#include <unistd.h>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <multiproc/detail/os/liveness.hpp>
#include <multiproc/error.hpp>

#include "os/demangle.hpp"
#include "shm/inspection.hpp"
#include "shm/segment_checks.hpp"

namespace bip = boost::interprocess;
namespace fs = std::filesystem;

namespace multiproc {

namespace detail {

namespace {

constexpr std::string_view shm_dir = "/dev/shm";
const std::string file_prefix = shm_file_name("");

// An object that has stayed without a complete header this long has lost its creator: creation
// takes microseconds, and openers give up after 2 s (segment.cpp's initialisation_grace).
constexpr auto creation_grace = std::chrono::seconds(10);

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

// The creator is alive if a live process has its pid and did not start after the object was made
// (with a second of slack: the boot time is known to the second only).
bool creator_alive(pid_t pid, std::chrono::system_clock::time_point created) {
  if (pid <= 0 || !detail::process_is_alive(static_cast<std::uint32_t>(pid))) {
    return false;
  }
  const auto started = process_start(pid);
  return !started || *started <= created + std::chrono::seconds(1);
}

// Object name -> pids mapping it (ascending), from every /proc/<pid>/maps this process may read.
// Callers scan while they map nothing themselves for the inspection, so the calling process is
// counted only for its own objects. Unlinked objects show as "... (deleted)" and so never match a
// name that exists.
std::map<std::string, std::vector<pid_t>, std::less<>> mappers() {
  std::map<std::string, std::vector<pid_t>, std::less<>> found;
  const std::string path_prefix = std::string(shm_dir) + "/" + file_prefix;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string pid_text = entry.path().filename().string();
    if (pid_text.empty() || !std::all_of(pid_text.begin(), pid_text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    std::ifstream maps(entry.path() / "maps");
    const auto pid = static_cast<pid_t>(std::stol(pid_text));
    for (std::string line; std::getline(maps, line);) {
      const auto at = line.find(path_prefix);
      if (at == std::string::npos) {
        continue;
      }
      auto& pids = found[line.substr(at + path_prefix.size())];
      if (pids.empty() || pids.back() != pid) {
        pids.push_back(pid);
      }
    }
  }
  for (auto& [name, pids] : found) {
    std::sort(pids.begin(), pids.end());
  }
  return found;
}

}  // namespace

std::optional<ReadOnlyView> map_read_only(std::string_view name) {
  ReadOnlyView view;
  try {
    const bip::shared_memory_object shm(bip::open_only, shm_file_name(name).c_str(), bip::read_only);
    bip::offset_t size = 0;
    shm.get_size(size);
    view.bytes = static_cast<std::uint64_t>(size);
    if (view.bytes >= sizeof(SegmentHeader)) {
      view.region = bip::mapped_region(shm, bip::read_only);
      // A snapshot: the creator publishes `magic` last, so a header read while it is still 0 is
      // reported as "being built" whatever the other fields hold.
      std::memcpy(&view.header, view.region.get_address(), sizeof view.header);
    }
  } catch (const bip::interprocess_exception& e) {
    if (e.get_native_error() == ENOENT) {
      return std::nullopt;
    }
    throw Error("multiproc: cannot read \"" + std::string(name) + "\": " + e.what());
  }
  return view;
}

SegmentInfo describe(std::string_view name, const ReadOnlyView& view) {
  SegmentInfo info;
  info.name = name;
  info.file_bytes = view.bytes;
  const SegmentHeader& h = view.header;
  if (view.bytes < sizeof(SegmentHeader)) {
    info.health = view.bytes == 0 ? SegmentInfo::Health::being_built : SegmentInfo::Health::corrupt;
    info.problem = view.bytes == 0 ? "it is still being built, or its creator died while building it"
                                   : "it is too small for a multiproc object";
    return info;
  }
  info.problem = detail::header_problem(h, view.bytes);
  if (!info.problem.empty()) {
    info.health = h.magic == 0                   ? SegmentInfo::Health::being_built
                  : h.magic == segment_abandoned ? SegmentInfo::Health::abandoned
                                                 : SegmentInfo::Health::corrupt;
  }
  if (h.magic == segment_magic || h.magic == segment_abandoned) {  // the creator fields are written
    info.creator_pid = static_cast<pid_t>(h.creator_pid);
    info.created = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(h.created_unix_ns)));
    info.creator_alive = creator_alive(info.creator_pid, info.created);
  }
  if (info.problem.empty()) {
    info.kind = h.kind;
    char stored_name[sizeof h.element_name + 1] = {};
    std::memcpy(stored_name, h.element_name, sizeof h.element_name);
    const KindInspector* inspector = inspector_of(h.kind);
    info.type = inspector != nullptr ? inspector->shown_type(demangle(stored_name)) : std::string();
    info.element_size = h.element_size;
    info.element_count = h.element_count;
  }
  return info;
}

[[noreturn]] void not_found(std::string_view name) {
  throw NotFound("multiproc: no shared object named \"" + std::string(name) + "\"");
}

}  // namespace detail

using detail::describe;
using detail::map_read_only;
using detail::mappers;
using detail::not_found;
using detail::shm_dir;
using detail::file_prefix;
using detail::creation_grace;

std::vector<SegmentInfo> list_segments() {
  std::vector<SegmentInfo> found;
  std::error_code ec;
  const auto maps = mappers();
  for (const auto& entry : fs::directory_iterator(shm_dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (file.rfind(file_prefix, 0) != 0 || file.size() == file_prefix.size()) {
      continue;
    }
    const std::string name = file.substr(file_prefix.size());
    const auto view = map_read_only(name);
    if (!view) {
      continue;
    }
    SegmentInfo info = describe(name, *view);
    if (const auto it = maps.find(name); it != maps.end()) {
      info.mapped_by = it->second;
    }
    found.push_back(std::move(info));
  }
  std::sort(found.begin(), found.end(), [](const SegmentInfo& a, const SegmentInfo& b) { return a.name < b.name; });
  return found;
}

SegmentInfo describe_segment(std::string_view name) {
  detail::validate_name(name);
  auto view = map_read_only(name);
  if (!view) {
    not_found(name);
  }
  SegmentInfo info = describe(name, *view);
  view.reset();  // before the scan, which would otherwise find this inspection's own mapping
  const auto maps = mappers();
  if (const auto it = maps.find(name); it != maps.end()) {
    info.mapped_by = it->second;
  }
  return info;
}

std::vector<SegmentInfo> find_leaked_segments(std::string_view name_prefix) {
  std::vector<SegmentInfo> leaked;
  const auto now = std::chrono::system_clock::now();
  for (auto& info : list_segments()) {
    if (info.name.rfind(name_prefix, 0) != 0 || !info.mapped_by.empty() || info.creator_alive) {
      continue;
    }
    switch (info.health) {
      case SegmentInfo::Health::ok:
      case SegmentInfo::Health::abandoned: leaked.push_back(std::move(info)); break;
      case SegmentInfo::Health::being_built: {
        // Leaked only if it has stayed so far longer than creation takes (the creator's pid is not
        // written yet, so its death cannot be checked).
        struct stat st {};
        if (::stat((std::string(shm_dir) + "/" + shm_file_name(info.name)).c_str(), &st) == 0 &&
            std::chrono::system_clock::from_time_t(st.st_mtime) + creation_grace < now) {
          leaked.push_back(std::move(info));
        }
        break;
      }
      case SegmentInfo::Health::corrupt: break;  // maybe not ours: removed only by an explicit rm
    }
  }
  return leaked;
}

}  // namespace multiproc
