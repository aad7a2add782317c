// Rings and queues across real processes: exactly-once delivery, FIFO per producer, blocking,
// timeouts, close, the codec, and producers killed in the middle of a put.
#define BOOST_TEST_MODULE queue
#include <signal.h>
#include <sys/wait.h>

#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <multiproc/detail/ring/locked_record_ring.hpp>
#include <multiproc/detail/ring/spsc_record_ring.hpp>
#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;
using namespace std::chrono_literals;

namespace {

// A message names its producer and its sequence number within that producer.
constexpr std::uint64_t message(std::uint64_t producer, std::uint64_t sequence) { return producer << 32 | sequence; }
constexpr std::uint64_t producer_of(std::uint64_t m) { return m >> 32; }
constexpr std::uint64_t sequence_of(std::uint64_t m) { return m & 0xffffffffu; }

// What consumers found, in shared memory: how often each message arrived, and order violations.
struct Tally {
  explicit Tally(std::size_t producers, std::size_t per_producer) : seen(producers * per_producer), per(per_producer) {}
  // Called by a consumer for each message; `last` is that consumer's last sequence per producer.
  void record(std::uint64_t m, std::vector<std::int64_t>& last) {
    const std::uint64_t p = producer_of(m);
    const auto s = static_cast<std::int64_t>(sequence_of(m));
    if (p >= last.size() || static_cast<std::size_t>(s) >= per) {
      out_of_order.atomic().fetch_add(1);
      return;
    }
    if (s <= last[p]) out_of_order.atomic().fetch_add(1);  // FIFO per producer, as one consumer sees it
    last[p] = s;
    std::atomic_ref<std::uint8_t>(seen[p * per + static_cast<std::size_t>(s)]).fetch_add(1);
  }
  std::size_t count(std::uint8_t times) const {
    std::size_t n = 0;
    for (const std::uint8_t t : seen) n += t == times;
    return n;
  }
  mp::RawArray<std::uint8_t> seen;
  std::size_t per;
  mp::RawValue<long> out_of_order;
};

template <class Body>
std::vector<mp::Process> start_all(int n, Body body) {
  std::vector<mp::Process> children;
  for (int i = 0; i < n; ++i) children.emplace_back([body, i]() mutable { return body(i); });
  for (auto& c : children) c.start();
  return children;
}

void join_all(std::vector<mp::Process>& children) {
  for (auto& c : children) {
    BOOST_REQUIRE(c.join(120s));
    BOOST_CHECK_EQUAL(*c.exitcode(), 0);
  }
}

// A pid that certainly belongs to no process any more: a child that has exited and been reaped.
std::uint32_t dead_pid() {
  mp::Process gone{[] {}};
  gone.start();
  gone.join();
  return static_cast<std::uint32_t>(gone.pid());
}

// Each of `producers` processes puts `per_producer` messages into `queue` while `consumers`
// processes take them until the queue is closed: checks every message came exactly once, and in
// order per producer.
void stream_exactly_once(mp::Queue<std::uint64_t>& queue, int producers, int consumers, std::uint64_t per_producer) {
  Tally tally{static_cast<std::size_t>(producers), per_producer};
  auto consuming = start_all(consumers, [&](int) {
    std::vector<std::int64_t> last(producers, -1);
    try {
      for (;;) tally.record(queue.get(60s), last);
    } catch (const mp::Closed&) {
      return 0;
    }
  });
  auto producing = start_all(producers, [&](int p) {
    for (std::uint64_t s = 0; s < per_producer; ++s) queue.put(message(static_cast<std::uint64_t>(p), s));
    return 0;
  });
  join_all(producing);
  queue.close();
  join_all(consuming);
  BOOST_CHECK_EQUAL(tally.count(1), static_cast<std::uint64_t>(producers) * per_producer);  // exactly once
  BOOST_CHECK_EQUAL(tally.out_of_order.load(), 0);
}

}  // namespace

BOOST_AUTO_TEST_CASE(four_producers_four_consumers_a_million_messages_exactly_once) {
  constexpr int producers = 4, consumers = 4;
  constexpr std::uint64_t per_producer = 250000;
  mp::Queue<std::uint64_t> queue{1024};
  stream_exactly_once(queue, producers, consumers, per_producer);
  BOOST_CHECK(queue.empty());
}

BOOST_AUTO_TEST_CASE(mpmc_ring_without_blocking_delivers_exactly_once) {
  constexpr int producers = 2, consumers = 2;
  constexpr std::uint64_t per_producer = 200000;
  const auto name = test::unique_name("mpmc");
  mp::ScopedUnlink cleanup{name};
  mp::MpmcRing<std::uint64_t> ring{mp::create, name, 256};
  BOOST_CHECK_EQUAL(ring.capacity(), 256u);
  Tally tally{producers, per_producer};
  mp::RawValue<long> taken;
  auto consuming = start_all(consumers, [&](int) {
    mp::MpmcRing<std::uint64_t> mine{mp::open, name};
    std::vector<std::int64_t> last(producers, -1);
    while (taken.atomic().load() < static_cast<long>(producers * per_producer)) {
      if (auto m = mine.try_pop()) {
        tally.record(*m, last);
        taken.atomic().fetch_add(1);
      }
    }
    return 0;
  });
  auto producing = start_all(producers, [&](int p) {
    for (std::uint64_t s = 0; s < per_producer; ++s) {
      while (!ring.try_push(message(static_cast<std::uint64_t>(p), s))) std::this_thread::yield();
    }
    return 0;
  });
  join_all(producing);
  join_all(consuming);
  BOOST_CHECK_EQUAL(tally.count(1), producers * per_producer);
  BOOST_CHECK_EQUAL(tally.out_of_order.load(), 0);
}

BOOST_AUTO_TEST_CASE(spsc_ring_keeps_order_across_processes) {
  constexpr std::uint64_t count = 1000000;
  mp::SpscRing<std::uint64_t> ring{100};
  BOOST_CHECK_EQUAL(ring.capacity(), 128u);
  mp::Process producer{[&] {
    for (std::uint64_t i = 0; i < count; ++i) {
      while (!ring.try_push(i)) std::this_thread::yield();
    }
  }};
  producer.start();
  std::uint64_t expected = 0;
  while (expected < count) {
    if (auto v = ring.try_pop()) {
      if (*v != expected) break;
      ++expected;
    }
  }
  BOOST_CHECK_EQUAL(expected, count);
  producer.join();
  BOOST_CHECK(!ring.try_pop());
}

BOOST_AUTO_TEST_CASE(full_and_empty_with_timeouts_and_nowait) {
  mp::Queue<int> queue{2};
  BOOST_CHECK_EQUAL(queue.capacity(), 2u);
  BOOST_CHECK_THROW(queue.get_nowait(), mp::Empty);
  auto start = std::chrono::steady_clock::now();
  BOOST_CHECK_THROW(queue.get(100ms), mp::Empty);
  BOOST_CHECK(std::chrono::steady_clock::now() - start >= 100ms);
  queue.put(1);
  queue.put_nowait(2);
  BOOST_CHECK(queue.full());
  BOOST_CHECK_EQUAL(queue.qsize(), 2u);
  BOOST_CHECK_THROW(queue.put_nowait(3), mp::Full);
  start = std::chrono::steady_clock::now();
  BOOST_CHECK_THROW(queue.put(3, 100ms), mp::Full);
  BOOST_CHECK(std::chrono::steady_clock::now() - start >= 100ms);
  BOOST_CHECK_EQUAL(queue.get(), 1);
  BOOST_CHECK_EQUAL(queue.get_nowait(), 2);
  BOOST_CHECK(queue.empty());
}

// Issue 14.11: Queue<int>{6} held 8 (the slots, rounded up to a power of two). The capacity asked
// for is the capacity given, for every T and both kinds of queue: a child fills the queue with
// put_nowait, and both sides see it full at exactly `capacity`, with put_nowait throwing Full;
// after one get there is room for exactly one more. (CPython: _TestQueue.test_qsize/test_put.)
template <class Q, class Item>
void check_holds_exactly(std::size_t capacity, const Item& item) {
  Q queue{capacity};
  BOOST_TEST_CONTEXT("capacity " << capacity) {
    BOOST_CHECK_EQUAL(queue.capacity(), capacity);
    BOOST_CHECK_EQUAL(test::in_child([&] {
      for (std::size_t i = 0; i < capacity; ++i) {
        if (queue.full()) return 10;
        queue.put_nowait(item);
      }
      if (!queue.full() || queue.qsize() != capacity) return 11;
      try {
        queue.put_nowait(item);
        return 12;
      } catch (const mp::Full&) {
        return 0;
      }
    }), 0);
    BOOST_CHECK(queue.full());
    BOOST_CHECK_EQUAL(queue.qsize(), capacity);
    BOOST_CHECK_THROW(queue.put_nowait(item), mp::Full);
    BOOST_CHECK_THROW(queue.put(item, 10ms), mp::Full);
    (void)queue.get_nowait();
    BOOST_CHECK(!queue.full());
    queue.put_nowait(item);
    BOOST_CHECK(queue.full());
    BOOST_CHECK_THROW(queue.put_nowait(item), mp::Full);
    for (std::size_t i = 0; i < capacity; ++i) (void)queue.get_nowait();
    BOOST_CHECK(queue.empty());
  }
}

BOOST_AUTO_TEST_CASE(a_queue_holds_exactly_the_capacity_asked_for) {
  for (const std::size_t capacity : {1, 3, 6, 7, 8, 100}) {
    check_holds_exactly<mp::Queue<int>>(capacity, 5);
    check_holds_exactly<mp::JoinableQueue<long>>(capacity, 5L);
    check_holds_exactly<mp::Queue<std::string>>(capacity, std::string("five"));
    check_holds_exactly<mp::JoinableQueue<std::string>>(capacity, std::string("five"));
  }
  BOOST_CHECK_THROW(mp::Queue<int>{0}, mp::ValueError);
  BOOST_CHECK_THROW(mp::Queue<std::string>{0}, mp::ValueError);
}

// The same with producers racing: four processes try_put ten each into an empty Queue{6}; exactly
// six get in. Named, so the opener's capacity comes from shared memory.
BOOST_AUTO_TEST_CASE(racing_producers_never_overfill_a_queue) {
  const auto name = test::unique_name("exact");
  mp::ScopedUnlink cleanup{name};
  mp::Queue<long> queue{mp::create, name, 6};
  BOOST_CHECK_THROW(mp::Queue<long>(mp::open_or_create, name, 7), mp::LayoutMismatch);  // 8 slots, but not 7
  mp::RawValue<long> accepted;
  for (int round = 0; round < 20; ++round) {
    accepted.store(0);
    auto producing = start_all(4, [&](int) {
      mp::Queue<long> mine{mp::open, name};
      if (mine.capacity() != 6) return 1;
      for (int i = 0; i < 10; ++i) {
        if (mine.try_put(i)) accepted.atomic().fetch_add(1);
      }
      return 0;
    });
    join_all(producing);
    BOOST_REQUIRE_EQUAL(accepted.load(), 6);
    BOOST_REQUIRE_EQUAL(queue.qsize(), 6u);
    while (queue.try_get()) {
    }
  }
  // And a stream through a queue of 5 (8 slots): every message exactly once, in order per producer.
  constexpr int producers = 2, consumers = 2;
  constexpr std::uint64_t per_producer = 50000;
  mp::Queue<std::uint64_t> small{5};
  stream_exactly_once(small, producers, consumers, per_producer);
}

BOOST_AUTO_TEST_CASE(a_blocked_put_wakes_when_a_consumer_makes_room) {
  mp::Queue<int> queue{2};
  queue.put(1);
  queue.put(2);
  mp::Process producer{[&] { queue.put(3, 30s); }};
  producer.start();
  std::this_thread::sleep_for(100ms);
  BOOST_CHECK(producer.is_alive());  // still blocked: the queue is full
  BOOST_CHECK_EQUAL(queue.get(), 1);
  BOOST_REQUIRE(producer.join(30s));
  BOOST_CHECK_EQUAL(*producer.exitcode(), 0);
  BOOST_CHECK_EQUAL(queue.get(), 2);
  BOOST_CHECK_EQUAL(queue.get(), 3);
}

BOOST_AUTO_TEST_CASE(waiters_sleep_through_signals_and_use_no_cpu) {
  mp::Queue<int> empty_queue{4};
  BOOST_CHECK_EQUAL(test::check_blocked_wait([&](auto timeout) {
    try {
      (void)empty_queue.get(timeout);
      return true;
    } catch (const mp::Empty&) {
      return false;
    }
  }), 0);
  mp::Queue<std::string> full_queue{1};
  full_queue.put("x");
  BOOST_CHECK_EQUAL(test::check_blocked_wait([&](auto timeout) {
    try {
      full_queue.put("y", timeout);
      return true;
    } catch (const mp::Full&) {
      return false;
    }
  }), 0);
}

BOOST_AUTO_TEST_CASE(close_wakes_blocked_getters_and_drains) {
  mp::Queue<int> queue{8};
  auto waiting = start_all(2, [&](int) {
    try {
      (void)queue.get(30s);
    } catch (const mp::Closed&) {
      return 0;
    }
    return 1;
  });
  std::this_thread::sleep_for(100ms);
  queue.close();
  join_all(waiting);
  BOOST_CHECK(queue.closed());
  BOOST_CHECK_THROW(queue.put(1), mp::Closed);

  mp::Queue<std::string> words{8};
  words.put("a");
  words.put("b");
  words.close();
  BOOST_CHECK_EQUAL(words.get(), "a");  // what was put before close is still delivered
  BOOST_CHECK_EQUAL(words.get_nowait(), "b");
  BOOST_CHECK_THROW(words.get(), mp::Closed);
}

struct Order {
  std::string symbol;
  std::vector<int> sizes;
  std::map<std::string, double> tags;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(symbol, sizes, tags);
  }
  bool operator==(const Order&) const = default;
};

BOOST_AUTO_TEST_CASE(strings_vectors_and_user_types_through_the_codec) {
  const auto name = test::unique_name("orders");
  mp::ScopedUnlink cleanup{name};
  mp::Queue<Order> orders{mp::create, name, 128};  // room for all: the parent reads after the child ends
  BOOST_CHECK_THROW(mp::Queue<std::string>(mp::open, name), mp::LayoutMismatch);
  mp::Queue<std::vector<int>> vectors{64};
  BOOST_CHECK_EQUAL(test::in_child([&] {
    mp::Queue<Order> mine{mp::open, name};
    for (int i = 0; i < 100; ++i) {
      mine.put(Order{"SYM" + std::to_string(i), std::vector<int>(static_cast<std::size_t>(i), i), {{"px", i * 0.5}}});
    }
    vectors.put({});
    vectors.put(std::vector<int>(1000, 7));
    return 0;
  }), 0);
  for (int i = 0; i < 100; ++i) {
    const Order expected{"SYM" + std::to_string(i), std::vector<int>(static_cast<std::size_t>(i), i), {{"px", i * 0.5}}};
    BOOST_REQUIRE(orders.get_nowait() == expected);
  }
  BOOST_CHECK(vectors.get().empty());
  BOOST_CHECK(vectors.get() == std::vector<int>(1000, 7));
}

BOOST_AUTO_TEST_CASE(a_message_larger_than_the_ring_travels_whole) {
  mp::Queue<std::string> queue{2};  // a ring of 2 x 264 bytes
  queue.put(std::string(10000, 'x'));
  queue.put("small");
  BOOST_CHECK_EQUAL(queue.get(), std::string(10000, 'x'));
  BOOST_CHECK_EQUAL(queue.get(), "small");
  BOOST_CHECK(queue.empty());
}

BOOST_AUTO_TEST_CASE(joinable_queue_join_waits_for_every_task_done) {
  mp::JoinableQueue<int> tasks{64};
  mp::RawValue<int> processed;
  auto workers = start_all(3, [&](int) {
    for (;;) {
      const int task = tasks.get();
      if (task < 0) {  // poison pill
        tasks.task_done();
        return 0;
      }
      std::this_thread::sleep_for(1ms);
      processed.atomic().fetch_add(1);
      tasks.task_done();
    }
  });
  for (int i = 0; i < 30; ++i) tasks.put(i);
  for (int i = 0; i < 3; ++i) tasks.put(-1);
  tasks.join();
  BOOST_CHECK_EQUAL(processed.load(), 30);  // join returned only after all were done
  join_all(workers);
  BOOST_CHECK(tasks.join(0ms));
  BOOST_CHECK_THROW(tasks.task_done(), mp::ValueError);
}

// Issue 13.2: a producer killed while blocked in put on a full queue used to leave its task
// counted, and join() waited forever for a message that never arrived. Python counts a task once
// the item is in the queue. Both kinds of queue: slot (long) and codec (string).
template <class T>
void check_join_after_a_producer_killed_waiting(const T& item) {
  mp::JoinableQueue<T> tasks{2};
  tasks.put(item);
  tasks.put(item);  // full
  mp::Process blocked{[&] {
    tasks.put(item);  // waits for room until killed
    return 0;
  }};
  blocked.start();
  BOOST_REQUIRE(!blocked.join(200ms));  // it is waiting
  blocked.kill();
  blocked.join();
  for (int i = 0; i < 2; ++i) {
    (void)tasks.get();
    tasks.task_done();
  }
  BOOST_TEST(tasks.join(5s));  // the dead producer's message never existed, nor does its task
  BOOST_CHECK_THROW(tasks.task_done(), mp::ValueError);
}

BOOST_AUTO_TEST_CASE(join_survives_a_producer_killed_while_waiting_for_room) {
  check_join_after_a_producer_killed_waiting<long>(7);
  check_join_after_a_producer_killed_waiting<std::string>("seven");
}

// Issue 13.9: a Queue and a JoinableQueue are different objects; neither opens as the other.
BOOST_AUTO_TEST_CASE(a_queue_and_a_joinable_queue_do_not_open_as_each_other) {
  const auto plain = test::unique_name("plain");
  const auto joinable = test::unique_name("joinable");
  mp::ScopedUnlink cleanup1{plain};
  mp::ScopedUnlink cleanup2{joinable};
  mp::Queue<long> queue{mp::create, plain, 4};
  mp::JoinableQueue<std::string> tasks{mp::create, joinable, 4};
  BOOST_CHECK_THROW(mp::JoinableQueue<long>(mp::open, plain), mp::LayoutMismatch);
  BOOST_CHECK_THROW(mp::Queue<std::string>(mp::open, joinable), mp::LayoutMismatch);
  BOOST_CHECK_NO_THROW(mp::Queue<long>(mp::open, plain));
  BOOST_CHECK_NO_THROW(mp::JoinableQueue<std::string>(mp::open, joinable));
  BOOST_TEST(mp::kind_name(mp::describe_segment(joinable).kind) == "JoinableQueue (codec)");
}

BOOST_AUTO_TEST_CASE(simple_queue) {
  mp::SimpleQueue<std::string> queue;
  BOOST_CHECK(queue.empty());
  BOOST_CHECK_EQUAL(test::in_child([&] {
    queue.put("from the child");
    return 0;
  }), 0);
  BOOST_CHECK_EQUAL(queue.get(), "from the child");
}

BOOST_AUTO_TEST_CASE(a_slot_half_written_by_a_dead_producer_is_skipped) {
  // White-box: a ring over memory of our own, with one slot claimed by a process that is gone.
  mp::detail::SlotRingControl control{};
  std::vector<mp::detail::Slot<long>> slots(4);
  mp::detail::SlotRing<long> ring{&control, slots.data(), slots.size()};
  BOOST_REQUIRE(ring.try_push(10));
  // Position 1, lap 0: "writing, by a dead pid", as a producer killed between claim and publish.
  slots[1].state = (std::uint64_t{1} << mp::detail::slot_owner_bits) | dead_pid();
  control.write_pos = 2;
  BOOST_REQUIRE(ring.try_push(30));
  BOOST_CHECK_EQUAL(*ring.try_pop(), 10);
  mp::detail::Attempted why = mp::detail::Attempted::done;
  BOOST_CHECK(!ring.try_pop(&why));  // first sight of the stuck slot: not yet judged
  BOOST_CHECK(why == mp::detail::Attempted::stalled);
  std::this_thread::sleep_for(2ms);
  const auto next = ring.try_pop();  // seen stuck twice, a millisecond apart: its writer is dead
  BOOST_REQUIRE(next);
  BOOST_CHECK_EQUAL(*next, 30);
  BOOST_CHECK(!ring.try_pop());
  for (long i = 0; i < 10; ++i) {  // and the ring goes on, lap after lap
    BOOST_REQUIRE(ring.try_push(i));
    BOOST_REQUIRE_EQUAL(*ring.try_pop(), i);
  }
}

// A ring limited below its slots: a consumer killed between taking a message and moving read_pos
// on must not cost the producers a place (they move read_pos over the taken slot themselves).
BOOST_AUTO_TEST_CASE(a_limited_ring_is_not_held_full_by_a_consumer_killed_mid_take) {
  mp::detail::SlotRingControl control{};
  std::vector<mp::detail::Slot<long>> slots(4);
  mp::detail::SlotRing<long> ring{&control, slots.data(), slots.size(), 3};
  for (long i = 0; i < 3; ++i) BOOST_REQUIRE(ring.try_push(i));
  BOOST_CHECK(!ring.try_push(3));  // three held: full, with a slot to spare
  // Position 0 taken (its slot moved to "empty, lap 1"), read_pos left behind.
  slots[0].state = std::uint64_t{1} << 32;
  BOOST_CHECK_EQUAL(ring.size_approx(), 3u);
  BOOST_REQUIRE(ring.try_push(3));
  BOOST_CHECK(!ring.try_push(4));
  for (long i = 1; i < 4; ++i) BOOST_REQUIRE_EQUAL(*ring.try_pop(), i);
  BOOST_CHECK(!ring.try_pop());
}

BOOST_AUTO_TEST_CASE(a_slot_stuck_in_writing_from_the_previous_lap_is_reclaimed_by_producers) {
  mp::detail::SlotRingControl control{};
  std::vector<mp::detail::Slot<long>> slots(2);
  mp::detail::SlotRing<long> ring{&control, slots.data(), slots.size()};
  // Position 0 was claimed in lap 0 by a producer that died; no consumer came by since.
  slots[0].state = (std::uint64_t{1} << mp::detail::slot_owner_bits) | dead_pid();
  control.write_pos = 1;
  BOOST_REQUIRE(ring.try_push(1));  // position 1
  control.read_pos = 1;
  BOOST_REQUIRE_EQUAL(*ring.try_pop(), 1);
  BOOST_CHECK(!ring.try_push(2));  // position 2 is slot 0, still "writing" in lap 0: first sight
  std::this_thread::sleep_for(2ms);
  BOOST_CHECK(ring.try_push(2));  // its writer is dead: reclaimed
  BOOST_CHECK_EQUAL(*ring.try_pop(), 2);
}

BOOST_AUTO_TEST_CASE(producers_sigkilled_mid_stream_leave_the_queue_usable) {
  // Each round a producer streams into a small queue while the parent consumes, and is killed at
  // a moment that varies. What arrived from it must be in order and without duplicates, and the
  // queue must then carry a fresh producer's messages exactly.
  for (const bool codec : {false, true}) {
    mp::Queue<std::uint64_t> numbers{8};
    mp::Queue<std::string> words{8};
    for (int round = 0; round < 10; ++round) {
      mp::Process doomed{[&] {
        for (std::uint64_t i = 0;; ++i) codec ? words.put(std::to_string(i)) : numbers.put(i);
      }};
      doomed.start();
      std::int64_t last = -1;
      const auto receive = [&](std::chrono::milliseconds wait) {
        return codec ? std::stoll(words.get(wait)) : static_cast<long long>(numbers.get(wait));
      };
      for (int i = 0; i < 200 + round * 37; ++i) {
        const auto got = receive(30s);
        BOOST_REQUIRE_GT(got, last);
        last = got;
      }
      doomed.kill();
      doomed.join();
      try {
        for (;;) {
          const auto got = receive(20ms);
          BOOST_REQUIRE_GT(got, last);
          last = got;
        }
      } catch (const mp::Empty&) {
      }
      mp::Process fresh{[&] {
        for (std::uint64_t i = 0; i < 100; ++i) codec ? words.put(std::to_string(i)) : numbers.put(i);
      }};
      fresh.start();
      for (long long i = 0; i < 100; ++i) BOOST_REQUIRE_EQUAL(receive(30s), i);
      fresh.join();
    }
  }
}

BOOST_AUTO_TEST_CASE(the_decoder_refuses_truncated_and_hostile_bytes) {
  std::vector<std::byte> bytes;
  mp::encode(Order{"ABC", {1, 2, 3}, {{"k", 1.0}}}, bytes);
  BOOST_CHECK(mp::decode<Order>(bytes) == (Order{"ABC", {1, 2, 3}, {{"k", 1.0}}}));
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {  // every truncation
    BOOST_CHECK_THROW(mp::decode<Order>(std::span(bytes).first(cut)), mp::DecodeError);
  }
  std::vector<std::byte> longer = bytes;
  longer.push_back(std::byte{0});
  BOOST_CHECK_THROW(mp::decode<Order>(longer), mp::DecodeError);  // trailing bytes
  // Every byte flipped in turn: either a clean DecodeError or some value, never a crash or a
  // huge allocation (lengths are checked against the bytes left).
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::vector<std::byte> damaged = bytes;
    damaged[i] = ~damaged[i];
    try {
      (void)mp::decode<Order>(damaged);
    } catch (const mp::DecodeError&) {
    }
  }
  std::vector<std::byte> huge_length(8, std::byte{0xff});  // a string "of 2^64 - 1 bytes"
  BOOST_CHECK_THROW(mp::decode<std::string>(huge_length), mp::DecodeError);
  BOOST_CHECK_THROW(mp::decode<long>(std::span(bytes).first(3)), mp::DecodeError);
}

// Found by the segment fuzzer (tests/fuzz/fuzz_segment.cpp): a hostile peer that moves a ring's
// head or tail far behind the slots' laps made try_get/try_put step forward one position at a
// time for up to 2^31 laps. They must now give up within a bounded number of steps, and the
// blocking forms must end at their deadline.
BOOST_AUTO_TEST_CASE(hostile_ring_indices_cannot_stall_a_call) {
  for (const int which_index : {0, 1}) {  // 0: head (consumers), 1: tail (producers)
    const auto name = test::unique_name("hostile-index");
    mp::ScopedUnlink cleanup{name};
    mp::Queue<long> queue(mp::create, name, 8);
    for (long i = 0; i < 5; ++i) {
      queue.put(i);
    }
    test::RawSegment raw{name};
    auto& control = raw.prefix<mp::detail::SlotQueueControl>();
    std::uint64_t& index = which_index == 0 ? control.ring.read_pos : control.ring.write_pos;
    index += std::uint64_t{0x65} << 32;  // the fuzzer's input: one byte in the index's upper half
    const int exit_code = test::in_child(
        [&] {
          mp::Queue<long> opened(mp::open, name);
          for (int i = 0; i < 10; ++i) {
            (void)opened.try_get();
            (void)opened.try_put(1);
          }
          try {
            (void)opened.get(10ms);
          } catch (const mp::Empty&) {
          }
          return 0;
        },
        std::chrono::seconds(20));
    BOOST_TEST(exit_code == 0);
  }
}

// SpscRecordRing, the pool's channel ring: one producer process, one consumer process, records of
// every size from empty to a third of the ring, lapping it hundreds of times; each arrives once,
// whole, in order. The consumer sleeps at the data doorbell, the producer at the room doorbell.
namespace {
struct SharedSpsc {
  static constexpr std::size_t capacity = 4096;
  mp::detail::SpscRecordRingControl control;
  std::byte bytes[capacity];
};
// Record i: i % 1300 bytes, each (i + k) mod 251.
std::vector<std::byte> record_number(std::uint32_t i) {
  std::vector<std::byte> r(i % 1300);
  for (std::size_t k = 0; k < r.size(); ++k) r[k] = static_cast<std::byte>((i + k) % 251);
  return r;
}
}  // namespace

BOOST_AUTO_TEST_CASE(spsc_record_ring_delivers_variable_records_once_in_order_across_processes) {
  mp::RawValue<SharedSpsc> shared;
  SharedSpsc& s = shared.value();
  mp::detail::SpscRecordRing ring(s.control, s.bytes, SharedSpsc::capacity, "test");
  constexpr std::uint32_t records = 3000;
  mp::Process producer{[&] {
    for (std::uint32_t i = 0; i < records; ++i) {
      const auto r = record_number(i);
      const std::span<const std::byte> parts[] = {std::span(r).first(r.size() / 2), std::span(r).subspan(r.size() / 2)};
      for (;;) {
        const auto seen = mp::detail::doorbell_state(ring.room_doorbell());
        if (ring.try_write(parts)) break;
        (void)mp::detail::wait_at_doorbell(ring.room_doorbell(), seen, mp::detail::Clock::now() + 1s, mp::detail::Spin::first);
      }
      mp::detail::ring_doorbell(ring.data_doorbell());
    }
    return 0;
  }};
  producer.start();
  std::vector<std::byte> got;
  std::uint32_t wrong = 0;
  for (std::uint32_t i = 0; i < records; ++i) {
    for (;;) {
      const auto seen = mp::detail::doorbell_state(ring.data_doorbell());
      if (ring.try_read(got)) break;
      BOOST_REQUIRE(mp::detail::wait_at_doorbell(ring.data_doorbell(), seen, mp::detail::Clock::now() + 10s, mp::detail::Spin::first));
    }
    mp::detail::ring_doorbell(ring.room_doorbell());
    if (got != record_number(i)) ++wrong;
  }
  BOOST_CHECK_EQUAL(wrong, 0u);
  BOOST_CHECK(producer.join(10s));
  BOOST_CHECK_EQUAL(*producer.exitcode(), 0);
  BOOST_CHECK(!ring.try_read(got));
  BOOST_CHECK_EQUAL(ring.queued_bytes(), 0u);
}

BOOST_AUTO_TEST_CASE(spsc_record_ring_refuses_oversized_and_corrupt_records) {
  mp::RawValue<SharedSpsc> shared;
  SharedSpsc& s = shared.value();
  mp::detail::SpscRecordRing ring(s.control, s.bytes, SharedSpsc::capacity, "test");
  const std::vector<std::byte> big(SharedSpsc::capacity);
  const std::span<const std::byte> too_big[] = {big};
  BOOST_CHECK_THROW((void)ring.try_write(too_big), mp::MessageTooLarge);
  const std::vector<std::byte> third(SharedSpsc::capacity / 3);
  const std::span<const std::byte> parts[] = {third};
  BOOST_CHECK(ring.try_write(parts));
  BOOST_CHECK(ring.try_write(parts));
  BOOST_CHECK(!ring.try_write(parts));  // full: refused whole, nothing half-written
  std::vector<std::byte> got;
  BOOST_CHECK(ring.try_read(got));
  BOOST_CHECK_EQUAL(got.size(), third.size());
  // A record header that the ring could not have written (its length and check disagree).
  auto* header = reinterpret_cast<std::uint32_t*>(s.bytes + mp::detail::RecordBuffer::record_bytes(third.size()));
  header[0] += 8;
  BOOST_CHECK_THROW((void)ring.try_read(got), mp::LayoutMismatch);
  // A write position pushed beyond the capacity (what a hostile process could write) is refused too.
  header[0] -= 8;
  s.control.write_pos += SharedSpsc::capacity * 2;
  BOOST_CHECK_THROW((void)ring.try_read(got), mp::LayoutMismatch);
}

// LockedRecordRing, the codec queue's ring: a writer killed under the lock after it moved
// write_pos but before it counted its message. The next caller takes the lock over and counts the
// records again; before that fix the count stayed one low, the reader's decrement wrapped it to
// 2^64 - 1, and every later put found the queue full for good (fault_campaign, 'Queue<string>
// producer mid-put'). The dying writer is a child that does a put's first steps by hand under the
// ring's lock and exits holding it.
namespace {
struct SharedLocked {
  static constexpr std::size_t capacity = 1024;
  mp::detail::LockedRecordRingControl control;
  alignas(8) std::byte bytes[capacity];
};
}  // namespace

BOOST_AUTO_TEST_CASE(a_writer_killed_between_its_record_and_its_count_leaves_the_count_right) {
  using mp::detail::Attempted;
  mp::RawValue<SharedLocked> shared;
  SharedLocked& s = shared.value();
  constexpr std::size_t max_messages = 4;
  mp::detail::LockedRecordRing::initialise(s.control, max_messages, 0);
  mp::detail::LockedRecordRing ring(s.control, s.bytes, SharedLocked::capacity);
  const std::vector<std::byte> message(24, std::byte{7});
  BOOST_REQUIRE_EQUAL(test::in_child([&] {
                        mp::Lock lock(mp::Lock::borrow_t{}, s.control.lock);
                        lock.acquire();
                        const std::span<const std::byte> parts[] = {message};
                        mp::detail::RecordBuffer buffer(s.bytes, SharedLocked::capacity);
                        s.control.write_pos += buffer.write_record(s.control.write_pos, parts);
                        return 0;  // exits holding the lock: its record is in, its count is not
                      }),
                      0);
  BOOST_REQUIRE(ring.try_write(message) == Attempted::done);
  BOOST_CHECK_EQUAL(ring.messages(), 2u);
  std::vector<std::byte> got;
  for (int i = 0; i < 2; ++i) {
    BOOST_REQUIRE(ring.try_read(got) == Attempted::done);
    BOOST_CHECK(got == message);
  }
  BOOST_CHECK_EQUAL(ring.messages(), 0u);
  BOOST_CHECK(ring.try_read(got) == Attempted::blocked);
  for (std::size_t i = 0; i < max_messages; ++i) {
    BOOST_CHECK(ring.try_write(message) == Attempted::done);
  }
  BOOST_CHECK(ring.try_write(message) == Attempted::blocked);  // max_messages reached, and no more
}
