// Event across processes and threads.
#define BOOST_TEST_MODULE event
#include <thread>
#include <vector>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(set_clear_is_set) {
  mp::Event e;
  BOOST_CHECK(!e.is_set());
  e.set();
  BOOST_CHECK(e.is_set());
  BOOST_CHECK(e.wait(0ms));
  e.wait();  // returns at once
  e.set();
  e.clear();
  BOOST_CHECK(!e.is_set());
  const auto start = std::chrono::steady_clock::now();
  BOOST_CHECK(!e.wait(150ms));
  BOOST_CHECK(std::chrono::steady_clock::now() - start >= 150ms);
}

BOOST_AUTO_TEST_CASE(set_wakes_every_waiting_process) {
  mp::Event go;
  mp::RawValue<int> woken;
  std::vector<mp::Process> children;
  for (int i = 0; i < 3; ++i) {
    children.emplace_back([&] {
      if (!go.wait(30s)) return 1;
      woken.atomic().fetch_add(1);
      return 0;
    });
  }
  for (auto& c : children) c.start();
  std::this_thread::sleep_for(100ms);
  BOOST_CHECK_EQUAL(woken.load(), 0);
  go.set();
  for (auto& c : children) {
    BOOST_REQUIRE(c.join(30s));
    BOOST_CHECK_EQUAL(*c.exitcode(), 0);
  }
  BOOST_CHECK_EQUAL(woken.load(), 3);
}

BOOST_AUTO_TEST_CASE(named_event_set_by_a_child_wakes_a_thread) {
  const auto name = test::unique_name("event");
  mp::ScopedUnlink cleanup{name};
  mp::Event done{mp::create, name};
  bool seen = false;
  std::thread waiter([&] { seen = done.wait(30s); });
  BOOST_CHECK_EQUAL(test::in_child([&] {
    std::this_thread::sleep_for(50ms);
    mp::Event(mp::open, name).set();
    return 0;
  }), 0);
  waiter.join();
  BOOST_CHECK(seen);
  BOOST_CHECK_THROW(mp::Lock(mp::open, name), mp::LayoutMismatch);
}

BOOST_AUTO_TEST_CASE(a_waiter_sleeps_through_signals_and_uses_no_cpu) {
  mp::Event never;
  BOOST_CHECK_EQUAL(test::check_blocked_wait([&](auto timeout) { return never.wait(timeout); }), 0);
}
