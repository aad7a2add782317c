// SpscRing's zero-copy loans and views across real processes: large messages built and read in
// place, one loan (view) at a time, and the crash rules: a producer killed holding a loan leaves
// nothing visible; a consumer killed holding a view leaves its message to the next consumer.
// And the rings and queues of trivially copyable messages (the slot ring) move like the others.
#define BOOST_TEST_MODULE rings
#include <signal.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <new>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <multiproc/multiproc.hpp>

#include "loan_frame.hpp"
#include "support.hpp"

namespace mp = multiproc;

namespace {

using test::build;
using test::Frame;

// The oldest message's sequence number, checked whole, from a fresh consumer handle on `name`.
int take_one(const std::string& name, std::uint64_t expected) {
  mp::SpscRing<Frame> ring{mp::open, name};
  auto view = ring.try_take();
  if (!view) return 2;
  return view->sequence == expected && view->trailer == expected ? 0 : 3;
}

}  // namespace

BOOST_AUTO_TEST_CASE(loaned_frames_arrive_in_order_and_whole_across_processes) {
  constexpr std::uint64_t count = 20000;
  mp::SpscRing<Frame> ring{8};
  mp::Process producer{[&] {
    for (std::uint64_t s = 0; s < count; ++s) {
      auto slot = ring.try_loan();
      while (!slot) {
        std::this_thread::yield();
        slot = ring.try_loan();
      }
      build(slot, s);
    }
  }};
  producer.start();
  std::uint64_t expected = 0;
  while (expected < count) {
    if (auto view = ring.try_take()) {
      if (view->sequence != expected || view->trailer != expected ||
          view->payload[expected % view->payload.size()] != std::byte{static_cast<unsigned char>(expected)}) {
        break;
      }
      ++expected;
    }
  }
  BOOST_CHECK_EQUAL(expected, count);
  producer.join();
  BOOST_CHECK_EQUAL(*producer.exitcode(), 0);
  BOOST_CHECK(!ring.try_take());
}

BOOST_AUTO_TEST_CASE(one_loan_and_one_view_at_a_time_per_handle) {
  mp::SpscRing<std::uint64_t> ring{4};
  {
    auto slot = ring.try_loan();
    BOOST_REQUIRE(slot);
    BOOST_CHECK_THROW((void)ring.try_loan(), mp::ValueError);
    BOOST_CHECK(!ring.try_push(1));  // the loaned slot is the next one
    *slot = 7;
  }  // dropped unpublished: nothing visible
  BOOST_CHECK(!ring.try_take());
  BOOST_CHECK_EQUAL(ring.size_approx(), 0u);
  BOOST_CHECK(ring.try_push(8));
  BOOST_CHECK(ring.try_push(9));
  {
    auto view = ring.try_take();
    BOOST_REQUIRE(view);
    BOOST_CHECK_EQUAL(*view, 8u);
    BOOST_CHECK_THROW((void)ring.try_take(), mp::ValueError);
    BOOST_CHECK(!ring.try_pop());  // the viewed message is not handed out twice
    auto moved = std::move(view);
    BOOST_CHECK(!view);
    BOOST_CHECK_EQUAL(*moved, 8u);
  }
  BOOST_CHECK_EQUAL(ring.try_pop().value_or(0), 9u);
  for (std::uint64_t v = 0; v < ring.capacity(); ++v) {
    auto slot = ring.try_loan();
    BOOST_REQUIRE(slot);
    *slot = v;
    slot.publish();
    BOOST_CHECK(!slot);
  }
  BOOST_CHECK(!ring.try_loan());  // full
}

BOOST_AUTO_TEST_CASE(a_producer_killed_holding_a_loan_leaves_nothing_visible) {
  const std::string name = test::unique_name("loan-kill");
  mp::SpscRing<Frame> ring{mp::create, name, 4};
  const int killed = test::in_child([&] {
    mp::SpscRing<Frame> producer{mp::open, name};
    auto slot = producer.try_loan();
    if (!slot) return 2;
    Frame* frame = new (&*slot) Frame;
    frame->sequence = 666;
    frame->trailer = 666;
    ::kill(::getpid(), SIGKILL);  // before publish()
    return 3;
  });
  BOOST_CHECK_EQUAL(killed, -SIGKILL);
  BOOST_CHECK(!ring.try_take());
  BOOST_CHECK_EQUAL(ring.size_approx(), 0u);
  // The next producer reuses the slot, and only its message arrives.
  BOOST_CHECK_EQUAL(test::in_child([&] {
                      mp::SpscRing<Frame> producer{mp::open, name};
                      auto slot = producer.try_loan();
                      if (!slot) return 2;
                      build(slot, 1);
                      return 0;
                    }),
                    0);
  auto view = ring.try_take();
  BOOST_REQUIRE(view);
  BOOST_CHECK_EQUAL(view->sequence, 1u);
  BOOST_CHECK_EQUAL(view->trailer, 1u);
  view.release();
  BOOST_CHECK(!ring.try_take());
  mp::unlink(name);
}

BOOST_AUTO_TEST_CASE(a_consumer_killed_holding_a_view_leaves_its_message_to_the_next_consumer) {
  const std::string name = test::unique_name("view-kill");
  mp::SpscRing<Frame> ring{mp::create, name, 2};
  for (std::uint64_t s = 1; s <= 2; ++s) {
    auto slot = ring.try_loan();
    BOOST_REQUIRE(slot);
    build(slot, s);
  }
  BOOST_CHECK(!ring.try_loan());  // full
  const int killed = test::in_child([&] {
    mp::SpscRing<Frame> consumer{mp::open, name};
    auto view = consumer.try_take();
    if (!view || view->sequence != 1) return 2;
    ::kill(::getpid(), SIGKILL);  // holding the view
    return 3;
  });
  BOOST_CHECK_EQUAL(killed, -SIGKILL);
  BOOST_CHECK(!ring.try_loan());  // the slot is still held: message 1 was never consumed
  // The next consumer takes message 1 again, then 2, and so frees both slots.
  BOOST_CHECK_EQUAL(test::in_child([&] { return take_one(name, 1); }), 0);
  BOOST_CHECK_EQUAL(test::in_child([&] { return take_one(name, 2); }), 0);
  for (std::uint64_t s = 3; s <= 4; ++s) {
    auto slot = ring.try_loan();
    BOOST_REQUIRE(slot);
    build(slot, s);
  }
  BOOST_CHECK_EQUAL(test::in_child([&] { return take_one(name, 3); }), 0);
  mp::unlink(name);
}

BOOST_AUTO_TEST_CASE(slot_rings_and_queues_move_and_keep_working_across_processes) {
  static_assert(std::is_move_constructible_v<mp::MpmcRing<long>> && std::is_move_assignable_v<mp::MpmcRing<long>>);
  static_assert(std::is_move_constructible_v<mp::Queue<long>> && std::is_move_assignable_v<mp::Queue<long>>);
  static_assert(std::is_move_constructible_v<mp::JoinableQueue<long>>);
  std::vector<mp::Queue<long>> queues;
  for (int i = 0; i < 4; ++i) queues.emplace_back(4);  // the vector moves them as it grows
  mp::Queue<long> taken{std::move(queues[3])};         // the moved-from one is destroyed with the vector
  mp::Queue<long> assigned{2};
  assigned = std::move(queues[2]);
  std::vector<mp::MpmcRing<long>> rings;
  for (int i = 0; i < 3; ++i) rings.emplace_back(8);
  mp::MpmcRing<long> ring{std::move(rings[1])};
  mp::JoinableQueue<long> first{4};
  mp::JoinableQueue<long> joinable{std::move(first)};
  BOOST_CHECK_EQUAL(test::in_child([&] {
                      taken.put(1);
                      assigned.put(2);
                      queues[0].put(3);
                      joinable.put(4);
                      return ring.try_push(5) ? 0 : 2;
                    }),
                    0);
  BOOST_CHECK_EQUAL(taken.get(), 1);
  BOOST_CHECK_EQUAL(assigned.get(), 2);
  BOOST_CHECK_EQUAL(assigned.capacity(), 4u);
  BOOST_CHECK_EQUAL(queues[0].get(), 3);
  BOOST_CHECK_EQUAL(joinable.get(), 4);
  joinable.task_done();
  joinable.join();
  BOOST_CHECK_EQUAL(ring.try_pop().value_or(0), 5);
  BOOST_CHECK(!ring.try_pop());
}
