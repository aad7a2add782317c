// Barrier across processes and threads: indices, reuse, timeouts, a missing or dead party.
#define BOOST_TEST_MODULE barrier
#include <algorithm>
#include <thread>
#include <vector>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;
using namespace std::chrono_literals;

namespace {

// Runs `n` children running `body(i)`; returns their exit codes.
template <class Body>
std::vector<int> run_children(int n, Body body) {
  std::vector<mp::Process> children;
  for (int i = 0; i < n; ++i) children.emplace_back([&body, i] { return body(i); });
  for (auto& c : children) c.start();
  std::vector<int> codes;
  for (auto& c : children) {
    BOOST_REQUIRE(c.join(60s));
    codes.push_back(*c.exitcode());
  }
  return codes;
}

// 0 if `wait` threw BrokenBarrier, 1 if it returned.
template <class Wait>
int broke(Wait wait) {
  try {
    wait();
  } catch (const mp::BrokenBarrier&) {
    return 0;
  }
  return 1;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_party_gets_a_distinct_index_each_round) {
  constexpr int parties = 4;
  constexpr int rounds = 20;
  mp::Barrier barrier{parties};
  BOOST_CHECK_EQUAL(barrier.parties(), parties);
  mp::RawArray<int> seen(parties * rounds);
  const auto codes = run_children(parties, [&](int) {
    for (int round = 0; round < rounds; ++round) {
      const std::size_t index = barrier.wait(30s);
      if (index >= parties) return 1;
      seen[round * parties + index] += 1;
    }
    return 0;
  });
  BOOST_CHECK(std::all_of(codes.begin(), codes.end(), [](int c) { return c == 0; }));
  BOOST_CHECK(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
  BOOST_CHECK(!barrier.broken());
}

BOOST_AUTO_TEST_CASE(a_missing_party_and_a_timeout_break_it_for_all) {
  mp::Barrier barrier{3};
  const auto start = std::chrono::steady_clock::now();
  const auto codes = run_children(2, [&](int i) { return broke([&] { barrier.wait(i == 0 ? 300ms : 30s); }); });
  BOOST_CHECK(codes == std::vector<int>({0, 0}));  // the timeout broke it, and the patient one was told
  BOOST_CHECK(std::chrono::steady_clock::now() - start >= 300ms);
  BOOST_CHECK(barrier.broken());
  BOOST_CHECK_EQUAL(broke([&] { barrier.wait(30s); }), 0);  // broken until reset
  barrier.reset();
  BOOST_CHECK(!barrier.broken());
  const auto again = run_children(3, [&](int) { return barrier.wait(30s) < 3 ? 0 : 1; });
  BOOST_CHECK(again == std::vector<int>({0, 0, 0}));
}

BOOST_AUTO_TEST_CASE(a_party_that_dies_before_arriving_cannot_block_the_others) {
  mp::Barrier barrier{3};
  mp::Process doomed{[] { ::pause(); }};  // would have been the third party
  doomed.start();
  doomed.kill();
  doomed.join();
  const auto codes = run_children(2, [&](int) { return broke([&] { barrier.wait(500ms); }); });
  BOOST_CHECK(codes == std::vector<int>({0, 0}));
}

BOOST_AUTO_TEST_CASE(a_party_that_dies_after_arriving_still_counts) {
  mp::Barrier barrier{3};
  mp::Process doomed{[&] { barrier.wait(30s); }};
  doomed.start();
  while (barrier.n_waiting() != 1) std::this_thread::sleep_for(5ms);
  doomed.kill();
  doomed.join();
  const auto codes = run_children(2, [&](int) { return barrier.wait(30s) < 3 ? 0 : 1; });
  BOOST_CHECK(codes == std::vector<int>({0, 0}));
  BOOST_CHECK(!barrier.broken());
}

BOOST_AUTO_TEST_CASE(abort_and_reset_wake_waiters_with_broken_barrier) {
  for (const bool use_abort : {true, false}) {
    mp::Barrier barrier{3};
    mp::Process waiter{[&] { return broke([&] { barrier.wait(30s); }); }};
    waiter.start();
    while (barrier.n_waiting() != 1) std::this_thread::sleep_for(5ms);
    if (use_abort) {
      barrier.abort();
    } else {
      barrier.reset();
    }
    BOOST_REQUIRE(waiter.join(30s));
    BOOST_CHECK_EQUAL(*waiter.exitcode(), 0);
    BOOST_CHECK_EQUAL(barrier.broken(), use_abort);
    BOOST_CHECK_EQUAL(barrier.n_waiting(), 0);
  }
}

BOOST_AUTO_TEST_CASE(named_barrier_between_threads_and_processes) {
  const auto name = test::unique_name("barrier");
  mp::ScopedUnlink cleanup{name};
  mp::Barrier barrier{mp::create, name, 3};
  BOOST_CHECK_THROW(mp::Barrier(mp::create, name, 3), mp::AlreadyExists);
  BOOST_CHECK_THROW(mp::Barrier{0}, mp::ValueError);
  std::thread thread_party([&] { BOOST_CHECK_LT(barrier.wait(30s), 3u); });
  mp::Process process_party{[&] { return mp::Barrier(mp::open, name).wait(30s) < 3 ? 0 : 1; }};
  process_party.start();
  BOOST_CHECK_LT(barrier.wait(30s), 3u);
  thread_party.join();
  BOOST_REQUIRE(process_party.join(30s));
  BOOST_CHECK_EQUAL(*process_party.exitcode(), 0);
}

BOOST_AUTO_TEST_CASE(a_waiter_sleeps_through_signals_and_uses_no_cpu) {
  mp::Barrier barrier{2};
  BOOST_CHECK_EQUAL(test::check_blocked_wait([&](auto timeout) {
    return broke([&] { barrier.wait(timeout); }) != 0;  // a timeout breaks it: "false"
  }), 0);
}

// CPython _TestBarrier.test_action: the action runs once per round, in one party, before any
// party is released.
BOOST_AUTO_TEST_CASE(test_action) {
  constexpr int parties = 3;
  constexpr int rounds = 5;
  mp::RawValue<int> actions;
  mp::Barrier barrier{parties, [&] { actions.atomic().fetch_add(1); }};
  const auto codes = run_children(parties, [&](int) {
    for (int round = 1; round <= rounds; ++round) {
      (void)barrier.wait(30s);
      if (actions.atomic().load() < round) return 1;  // released before the round's action ran
    }
    return 0;
  });
  BOOST_CHECK(std::all_of(codes.begin(), codes.end(), [](int c) { return c == 0; }));
  BOOST_CHECK_EQUAL(actions.value(), rounds);
  BOOST_CHECK(!barrier.broken());
}

// As Python: an action that throws breaks the barrier; its exception reaches the party that ran
// it, the others get BrokenBarrier.
BOOST_AUTO_TEST_CASE(an_action_that_throws_breaks_the_barrier) {
  mp::Barrier barrier{3, [] { throw mp::ValueError("action failed"); }};
  const auto codes = run_children(3, [&](int) {
    try {
      (void)barrier.wait(30s);
    } catch (const mp::BrokenBarrier&) {
      return 10;
    } catch (const mp::ValueError&) {
      return 20;
    }
    return 0;
  });
  BOOST_CHECK_EQUAL(std::count(codes.begin(), codes.end(), 20), 1);
  BOOST_CHECK_EQUAL(std::count(codes.begin(), codes.end(), 10), 2);
  BOOST_CHECK(barrier.broken());
  barrier.reset();
  BOOST_CHECK(!barrier.broken());
}

// CPython _TestBarrier.test_default_timeout: a wait() without a timeout uses the barrier's
// default, and a party that never comes breaks it for the one that did.
BOOST_AUTO_TEST_CASE(test_default_timeout) {
  mp::Barrier barrier{2, {}, 100ms};
  BOOST_CHECK_EQUAL(test::in_child([&] { return broke([&] { (void)barrier.wait(); }); }), 0);
  BOOST_CHECK(barrier.broken());
  barrier.reset();
  const auto codes = run_children(2, [&](int) { return broke([&] { (void)barrier.wait(30s); }); });
  BOOST_CHECK(std::all_of(codes.begin(), codes.end(), [](int c) { return c == 1; }));  // both passed
}
