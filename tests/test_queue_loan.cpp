// Queue<T>'s zero-copy loans and views (trivially copyable T, the slot ring) across real processes:
// messages built and read in place, in order, exactly once; blocking, timeouts and close as put and
// get have them; several loans and views per handle; and the crash rules: a producer killed holding
// a loan leaves nothing visible, a consumer killed holding a view gives its slot back.
#define BOOST_TEST_MODULE queue_loan
#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <thread>
#include <vector>

#include <multiproc/multiproc.hpp>

#include "loan_frame.hpp"
#include "support.hpp"

namespace mp = multiproc;
using namespace std::chrono_literals;

namespace {

using test::build;
using test::Frame;
using test::whole;

// Takes `count` frames, which must be `first`, `first + 1`, ...: 0 when they are, else 2 + the index of the first wrong one.
int take_in_order(mp::Queue<Frame>& queue, std::uint64_t first, std::uint64_t count) {
  for (std::uint64_t i = 0; i < count; ++i) {
    const auto view = queue.take(30s);
    if (!whole(*view, first + i)) return 2 + static_cast<int>(i);
  }
  return 0;
}

// A pid that certainly belongs to no process any more: a child that has exited and been reaped.
std::uint32_t dead_pid() {
  mp::Process gone{[] {}};
  gone.start();
  gone.join();
  return static_cast<std::uint32_t>(gone.pid());
}

// A message that names its producer and sequence number; `check` is ~(producer ^ sequence), so a
// torn message shows.
struct Tagged {
  std::uint64_t producer, sequence;
  std::array<std::uint64_t, 6> filler;
  std::uint64_t check;
};

// A slot state word as the ring packs it: lap, phase, owner pid.
std::uint64_t slot_state(std::uint32_t lap, mp::detail::SlotPhase phase, std::uint32_t pid) {
  return std::uint64_t{lap} << 32 | std::uint64_t{static_cast<std::uint32_t>(phase)} << mp::detail::slot_owner_bits | pid;
}

}  // namespace

BOOST_AUTO_TEST_CASE(loaned_frames_arrive_in_order_and_whole_across_processes) {
  constexpr std::uint64_t count = 20000;
  mp::Queue<Frame> queue{8};
  // A child loans while the parent takes, then the other way round.
  mp::Process producer{[&] {
    for (std::uint64_t s = 0; s < count; ++s) {
      auto slot = queue.loan(30s);
      build(slot, s);
    }
  }};
  producer.start();
  BOOST_CHECK_EQUAL(take_in_order(queue, 0, count), 0);
  BOOST_REQUIRE(producer.join(60s));
  BOOST_CHECK_EQUAL(*producer.exitcode(), 0);
  BOOST_CHECK(!queue.try_take());
  mp::Process consumer{[&] { return take_in_order(queue, count, count); }};
  consumer.start();
  for (std::uint64_t s = count; s < 2 * count; ++s) {
    auto slot = queue.loan(30s);
    build(slot, s);
  }
  BOOST_REQUIRE(consumer.join(60s));
  BOOST_CHECK_EQUAL(*consumer.exitcode(), 0);
  BOOST_CHECK(!queue.try_take());
  BOOST_CHECK_EQUAL(queue.qsize(), 0u);
}

BOOST_AUTO_TEST_CASE(a_dropped_loan_leaves_nothing_and_its_room_comes_back) {
  for (const std::size_t capacity : {4u, 3u}) {  // as many slots as messages, and one slot to spare
    mp::Queue<long> queue{capacity};
    {
      auto slot = queue.try_loan();
      BOOST_REQUIRE(slot);
      *slot = 666;
    }  // dropped unpublished
    BOOST_CHECK_EQUAL(test::in_child([&] { return queue.try_take() || queue.try_get() ? 2 : 0; }), 0);
    BOOST_CHECK(!queue.try_take());
    BOOST_CHECK_EQUAL(queue.qsize(), 0u);
    for (long i = 0; i < static_cast<long>(capacity); ++i) BOOST_REQUIRE_NO_THROW(queue.put_nowait(i));
    BOOST_CHECK(!queue.try_loan());  // full: the dropped slot counts for nothing
    for (long i = 0; i < static_cast<long>(capacity); ++i) BOOST_CHECK_EQUAL(*queue.take(30s), i);
    BOOST_CHECK(!queue.try_take());
  }
}

// The slot ring makes several claims per handle natural (each is its own position; the handle
// keeps nothing), so Queue allows them, unlike SpscRing.
BOOST_AUTO_TEST_CASE(a_handle_may_hold_several_loans_and_views_and_each_holds_a_slot) {
  mp::Queue<long> queue{2};
  auto first = queue.loan();
  auto second = queue.loan();
  *first = 1;
  *second = 2;
  BOOST_CHECK(!queue.try_loan());  // both slots lent
  second.publish();
  BOOST_CHECK(!second);
  BOOST_CHECK(!queue.try_take());  // messages come in loan order: the first is still open
  first.publish();
  auto one = queue.take();
  auto two = queue.take();
  BOOST_CHECK_EQUAL(*one, 1);
  BOOST_CHECK_EQUAL(*two, 2);
  BOOST_CHECK_EQUAL(queue.qsize(), 0u);  // taken: out of the queue...
  BOOST_CHECK(!queue.try_loan());         // ...but their slots stay held
  auto moved = std::move(one);
  BOOST_CHECK(!one);
  BOOST_CHECK_EQUAL(*moved, 1);
  moved.release();
  BOOST_CHECK(!moved);
  BOOST_CHECK_EQUAL(test::in_child([&] {  // the freed slot is there for another process
                      auto slot = queue.try_loan();
                      if (!slot) return 2;
                      *slot = 3;
                      slot.publish();
                      return 0;
                    }),
                    0);
  two = queue.take();  // assigning over a view releases the one it held
  BOOST_CHECK_EQUAL(*two, 3);
  BOOST_CHECK(queue.try_loan());
}

BOOST_AUTO_TEST_CASE(loan_and_take_wait_and_time_out_as_put_and_get_do) {
  mp::Queue<long> queue{2};
  BOOST_CHECK(!queue.try_take());
  BOOST_CHECK_THROW((void)queue.take(20ms), mp::Empty);
  BOOST_CHECK_EQUAL(test::check_blocked_wait([&](std::chrono::milliseconds timeout) {
                      try {
                        return static_cast<bool>(queue.take(timeout));
                      } catch (const mp::Empty&) {
                        return false;
                      }
                    }),
                    0);
  queue.put(1);
  queue.put(2);
  BOOST_CHECK(!queue.try_loan());
  BOOST_CHECK_THROW((void)queue.loan(20ms), mp::Full);
  BOOST_CHECK_EQUAL(test::check_blocked_wait([&](std::chrono::milliseconds timeout) {
                      try {
                        return static_cast<bool>(queue.loan(timeout));
                      } catch (const mp::Full&) {
                        return false;
                      }
                    }),
                    0);
  // A producer waiting in loan() gets the slot a view frees; a consumer waiting in take() gets
  // the message a loan publishes.
  test::Notice waiting;
  mp::Process producer{[&] {
    waiting.raise();
    auto slot = queue.loan();  // full until the parent drops its view
    *slot = 3;
    slot.publish();
  }};
  producer.start();
  waiting.wait();
  BOOST_CHECK_EQUAL(*queue.take(), 1);
  BOOST_REQUIRE(producer.join(30s));
  BOOST_CHECK_EQUAL(*producer.exitcode(), 0);
  BOOST_CHECK_EQUAL(*queue.take(), 2);
  BOOST_CHECK_EQUAL(*queue.take(), 3);
  mp::Process consumer{[&] {
    waiting.raise();
    return *queue.take() == 4 ? 0 : 2;  // empty until the parent publishes
  }};
  consumer.start();
  waiting.wait();
  auto slot = queue.loan();
  *slot = 4;
  slot.publish();
  BOOST_REQUIRE(consumer.join(30s));
  BOOST_CHECK_EQUAL(*consumer.exitcode(), 0);
}

BOOST_AUTO_TEST_CASE(close_ends_loans_and_takes_as_it_ends_puts_and_gets) {
  mp::Queue<long> queue{2};
  queue.put(1);
  queue.put(2);
  test::Notice waiting;
  const auto wait_in = [&](auto call) {
    mp::Process child{[&, call] {
      waiting.raise();
      try {
        call();
      } catch (const mp::Closed&) {
        return 0;
      }
      return 2;
    }};
    child.start();
    waiting.wait();
    return child;
  };
  auto producer = wait_in([&] { (void)queue.loan(); });  // full: waits
  auto open = queue.try_loan();
  BOOST_CHECK(!open);
  queue.close();
  BOOST_REQUIRE(producer.join(30s));
  BOOST_CHECK_EQUAL(*producer.exitcode(), 0);  // woken by close(), with Closed
  BOOST_CHECK_THROW((void)queue.loan(), mp::Closed);
  BOOST_CHECK_THROW((void)queue.try_loan(), mp::Closed);
  BOOST_CHECK_EQUAL(*queue.take(), 1);  // what is left is taken...
  BOOST_CHECK_EQUAL(*queue.try_take(), 2);
  BOOST_CHECK_THROW((void)queue.take(), mp::Closed);  // ...then Closed
  BOOST_CHECK_THROW((void)queue.try_take(), mp::Closed);
  mp::Queue<long> idle{2};
  auto consumer = wait_in([&] { (void)idle.take(); });  // empty: waits
  idle.close();
  BOOST_REQUIRE(consumer.join(30s));
  BOOST_CHECK_EQUAL(*consumer.exitcode(), 0);
}

BOOST_AUTO_TEST_CASE(a_producer_killed_holding_a_loan_loses_nothing_else) {
  mp::Queue<Frame> queue{4};
  auto first = queue.loan();
  build(first, 1);
  const int killed = test::in_child([&] {
    auto slot = queue.loan();
    Frame* frame = new (&*slot) Frame;
    frame->sequence = 666;
    frame->trailer = 666;
    ::kill(::getpid(), SIGKILL);  // before publish()
    return 3;
  });
  BOOST_CHECK_EQUAL(killed, -SIGKILL);
  for (std::uint64_t s = 2; s <= 3; ++s) {
    auto slot = queue.loan();
    build(slot, s);
  }
  // The consumer waits at the dead producer's slot, finds its owner gone, and moves on.
  BOOST_CHECK_EQUAL(test::in_child([&] { return take_in_order(queue, 1, 3); }), 0);
  BOOST_CHECK(!queue.try_take());
  // The ring keeps working, lap after lap, to its full capacity.
  for (std::uint64_t round = 0; round < 3; ++round) {
    for (std::uint64_t s = 10 * round; s < 10 * round + 4; ++s) {
      auto slot = queue.loan(30s);
      build(slot, s);
    }
    BOOST_CHECK(!queue.try_loan());
    BOOST_CHECK_EQUAL(take_in_order(queue, 10 * round, 4), 0);
  }
  BOOST_CHECK(!queue.try_take());
}

// Fails if reclaim_if_abandoned passes over reading(L, dead pid) (the view's slot stays held), or
// if a producer that finds it held reports "full" rather than "stalled" (it then sleeps until a
// consumer rings, and none comes: the queue is empty): either way the refilling child's blocking
// loan() or put() never returns, and in_child kills it after 30 s.
BOOST_AUTO_TEST_CASE(a_consumer_killed_holding_a_view_gives_its_slot_back) {
  struct Case {
    std::size_t capacity;  // 4: as many slots as messages; 3: one slot to spare
    bool refill_by_put;    // else by loan
  };
  for (const Case c : {Case{4, false}, Case{3, true}}) {
    mp::Queue<Frame> queue{c.capacity};
    for (std::uint64_t s = 1; s <= c.capacity; ++s) {
      auto slot = queue.loan();
      build(slot, s);
    }
    const int killed = test::in_child([&] {
      const auto view = queue.take();
      if (!whole(*view, 1)) return 2;
      ::kill(::getpid(), SIGKILL);  // holding the view
      return 3;
    });
    BOOST_CHECK_EQUAL(killed, -SIGKILL);
    // Message 1 went with the consumer; every other one arrives once.
    BOOST_CHECK_EQUAL(take_in_order(queue, 2, c.capacity - 1), 0);
    BOOST_CHECK(!queue.try_take());
    // The slot comes back: the queue fills to its capacity again (the producer that comes round to
    // the dead consumer's slot finds its owner gone and reclaims it), and lap after lap.
    for (std::uint64_t round = 1; round <= 3; ++round) {
      const std::uint64_t first = 10 * round;
      const auto refill = [&] {
        const auto frame = std::make_unique<Frame>();
        for (std::uint64_t s = first; s < first + c.capacity; ++s) {
          if (c.refill_by_put) {
            frame->sequence = frame->trailer = s;
            frame->payload[s % frame->payload.size()] = std::byte{static_cast<unsigned char>(s)};
            queue.put(*frame);
          } else {
            auto slot = queue.loan();
            build(slot, s);
          }
        }
        return 0;
      };
      BOOST_CHECK_EQUAL(test::in_child(refill, 30s), 0);
      BOOST_CHECK(!queue.try_loan());
      BOOST_CHECK_EQUAL(take_in_order(queue, first, c.capacity), 0);
      BOOST_CHECK(!queue.try_take());
    }
  }
}

BOOST_AUTO_TEST_CASE(put_get_and_loan_take_mix_on_one_queue_in_order) {
  constexpr std::uint64_t count = 100000;
  mp::Queue<std::uint64_t> queue{16};
  mp::Process producer{[&] {
    for (std::uint64_t s = 0; s < count; ++s) {
      if (s % 2 == 0) {
        queue.put(s);
      } else {
        auto slot = queue.loan();
        *slot = s;
        slot.publish();
      }
    }
  }};
  producer.start();
  std::uint64_t expected = 0;
  for (; expected < count; ++expected) {
    const std::uint64_t got = expected % 3 == 0 ? queue.get(30s) : *queue.take(30s);
    if (got != expected) break;
  }
  BOOST_CHECK_EQUAL(expected, count);
  BOOST_REQUIRE(producer.join(30s));
  BOOST_CHECK_EQUAL(*producer.exitcode(), 0);
  BOOST_CHECK(!queue.try_take());
}

// Two producers loan and publish, two consumers take, through a queue smaller than the stream:
// every message arrives whole, exactly once, and in order per producer as each consumer sees it.
BOOST_AUTO_TEST_CASE(two_producers_two_consumers_stream_with_loans_exactly_once) {
  constexpr std::uint64_t producers = 2, consumers = 2, per_producer = 50000;
  mp::Queue<Tagged> queue{64};
  mp::RawArray<std::uint8_t> seen(producers * per_producer);
  mp::RawValue<long> wrong;  // torn, unknown or out of order
  std::vector<mp::Process> children;
  for (std::uint64_t c = 0; c < consumers; ++c) {
    children.emplace_back([&] {
      std::array<std::int64_t, producers> last{-1, -1};
      try {
        for (;;) {
          const auto view = queue.take(60s);
          const Tagged& m = *view;
          if (m.producer >= producers || m.sequence >= per_producer || m.check != ~(m.producer ^ m.sequence) ||
              static_cast<std::int64_t>(m.sequence) <= last[m.producer]) {
            wrong.atomic().fetch_add(1);
            continue;
          }
          last[m.producer] = static_cast<std::int64_t>(m.sequence);
          std::atomic_ref<std::uint8_t>(seen[m.producer * per_producer + m.sequence]).fetch_add(1);
        }
      } catch (const mp::Closed&) {
        return 0;
      }
    });
  }
  for (std::uint64_t p = 0; p < producers; ++p) {
    children.emplace_back([&, p] {
      for (std::uint64_t s = 0; s < per_producer; ++s) {
        auto slot = queue.loan();
        slot->producer = p;
        slot->sequence = s;
        slot->check = ~(p ^ s);
        slot.publish();
      }
    });
  }
  for (auto& child : children) child.start();
  for (std::size_t i = consumers; i < children.size(); ++i) {
    BOOST_REQUIRE(children[i].join(120s));
    BOOST_CHECK_EQUAL(*children[i].exitcode(), 0);
  }
  queue.close();
  for (std::size_t i = 0; i < consumers; ++i) {
    BOOST_REQUIRE(children[i].join(120s));
    BOOST_CHECK_EQUAL(*children[i].exitcode(), 0);
  }
  std::size_t once = 0;
  for (std::size_t i = 0; i < seen.size(); ++i) once += seen[i] == 1;
  BOOST_CHECK_EQUAL(once, producers * per_producer);
  BOOST_CHECK_EQUAL(wrong.load(), 0);
}

BOOST_AUTO_TEST_CASE(a_joinable_queue_counts_a_loan_when_it_is_published) {
  mp::JoinableQueue<long> queue{4};
  {
    auto dropped = queue.loan();
    *dropped = 0;
  }
  BOOST_CHECK(queue.join(0ms));  // a dropped loan is no task
  auto slot = queue.loan();
  *slot = 1;
  BOOST_CHECK(queue.join(0ms));  // nor an open one
  slot.publish();
  BOOST_CHECK(!queue.join(10ms));  // published: a task until task_done()
  BOOST_CHECK_EQUAL(test::in_child([&] {
                      if (*queue.take() != 1) return 2;
                      queue.task_done();
                      return 0;
                    }),
                    0);
  BOOST_CHECK(queue.join(0ms));
  BOOST_CHECK_THROW(queue.task_done(), mp::ValueError);
}

// White-box: a ring over memory of our own, holding states no public call leaves behind.
// A consumer killed between its view's CAS and its move of read_pos: consumers pass the position
// over; the producers that come round to the slot reclaim it.
BOOST_AUTO_TEST_CASE(a_view_left_behind_read_pos_by_a_dead_consumer_is_passed_over_and_reclaimed) {
  mp::detail::SlotRingControl control{};
  std::vector<mp::detail::Slot<long>> slots(2);
  mp::detail::SlotRing<long> ring{&control, slots.data(), slots.size()};
  BOOST_REQUIRE(ring.try_push(10));
  BOOST_REQUIRE(ring.try_push(20));
  slots[0].state = slot_state(0, mp::detail::SlotPhase::reading, dead_pid());  // read_pos still 0
  BOOST_CHECK_EQUAL(ring.try_pop().value_or(0), 20);
  mp::detail::Attempted why = mp::detail::Attempted::done;
  BOOST_CHECK(!ring.try_push(30, &why));  // position 2 is slot 0, held: first sight, not yet judged
  BOOST_CHECK(why == mp::detail::Attempted::stalled);
  std::this_thread::sleep_for(2ms);
  BOOST_REQUIRE(ring.try_push(30));  // seen held twice, a millisecond apart: its viewer is dead
  BOOST_CHECK_EQUAL(ring.try_pop().value_or(0), 30);
  BOOST_CHECK(!ring.try_pop());
}

// A live viewer that has not moved read_pos yet must not hold a limited ring full: producers move
// read_pos over the viewed position, as over a taken one.
BOOST_AUTO_TEST_CASE(a_limited_ring_counts_a_viewed_position_as_taken) {
  mp::detail::SlotRingControl control{};
  std::vector<mp::detail::Slot<long>> slots(4);
  mp::detail::SlotRing<long> ring{&control, slots.data(), slots.size(), 3};
  for (long i = 0; i < 3; ++i) BOOST_REQUIRE(ring.try_push(i));
  slots[0].state = slot_state(0, mp::detail::SlotPhase::reading, mp::detail::current_pid());
  BOOST_REQUIRE(ring.try_push(3));
  BOOST_CHECK(!ring.try_push(4));
  for (long i = 1; i < 4; ++i) BOOST_REQUIRE_EQUAL(ring.try_pop().value_or(-1), i);
  BOOST_CHECK(!ring.try_pop());
}
