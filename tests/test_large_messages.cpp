// Messages bigger than a codec queue's ring (issue 14, bug 12): they travel whole, in order, among
// small ones, through Queue and both directions of a Pipe; a sender or reader killed in the middle
// costs only its own message, and `gc` finds what a killed sender left.
#define BOOST_TEST_MODULE large_messages
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <cereal/types/string.hpp>

#include <multiproc/multiproc.hpp>
#include <multiproc/registry.hpp>

#include "support.hpp"

namespace mp = multiproc;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t MiB = std::size_t{1} << 20;
using Bytes = std::vector<std::byte>;

// A message whose every byte depends on who sent it, which message it is and where the byte is: a
// message swapped, cut short or mixed with another fails the comparison.
std::string text(int sender, int index, std::size_t size) {
  constexpr std::size_t period = 251;  // the pattern repeats: one period is built, then copied
  std::string one(period, '\0');
  for (std::size_t i = 0; i < period; ++i) {
    one[i] = static_cast<char>((i * 31 + static_cast<std::size_t>(sender) * 7 + static_cast<std::size_t>(index)) % period);
  }
  std::string s;
  s.reserve(size + period);
  while (s.size() < size) {
    s += one;
  }
  s.resize(size);
  return s;
}
Bytes bytes(int sender, int index, std::size_t size) {
  const std::string s = text(sender, index, size);
  Bytes b(size);
  std::transform(s.begin(), s.end(), b.begin(), [](char c) { return static_cast<std::byte>(c); });
  return b;
}

// The segments of the spilled messages of process `pid` still in /dev/shm.
std::vector<std::string> spills_of(pid_t pid) {
  std::vector<std::string> found;
  const std::string prefix = mp::shm_file_name("spill-" + std::to_string(pid) + "-");
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) {
    if (entry.path().filename().string().starts_with(prefix)) {
      found.push_back(entry.path().filename().string());
    }
  }
  return found;
}

// What `multiproc gc` would remove of process `pid`'s spilled messages, removed.
std::size_t collect_spills_of(pid_t pid) {
  std::size_t removed = 0;
  for (const auto& leaked : mp::find_leaked_segments("spill-" + std::to_string(pid) + "-")) {
    removed += mp::remove_if_unused(leaked) ? 1 : 0;
  }
  return removed;
}

// Sizes sent by each producer, in order: small ones between big ones.
const std::vector<std::size_t> sizes = {10, 1 * MiB, 64, 16 * MiB, 3, 64 * MiB, 100};

}  // namespace

BOOST_AUTO_TEST_CASE(a_queue_of_strings_carries_1_16_and_64_mib_among_small_ones_in_order) {
  mp::Queue<std::string> queue{8};
  constexpr int producers = 2;
  std::vector<mp::Process> children;
  for (int p = 0; p < producers; ++p) {
    children.emplace_back([&queue, p] {
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        // Only one producer sends the 64 MiB one: two would double the memory for no more coverage.
        queue.put(text(p, static_cast<int>(i), p == 1 && sizes[i] == 64 * MiB ? 2 * MiB : sizes[i]));
      }
      return 0;
    });
    children.back().start();
  }
  std::vector<std::size_t> next(producers, 0);
  for (std::size_t n = 0; n < producers * sizes.size(); ++n) {
    const std::string message = queue.get(30s);
    // Which producer: try each one's next expected message.
    bool matched = false;
    for (int p = 0; p < producers && !matched; ++p) {
      if (next[p] < sizes.size()) {
        const std::size_t size = p == 1 && sizes[next[p]] == 64 * MiB ? 2 * MiB : sizes[next[p]];
        if (message.size() == size && message == text(p, static_cast<int>(next[p]), size)) {
          ++next[p];
          matched = true;
        }
      }
    }
    BOOST_REQUIRE_MESSAGE(matched, "message " << n << " of " << message.size() << " bytes is no producer's next one");
  }
  for (auto& child : children) {
    BOOST_REQUIRE(child.join(30s));
    BOOST_CHECK_EQUAL(*child.exitcode(), 0);
    BOOST_CHECK(spills_of(child.pid()).empty());
  }
  BOOST_CHECK(queue.empty());
}

BOOST_AUTO_TEST_CASE(a_queue_of_byte_vectors_carries_big_messages_between_small_ones) {
  const std::string name = test::unique_name("bigvec");
  mp::ScopedUnlink gone(name);
  mp::Queue<Bytes> queue{mp::create, name, 4};
  mp::Process producer{[&name] {
    mp::Queue<Bytes> mine{mp::open, name};
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      mine.put(bytes(0, static_cast<int>(i), sizes[i]));
    }
    return 0;
  }};
  producer.start();
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    BOOST_REQUIRE(queue.get(30s) == bytes(0, static_cast<int>(i), sizes[i]));
  }
  BOOST_REQUIRE(producer.join(30s));
  BOOST_CHECK_EQUAL(*producer.exitcode(), 0);
  BOOST_CHECK(spills_of(producer.pid()).empty());
}

BOOST_AUTO_TEST_CASE(a_pipe_carries_big_messages_both_ways) {
  auto [parent_end, child_end] = mp::Pipe<std::string>();
  mp::Process echo{[&child_end = child_end] {
    for (;;) {
      std::string message = child_end.recv();
      if (message == "stop") return 0;
      std::reverse(message.begin(), message.end());
      child_end.send(message);
    }
  }};
  echo.start();
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    std::string message = text(1, static_cast<int>(i), sizes[i]);
    parent_end.send(message);
    std::reverse(message.begin(), message.end());
    BOOST_REQUIRE(parent_end.recv() == message);
  }
  parent_end.send("stop");
  BOOST_REQUIRE(echo.join(30s));
  BOOST_CHECK_EQUAL(*echo.exitcode(), 0);
  BOOST_CHECK(spills_of(echo.pid()).empty());
  BOOST_CHECK(spills_of(::getpid()).empty());
}

// Python's send_bytes/recv_bytes/recv_bytes_into with 16 MiB: too small a buffer gets
// BufferTooShort carrying the whole message, and the pipe goes on with the next one.
BOOST_AUTO_TEST_CASE(send_bytes_and_recv_bytes_of_16_mib_on_a_pipe) {
  auto [reader, writer] = mp::Pipe<std::string>(false);
  mp::Process sender{[&writer = writer] {
    const Bytes big = bytes(2, 0, 16 * MiB);
    writer.send_bytes(big);
    writer.send_bytes(big, 3, 8 * MiB);  // a slice
    writer.send_bytes(big);              // for recv_bytes_into, too big for its buffer
    writer.send_bytes(bytes(2, 1, 5));
    return 0;
  }};
  sender.start();
  const Bytes big = bytes(2, 0, 16 * MiB);
  BOOST_REQUIRE(reader.recv_bytes() == big);
  BOOST_REQUIRE(reader.recv_bytes() == Bytes(big.begin() + 3, big.begin() + 3 + 8 * MiB));
  Bytes room(1 * MiB);
  try {
    (void)reader.recv_bytes_into(room);
    BOOST_ERROR("a 16 MiB message fitted into 1 MiB");
  } catch (const mp::BufferTooShort& e) {
    BOOST_CHECK(e.message() == big);
  }
  BOOST_CHECK_EQUAL(reader.recv_bytes_into(room, 10), 5u);
  BOOST_CHECK(Bytes(room.begin() + 10, room.begin() + 15) == bytes(2, 1, 5));
  BOOST_REQUIRE(sender.join(30s));
  BOOST_CHECK_EQUAL(*sender.exitcode(), 0);
  BOOST_CHECK(spills_of(sender.pid()).empty());
}

// A sender killed with its big message written but not yet put (it waits for room) loses only
// that message; the queue goes on, and gc removes what it left.
BOOST_AUTO_TEST_CASE(a_sender_killed_before_its_big_message_is_in_loses_only_that_one) {
  mp::Queue<std::string> queue{2};
  queue.put("first");
  queue.put("second");  // full: the child's big message waits for room
  mp::Process sender{[&queue] {
    queue.put(text(3, 0, 4 * MiB));
    return 0;
  }};
  sender.start();
  // The sender's message has its segment once it is complete and named; then it waits for room.
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (spills_of(sender.pid()).empty()) {
    BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < give_up, "the sender never spilled its message");
    std::this_thread::sleep_for(1ms);
  }
  ::kill(sender.pid(), SIGKILL);
  sender.join();
  BOOST_CHECK_EQUAL(*sender.exitcode(), -SIGKILL);
  BOOST_CHECK_EQUAL(queue.get(), "first");
  BOOST_CHECK_EQUAL(queue.get(), "second");
  BOOST_CHECK(!queue.try_get());
  queue.put(text(4, 0, 2 * MiB));  // the queue still carries big and small messages
  queue.put("after");
  BOOST_CHECK(queue.get() == text(4, 0, 2 * MiB));
  BOOST_CHECK_EQUAL(queue.get(), "after");
  BOOST_CHECK_EQUAL(spills_of(sender.pid()).size(), 1u);
  BOOST_CHECK_EQUAL(collect_spills_of(sender.pid()), 1u);
  BOOST_CHECK(spills_of(sender.pid()).empty());
}

namespace {

// A message whose decoding stops, in a process that asks for it, at a point the test can see:
// after the reader has taken it from the queue.
bool stall_while_decoding = false;
test::Notice* decoding = nullptr;

struct Stalling {
  std::string payload;
  template <class Archive>
  void save(Archive& ar) const {
    ar(payload);
  }
  template <class Archive>
  void load(Archive& ar) {
    ar(payload);
    if (stall_while_decoding) {
      decoding->raise();
      ::pause();
    }
  }
};

}  // namespace

// A reader killed after taking a big message (while decoding it): the message went with it, the
// next reader gets the next message, nobody waits, and nothing is left behind.
BOOST_AUTO_TEST_CASE(a_reader_killed_after_taking_a_big_message_takes_only_that_one) {
  mp::Queue<Stalling> queue{4};
  test::Notice notice;
  decoding = &notice;
  queue.put(Stalling{text(5, 0, 4 * MiB)});
  queue.put(Stalling{"next"});
  mp::Process reader{[&queue] {
    stall_while_decoding = true;
    (void)queue.get();
    return 0;
  }};
  reader.start();
  notice.wait();
  ::kill(reader.pid(), SIGKILL);
  reader.join();
  BOOST_CHECK_EQUAL(queue.get(1s).payload, "next");
  BOOST_CHECK(queue.empty());
  BOOST_CHECK(spills_of(::getpid()).empty());  // the reader removed the name as it took the message
  decoding = nullptr;
}

// Unread big messages of a queue in use are in flight, not leaked; once their queue is gone, gc
// removes them. For a named queue and for an anonymous one.
BOOST_AUTO_TEST_CASE(gc_leaves_unread_big_messages_of_a_live_queue_and_takes_those_of_a_dead_one) {
  const std::string name = test::unique_name("bigleft");
  {
    mp::ScopedUnlink gone(name);
    mp::Queue<std::string> named{mp::create, name, 4};
    named.put(text(6, 0, 2 * MiB));
    BOOST_REQUIRE_EQUAL(spills_of(::getpid()).size(), 1u);
    BOOST_CHECK_EQUAL(collect_spills_of(::getpid()), 0u);
  }
  BOOST_CHECK_EQUAL(collect_spills_of(::getpid()), 1u);
  {
    mp::Queue<std::string> anonymous{4};
    anonymous.put(text(6, 1, 2 * MiB));
    BOOST_REQUIRE_EQUAL(spills_of(::getpid()).size(), 1u);
    BOOST_CHECK_EQUAL(collect_spills_of(::getpid()), 0u);
    const auto listed = mp::list_segments();
    const auto it = std::find_if(listed.begin(), listed.end(), [](const mp::SegmentInfo& info) {
      return info.kind == static_cast<std::uint32_t>(mp::ObjectKind::spilled_message) &&
             info.name.starts_with("spill-" + std::to_string(::getpid()) + "-");
    });
    BOOST_REQUIRE(it != listed.end());
    BOOST_CHECK_EQUAL(mp::kind_name(it->kind), "Queue message (spilled)");
    BOOST_CHECK_GE(it->element_count, 2 * MiB);  // the message, encoded
  }
  BOOST_CHECK_EQUAL(collect_spills_of(::getpid()), 1u);
  BOOST_CHECK(spills_of(::getpid()).empty());
}
