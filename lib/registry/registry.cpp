#include <multiproc/registry.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include <sys/stat.h>
#include <unistd.h>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <multiproc/barrier.hpp>
#include <multiproc/condition.hpp>
#include <multiproc/detail/os/liveness.hpp>
#include <multiproc/detail/store/shared_store.hpp>
#include <multiproc/error.hpp>
#include <multiproc/event.hpp>
#include <multiproc/lock.hpp>
#include <multiproc/queue.hpp>
#include <multiproc/semaphore.hpp>
#include <multiproc/spsc_ring.hpp>

#include "os/demangle.hpp"
#include "shm/segment_checks.hpp"

namespace bip = boost::interprocess;
namespace fs = std::filesystem;

namespace multiproc {

namespace {

constexpr std::string_view shm_dir = "/dev/shm";
const std::string file_prefix = shm_file_name("");

// An object that has stayed without a complete header this long has lost its creator: creation
// takes microseconds, and openers give up after 2 s (segment.cpp's initialisation_grace).
constexpr auto creation_grace = std::chrono::seconds(10);

// A read-only mapping of a named object and the header copied out of it.
struct ReadOnlyView {
  bip::mapped_region region;
  SegmentHeader header{};
  std::uint64_t bytes = 0;

  [[nodiscard]] const std::byte* base() const noexcept { return static_cast<const std::byte*>(region.get_address()); }
};

// Empty when the name vanished. A file too small for a header maps nothing and copies nothing.
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

// The type a user wrote: a slot ring's message type rather than its slot, nothing for objects whose
// elements are the library's own state, "serialised" for a codec queue.
std::string shown_type(ObjectKind kind, const std::string& element) {
  switch (kind) {
    case ObjectKind::queue:
    case ObjectKind::mpmc_ring: {
      constexpr std::string_view slot = "multiproc::detail::Slot<";
      if (element.rfind(slot, 0) == 0 && element.back() == '>') {
        return element.substr(slot.size(), element.size() - slot.size() - 1);
      }
      return element;
    }
    case ObjectKind::byte_queue: return "(serialised)";
    case ObjectKind::value:
    case ObjectKind::raw_value:
    case ObjectKind::array:
    case ObjectKind::raw_array:
    case ObjectKind::spsc_ring: return element;
    default: return {};
  }
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
    info.type = shown_type(static_cast<ObjectKind>(h.kind), detail::demangle(stored_name));
    info.element_size = h.element_size;
    info.element_count = h.element_count;
  }
  return info;
}

[[noreturn]] void not_found(std::string_view name) {
  throw NotFound("multiproc: no shared object named \"" + std::string(name) + "\"");
}

// ---- Live state, by kind ------------------------------------------------------------------------

// A copy of the T at `offset`, or empty when it would not lie inside `limit` bytes of the mapping.
template <class T>
std::optional<T> read_at(const ReadOnlyView& view, std::uint64_t offset, std::uint64_t limit) {
  if (offset > limit || limit - offset < sizeof(T) || limit > view.bytes) {
    return std::nullopt;
  }
  T copy;
  std::memcpy(&copy, view.base() + offset, sizeof(T));
  return copy;
}

struct Fields {
  std::vector<StateField> list;
  template <class V>
  void add(std::string key, V value) {
    if constexpr (std::is_same_v<V, bool>) {
      list.push_back({std::move(key), value});
    } else if constexpr (std::is_floating_point_v<V>) {
      list.push_back({std::move(key), static_cast<double>(value)});
    } else if constexpr (std::is_signed_v<V>) {
      list.push_back({std::move(key), static_cast<std::int64_t>(value)});
    } else if constexpr (std::is_unsigned_v<V>) {
      list.push_back({std::move(key), static_cast<std::uint64_t>(value)});
    } else {
      list.push_back({std::move(key), std::string(value)});
    }
  }
};

// The process a thread id belongs to (its thread group, from /proc/<tid>/status), or 0.
pid_t process_of_thread(pid_t tid) {
  std::ifstream status("/proc/" + std::to_string(tid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Tgid:", 0) == 0) {
      return static_cast<pid_t>(std::stol(line.substr(5)));
    }
  }
  return 0;
}

// glibc keeps a robust mutex's holder in the low bits of its lock word (the kernel's robust-futex
// protocol: holder tid, plus FUTEX_OWNER_DIED when the holder died holding it) and an RLock's depth
// in __count.
void add_lock_state(Fields& out, const LockState& lock, bool recursive, std::string_view prefix = "") {
  constexpr unsigned tid_mask = 0x3fffffff;
  constexpr unsigned owner_died = 0x40000000;
  const auto word = static_cast<unsigned>(lock.mutex.__data.__lock);
  const auto holder = static_cast<pid_t>(word & tid_mask);
  const std::string p(prefix);
  out.add(p + "held", holder != 0);
  if (holder != 0) {
    out.add(p + "held_by_tid", holder);
    if (const pid_t process = process_of_thread(holder); process != 0) {
      out.add(p + "held_by_pid", process);
    }
    out.add(p + "holder_alive", detail::process_is_alive(static_cast<std::uint32_t>(holder)));
    if (recursive) {
      out.add(p + "depth", lock.mutex.__data.__count);
    }
  }
  out.add(p + "holder_died", (word & owner_died) != 0);
}

template <class Control>
std::optional<Control> control_of(const ReadOnlyView& view) {
  const SegmentHeader& h = view.header;
  if (h.prefix_bytes < sizeof(Control)) {
    return std::nullopt;
  }
  return read_at<Control>(view, h.prefix_offset, h.prefix_offset + h.prefix_bytes);
}

template <class State>
std::optional<State> element_of(const ReadOnlyView& view) {
  const SegmentHeader& h = view.header;
  if (h.element_size != sizeof(State) || h.element_count < 1) {
    return std::nullopt;
  }
  return read_at<State>(view, h.elements_offset, view.bytes);
}

void add_signals(Fields& out, const detail::QueueSignals& s) {
  out.add("closed", s.closed != 0);
  out.add("consumers_may_be_asleep", s.consumers_waiting != 0);
  out.add("producers_may_be_asleep", s.producers_waiting != 0);
  out.add("unfinished_tasks", s.unfinished_tasks);
}

void add_positions(Fields& out, std::uint64_t capacity, std::uint64_t produced, std::uint64_t consumed) {
  out.add("capacity", capacity);
  // A snapshot of two indices read at different moments: clamp what they say into [0, capacity].
  out.add("depth", produced >= consumed ? std::min(produced - consumed, capacity) : std::uint64_t{0});
}

// A built-in arithmetic element, shown as numbers: int, long, double... (Itanium codes).
template <class T>
void add_numbers_as(Fields& out, const ReadOnlyView& view) {
  const SegmentHeader& h = view.header;
  constexpr std::uint64_t shown = 64;
  std::ostringstream text;
  const std::uint64_t count = std::min(h.element_count, shown);
  for (std::uint64_t i = 0; i < count; ++i) {
    const auto value = read_at<T>(view, h.elements_offset + i * sizeof(T), view.bytes);
    if (!value) {
      return;
    }
    if (h.element_count == 1) {
      out.add("value", *value);
      return;
    }
    text << (i == 0 ? "[" : ", ") << +*value;
  }
  text << (h.element_count > shown ? ", ...]" : "]");
  out.add("values", text.str());
}

void add_elements(Fields& out, const ReadOnlyView& view) {
  const SegmentHeader& h = view.header;
  out.add("count", h.element_count);
  constexpr std::uint64_t shown_bytes = 256;
  const std::uint64_t bytes = std::min(h.element_count * h.element_size, shown_bytes);  // checked: fits the mapping
  static constexpr char digits[] = "0123456789abcdef";
  std::string hex;
  for (std::uint64_t i = 0; i < bytes; ++i) {
    const auto byte = static_cast<unsigned>(view.base()[h.elements_offset + i]);
    hex += digits[byte >> 4];
    hex += digits[byte & 15];
  }
  out.add("bytes_hex", hex + (h.element_count * h.element_size > shown_bytes ? "..." : ""));
  const std::string_view type(h.element_name, strnlen(h.element_name, sizeof h.element_name));
  const auto is = [&](auto sample, const char* code) {
    return type == code && h.element_size == sizeof(sample);
  };
  if (is(int{}, "i")) add_numbers_as<int>(out, view);
  else if (is(unsigned{}, "j")) add_numbers_as<unsigned>(out, view);
  else if (is(long{}, "l")) add_numbers_as<long>(out, view);
  else if (is(0UL, "m")) add_numbers_as<unsigned long>(out, view);
  else if (is(0LL, "x")) add_numbers_as<long long>(out, view);
  else if (is(0ULL, "y")) add_numbers_as<unsigned long long>(out, view);
  else if (is(short{}, "s")) add_numbers_as<short>(out, view);
  else if (is(static_cast<unsigned short>(0), "t")) add_numbers_as<unsigned short>(out, view);
  else if (is(char{}, "c")) add_numbers_as<char>(out, view);
  else if (is(static_cast<signed char>(0), "a")) add_numbers_as<signed char>(out, view);
  else if (is(static_cast<unsigned char>(0), "h")) add_numbers_as<unsigned char>(out, view);
  else if (is(false, "b")) add_numbers_as<bool>(out, view);
  else if (is(0.0F, "f")) add_numbers_as<float>(out, view);
  else if (is(0.0, "d")) add_numbers_as<double>(out, view);
}

// Empty when the object's control block does not fit where its header says it is.
std::optional<std::vector<StateField>> live_state(const ReadOnlyView& view) {
  Fields out;
  const SegmentHeader& h = view.header;
  switch (static_cast<ObjectKind>(h.kind)) {
    case ObjectKind::value:
    case ObjectKind::array: {
      const auto lock = control_of<LockState>(view);
      if (!lock) return std::nullopt;
      add_lock_state(out, *lock, false, "lock_");
      add_elements(out, view);
      break;
    }
    case ObjectKind::raw_value:
    case ObjectKind::raw_array: add_elements(out, view); break;
    case ObjectKind::lock:
    case ObjectKind::rlock: {
      const auto lock = element_of<LockState>(view);
      if (!lock) return std::nullopt;
      add_lock_state(out, *lock, h.kind == static_cast<std::uint32_t>(ObjectKind::rlock));
      break;
    }
    case ObjectKind::semaphore:
    case ObjectKind::bounded_semaphore: {
      const auto state = element_of<SemaphoreState>(view);
      if (!state) return std::nullopt;
      out.add("value", state->value);
      out.add("sleepers", state->sleepers);
      if (state->bound != 0) out.add("bound", state->bound);
      break;
    }
    case ObjectKind::event: {
      const auto state = element_of<EventState>(view);
      if (!state) return std::nullopt;
      out.add("set", state->flag != 0);
      out.add("sleepers", state->sleepers);
      break;
    }
    case ObjectKind::condition: {
      const auto state = element_of<ConditionState>(view);
      if (!state) return std::nullopt;
      out.add("notifications", state->sequence);
      out.add("sleepers", state->sleepers);
      if (h.prefix_bytes >= sizeof(LockState)) {
        const auto lock = control_of<LockState>(view);
        if (!lock) return std::nullopt;
        add_lock_state(out, *lock, false, "lock_");
      }
      break;
    }
    case ObjectKind::barrier: {
      const auto state = element_of<BarrierState>(view);
      if (!state) return std::nullopt;
      out.add("parties", state->parties);
      out.add("waiting", state->arrived);
      out.add("broken", state->broken != 0);
      out.add("generation", state->generation);
      break;
    }
    case ObjectKind::spsc_ring: {
      const auto control = control_of<SpscControl>(view);
      if (!control) return std::nullopt;
      add_positions(out, h.element_count, control->head, control->tail);
      break;
    }
    case ObjectKind::mpmc_ring: {
      const auto control = control_of<detail::SlotRingControl>(view);
      if (!control) return std::nullopt;
      add_positions(out, h.element_count, control->tail, control->head);
      break;
    }
    case ObjectKind::queue: {
      const auto control = control_of<detail::SlotQueueControl>(view);
      if (!control) return std::nullopt;
      add_positions(out, h.element_count, control->ring.tail, control->ring.head);
      add_signals(out, control->signals);
      break;
    }
    case ObjectKind::byte_queue: {
      const auto control = control_of<detail::ByteQueueControl>(view);
      if (!control) return std::nullopt;
      out.add("capacity", control->ring.max_messages);
      out.add("depth", control->ring.messages);
      out.add("ring_bytes", h.element_count);
      out.add("bytes_used", control->ring.tail >= control->ring.head
                                ? std::min(control->ring.tail - control->ring.head, h.element_count)
                                : std::uint64_t{0});
      add_signals(out, control->signals);
      add_lock_state(out, control->ring.lock, false, "lock_");
      break;
    }
    case ObjectKind::pipe:           // pipes and a pool's channels are anonymous: never found by name
    case ObjectKind::pool_channels: break;
    case ObjectKind::shared_dict:
    case ObjectKind::shared_list: {
      const auto control = control_of<detail::StoreControl>(view);
      if (!control) return std::nullopt;
      const std::uint64_t half = control->half_bytes;
      out.add("bytes", h.element_count);
      if (half == 0 || half > h.element_count / 2) return std::nullopt;
      const auto live = read_at<detail::HalfHeader>(view, h.elements_offset + (control->active & 1) * half, view.bytes);
      if (!live) return std::nullopt;
      out.add("entries", live->count);
      out.add("rebuilds_after_crashes_or_clears", control->rebuilds);
      add_lock_state(out, control->lock, false, "lock_");
      break;
    }
  }
  return std::move(out.list);
}

}  // namespace

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

std::vector<StateField> inspect_segment(std::string_view name) {
  detail::validate_name(name);
  const auto view = map_read_only(name);
  if (!view) {
    not_found(name);
  }
  const SegmentInfo info = describe(name, *view);
  const auto fail = [&](const std::string& why) -> std::vector<StateField> {
    throw LayoutMismatch("multiproc: cannot inspect \"" + std::string(name) + "\": " + why);
  };
  if (!info.problem.empty()) {
    return fail(info.problem);
  }
  auto state = live_state(*view);
  if (!state) {
    return fail("its control block does not fit where its header puts it (corrupt)");
  }
  return std::move(*state);
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
