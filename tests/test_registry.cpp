// The registry (list/describe/inspect/find leaked) and the `multiproc` tool on real segments.
#define BOOST_TEST_MODULE registry
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;
using nlohmann::json;

namespace {

std::string shm_path(const std::string& name) { return "/dev/shm/" + mp::shm_file_name(name); }

std::optional<mp::SegmentInfo> listed(const std::string& name) {
  for (auto& info : mp::list_segments()) {
    if (info.name == name) {
      return info;
    }
  }
  return std::nullopt;
}

bool is_leaked(const std::string& name) {
  const auto leaked = mp::find_leaked_segments(test::name_prefix());
  return std::any_of(leaked.begin(), leaked.end(), [&](const mp::SegmentInfo& info) { return info.name == name; });
}

template <class T>
T field(const std::vector<mp::StateField>& fields, const std::string& key) {
  for (const auto& f : fields) {
    if (f.key == key) {
      return std::get<T>(f.value);
    }
  }
  BOOST_FAIL("no field " << key);
  return T{};
}

bool has_field(const std::vector<mp::StateField>& fields, const std::string& key) {
  return std::any_of(fields.begin(), fields.end(), [&](const mp::StateField& f) { return f.key == key; });
}

// Makes a named object in a child that then exits: its creator is dead, and nobody maps it.
template <class Object, class... Args>
void create_in_dead_child(const std::string& name, Args... args) {
  BOOST_REQUIRE_EQUAL(test::in_child([&] {
                        Object object(mp::create, name, args...);
                        return 0;
                      }),
                      0);
}

using ToolRun = test::CommandRun;

ToolRun run_tool(const std::string& arguments) {
  const char* tool = std::getenv("MULTIPROC_TOOL");
  BOOST_REQUIRE_MESSAGE(tool != nullptr, "MULTIPROC_TOOL must name the multiproc binary");
  return test::run_command(std::string(tool) + " " + arguments);
}

json tool_json(const std::string& arguments) {
  const ToolRun run = run_tool(arguments);
  BOOST_REQUIRE_MESSAGE(run.status == 0, "multiproc " << arguments << " failed: " << run.output);
  return json::parse(run.output);
}

}  // namespace

BOOST_AUTO_TEST_CASE(describe_reports_kind_type_creator_and_mappers) {
  const auto name = test::unique_name("value");
  mp::ScopedUnlink cleanup{name};
  mp::Value<long> value(mp::create, name, 7);
  const auto info = mp::describe_segment(name);
  BOOST_TEST((info.health == mp::SegmentInfo::Health::ok));
  BOOST_TEST(info.problem.empty());
  BOOST_TEST(info.kind == static_cast<std::uint32_t>(mp::ObjectKind::value));
  BOOST_TEST(info.type == "long");
  BOOST_TEST(info.element_count == 1u);
  BOOST_TEST(info.creator_pid == ::getpid());
  BOOST_TEST(info.creator_alive);
  BOOST_TEST(info.file_bytes > sizeof(mp::SegmentHeader));
  const auto age = std::chrono::system_clock::now() - info.created;
  BOOST_TEST((age >= std::chrono::seconds(0) && age < std::chrono::seconds(60)));
  // Mappers are the processes that use the object (not the inspection's own read-only look): this
  // one, and a child once it opens the object by name.
  BOOST_TEST((info.mapped_by == std::vector<pid_t>{::getpid()}));
  test::Notice opened;
  test::Notice done;
  mp::Process holder{[&] {
    mp::Value<long> mine(mp::open, name);
    opened.raise();
    done.wait();
    return 0;
  }};
  holder.start();
  opened.wait();
  const auto with_child = mp::describe_segment(name);
  done.raise();
  holder.join();
  BOOST_TEST((with_child.mapped_by == std::vector<pid_t>{std::min(::getpid(), holder.pid()), std::max(::getpid(), holder.pid())}));
  BOOST_REQUIRE(listed(name));
  BOOST_TEST(listed(name)->type == "long");
}

BOOST_AUTO_TEST_CASE(describe_refuses_bad_and_missing_names) {
  BOOST_CHECK_THROW(mp::describe_segment("../etc"), mp::InvalidName);
  BOOST_CHECK_THROW(mp::describe_segment(test::unique_name("absent")), mp::NotFound);
  BOOST_CHECK_THROW(mp::inspect_segment(test::unique_name("absent")), mp::NotFound);
}

BOOST_AUTO_TEST_CASE(queue_state_shows_capacity_depth_and_close) {
  const auto name = test::unique_name("queue");
  mp::ScopedUnlink cleanup{name};
  mp::Queue<int> queue(mp::create, name, 8);
  for (int i = 0; i < 3; ++i) {
    queue.put(i);
  }
  auto state = mp::inspect_segment(name);
  BOOST_TEST(field<std::uint64_t>(state, "capacity") == 8u);
  BOOST_TEST(field<std::uint64_t>(state, "depth") == 3u);
  BOOST_TEST(!field<bool>(state, "closed"));
  (void)queue.get();
  queue.close();
  state = mp::inspect_segment(name);
  BOOST_TEST(field<std::uint64_t>(state, "depth") == 2u);
  BOOST_TEST(field<bool>(state, "closed"));

  const auto codec_name = test::unique_name("strings");
  mp::ScopedUnlink codec_cleanup{codec_name};
  mp::Queue<std::string> strings(mp::create, codec_name, 4);
  strings.put("hello");
  state = mp::inspect_segment(codec_name);
  BOOST_TEST(field<std::uint64_t>(state, "capacity") == 4u);
  BOOST_TEST(field<std::uint64_t>(state, "depth") == 1u);
  BOOST_TEST(field<std::uint64_t>(state, "bytes_used") > 5u);
}

BOOST_AUTO_TEST_CASE(lock_state_names_the_holder_and_sees_its_death) {
  const auto name = test::unique_name("lock");
  mp::ScopedUnlink cleanup{name};
  mp::Lock lock(mp::create, name);
  BOOST_TEST(!field<bool>(mp::inspect_segment(name), "held"));
  test::Notice holding;
  mp::Process holder{[&] {
    lock.acquire();
    holding.raise();
    ::pause();  // until killed, holding the lock
    return 0;
  }};
  holder.start();
  holding.wait();
  auto state = mp::inspect_segment(name);
  BOOST_TEST(field<bool>(state, "held"));
  BOOST_TEST(field<std::int64_t>(state, "held_by_tid") == holder.pid());
  BOOST_TEST(field<std::int64_t>(state, "held_by_pid") == holder.pid());
  BOOST_TEST(field<bool>(state, "holder_alive"));
  holder.kill();
  holder.join();
  // The kernel marks a robust lock whose holder died: nobody holds it, the next taker recovers it.
  state = mp::inspect_segment(name);
  BOOST_TEST(!field<bool>(state, "held"));
  BOOST_TEST(field<bool>(state, "holder_died"));
  lock.acquire();
  BOOST_TEST(lock.recovered());
  BOOST_TEST(field<std::int64_t>(mp::inspect_segment(name), "held_by_tid") == ::getpid());
  // Held by another thread of this process: the thread's id, and this process.
  lock.release();
  std::thread([&] {
    lock.acquire();
    const auto by_thread = mp::inspect_segment(name);
    BOOST_TEST(field<std::int64_t>(by_thread, "held_by_tid") != ::getpid());
    BOOST_TEST(field<std::int64_t>(by_thread, "held_by_pid") == ::getpid());
    lock.release();
  }).join();
}

BOOST_AUTO_TEST_CASE(values_and_arrays_of_builtin_types_are_decoded) {
  const auto value_name = test::unique_name("value");
  const auto array_name = test::unique_name("array");
  mp::ScopedUnlink cleanup_value{value_name};
  mp::ScopedUnlink cleanup_array{array_name};
  mp::Value<int> value(mp::create, value_name, -42);
  mp::RawArray<double> array(mp::create, array_name, std::vector<double>{1.5, -2.25});
  const auto value_state = mp::inspect_segment(value_name);
  BOOST_TEST(field<std::int64_t>(value_state, "value") == -42);
  BOOST_TEST(field<std::string>(value_state, "bytes_hex") == "d6ffffff");
  BOOST_TEST(!field<bool>(value_state, "lock_held"));
  const auto array_state = mp::inspect_segment(array_name);
  BOOST_TEST(field<std::string>(array_state, "values") == "[1.5, -2.25]");
  BOOST_TEST(!has_field(array_state, "lock_held"));

  struct Point {
    int x, y;
  };
  const auto point_name = test::unique_name("point");
  mp::ScopedUnlink cleanup_point{point_name};
  mp::Value<Point> point(mp::create, point_name, Point{1, 2});
  const auto point_state = mp::inspect_segment(point_name);
  BOOST_TEST(field<std::string>(point_state, "bytes_hex") == "0100000002000000");
  BOOST_TEST(!has_field(point_state, "value"));  // not a built-in type: bytes only
}

BOOST_AUTO_TEST_CASE(leaked_means_held_by_no_process) {
  const auto dead_unmapped = test::unique_name("dead-unmapped");
  const auto dead_but_mapped = test::unique_name("dead-mapped");
  const auto alive = test::unique_name("alive");
  mp::ScopedUnlink cleanup1{dead_unmapped};
  mp::ScopedUnlink cleanup2{dead_but_mapped};
  mp::ScopedUnlink cleanup3{alive};
  create_in_dead_child<mp::Event>(dead_unmapped);
  create_in_dead_child<mp::Event>(dead_but_mapped);
  mp::Event still_used(mp::open, dead_but_mapped);
  mp::Event mine(mp::create, alive);

  const auto info = mp::describe_segment(dead_unmapped);
  BOOST_TEST(!info.creator_alive);
  BOOST_TEST(info.mapped_by.empty());
  BOOST_TEST(!info.in_use);
  BOOST_TEST(mp::describe_segment(dead_but_mapped).in_use);
  BOOST_TEST(mp::describe_segment(alive).in_use);
  BOOST_TEST(is_leaked(dead_unmapped));
  BOOST_TEST(!is_leaked(dead_but_mapped));  // this process still uses it
  BOOST_TEST(!is_leaked(alive));

  // A child that inherited the mapping holds the object after this process lets go of it.
  test::Notice let_go;
  test::Notice done;
  mp::Process heir{[&] {
    let_go.wait();
    done.wait();
    return 0;
  }};
  heir.start();
  still_used = mp::Event();  // this process's own hold is gone; the child's inherited one stays
  let_go.raise();
  BOOST_TEST(!is_leaked(dead_but_mapped));
  done.raise();
  heir.join();
  BOOST_TEST(is_leaked(dead_but_mapped));
}

BOOST_AUTO_TEST_CASE(leftovers_are_collected_foreign_files_never) {
  const auto empty = test::unique_name("empty");
  const auto foreign = test::unique_name("foreign");
  mp::ScopedUnlink cleanup1{empty};
  mp::ScopedUnlink cleanup2{foreign};
  // What an older library's creator left when it died between shm_open and sizing.
  int fd = ::open(shm_path(empty).c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  BOOST_REQUIRE(fd >= 0);
  ::close(fd);
  fd = ::open(shm_path(foreign).c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  BOOST_REQUIRE(fd >= 0);
  const std::string junk(4096, '\x5a');
  BOOST_REQUIRE_EQUAL(::write(fd, junk.data(), junk.size()), 4096);
  ::close(fd);

  BOOST_TEST((mp::describe_segment(empty).health == mp::SegmentInfo::Health::abandoned));
  BOOST_TEST((mp::describe_segment(foreign).health == mp::SegmentInfo::Health::corrupt));
  BOOST_TEST(mp::describe_segment(foreign).problem == "it is not a multiproc object");
  BOOST_CHECK_THROW(mp::inspect_segment(foreign), mp::LayoutMismatch);
  BOOST_TEST(is_leaked(empty));  // names appear only on complete objects: nobody is making it
  BOOST_TEST(!is_leaked(foreign));
}

BOOST_AUTO_TEST_CASE(tool_lists_and_inspects_as_json) {
  const auto name = test::unique_name("tool-queue");
  mp::ScopedUnlink cleanup{name};
  mp::Queue<long> queue(mp::create, name, 16);
  queue.put(1);
  queue.put(2);

  const json all = tool_json("ls --json");
  const auto entry = std::find_if(all.begin(), all.end(), [&](const json& e) { return e["name"] == name; });
  BOOST_REQUIRE(entry != all.end());
  BOOST_TEST((*entry)["kind"] == "Queue");
  BOOST_TEST((*entry)["type"] == "long");
  BOOST_TEST((*entry)["creator_pid"] == ::getpid());
  BOOST_TEST((*entry)["creator_alive"] == true);
  BOOST_TEST((*entry)["mapped_by"].size() == 1u);

  const json one = tool_json("inspect --json " + name);
  BOOST_TEST(one["state"]["capacity"] == 16);
  BOOST_TEST(one["state"]["depth"] == 2);

  const ToolRun table = run_tool("inspect " + name);
  BOOST_TEST(table.status == 0);
  BOOST_TEST(table.output.find("depth") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(tool_gc_is_a_dry_run_until_forced_and_rm_removes) {
  const auto leaked = test::unique_name("tool-leaked");
  const auto kept = test::unique_name("tool-kept");
  mp::ScopedUnlink cleanup1{leaked};
  mp::ScopedUnlink cleanup2{kept};
  create_in_dead_child<mp::Semaphore>(leaked, 1);
  mp::Semaphore mine(mp::create, kept, 1);

  const json dry = tool_json("gc --json " + test::name_prefix());
  BOOST_REQUIRE_EQUAL(dry.size(), 1u);
  BOOST_TEST(dry[0]["name"] == leaked);
  BOOST_TEST(dry[0]["removed"] == false);
  BOOST_TEST(::access(shm_path(leaked).c_str(), F_OK) == 0);

  const ToolRun forced = run_tool("gc --force " + test::name_prefix());
  BOOST_TEST(forced.status == 0);
  BOOST_TEST(forced.output.find("removed " + leaked) != std::string::npos);
  BOOST_TEST(::access(shm_path(leaked).c_str(), F_OK) != 0);
  BOOST_TEST(::access(shm_path(kept).c_str(), F_OK) == 0);

  BOOST_TEST(run_tool("rm " + kept).status == 0);
  BOOST_TEST(::access(shm_path(kept).c_str(), F_OK) != 0);
  mine.release();  // the mapping outlives the name
}

BOOST_AUTO_TEST_CASE(tool_errors_are_clear) {
  const auto missing = test::unique_name("missing");
  ToolRun run = run_tool("inspect " + missing);
  BOOST_TEST(run.status == 1);
  BOOST_TEST(run.output.find("no shared object named \"" + missing + "\"") != std::string::npos);
  run = run_tool("rm " + missing);
  BOOST_TEST(run.status == 1);
  run = run_tool("inspect ../../etc/passwd");
  BOOST_TEST(run.status == 1);
  BOOST_TEST(run.output.find("contains '/'") != std::string::npos);
  run = run_tool("");
  BOOST_TEST(run.status != 0);
  BOOST_TEST(run.output.find("subcommand") != std::string::npos);
}
