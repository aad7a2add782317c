// Condition across processes and threads, including a waiter that dies.
#define BOOST_TEST_MODULE condition
#include <signal.h>

#include <mutex>
#include <thread>
#include <vector>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;
using namespace std::chrono_literals;

namespace {

// Starts `n` children that each wait on `cv` until notified (at most 30 s) and then count
// themselves in `woken`. Returns once all of them are inside wait(): each announces itself while
// holding the lock, so when the parent can take the lock after n announcements, all have released
// it inside wait().
std::vector<mp::Process> start_waiters(int n, mp::Condition& cv, mp::RawValue<int>& woken) {
  mp::RawValue<int> announced;
  std::vector<mp::Process> children;
  for (int i = 0; i < n; ++i) {
    children.emplace_back([&cv, &woken, &announced] {
      std::unique_lock held(cv);
      announced.atomic().fetch_add(1);
      if (!cv.wait(30s)) return 1;
      woken.atomic().fetch_add(1);
      return 0;
    });
  }
  for (auto& c : children) c.start();
  while (true) {
    std::scoped_lock held(cv);
    if (announced.atomic().load() == n) break;
  }
  return children;
}

// Notifies one waiter (or all) under the lock, lets the woken ones run, and returns how many
// waiters have woken so far.
int notify_and_count(mp::Condition& cv, mp::RawValue<int>& woken, bool all) {
  {
    std::scoped_lock held(cv);
    all ? cv.notify_all() : cv.notify();
  }
  std::this_thread::sleep_for(300ms);
  return woken.atomic().load();
}

void join_all(std::vector<mp::Process>& children, int expected_exitcode = 0) {
  for (auto& c : children) {
    BOOST_REQUIRE(c.join(30s));
    BOOST_CHECK_EQUAL(*c.exitcode(), expected_exitcode);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(wait_without_the_lock_is_refused) {
  mp::Condition cv;
  BOOST_CHECK_THROW((void)cv.wait(10ms), mp::NotOwner);
  BOOST_CHECK_NO_THROW(cv.notify());  // nobody waits: nothing happens
}

BOOST_AUTO_TEST_CASE(timed_wait_returns_false_with_the_lock_held_again) {
  mp::Condition cv;
  std::unique_lock held(cv);
  const auto start = std::chrono::steady_clock::now();
  BOOST_CHECK(!cv.wait(150ms));
  BOOST_CHECK(std::chrono::steady_clock::now() - start >= 150ms);
  BOOST_CHECK_EQUAL(test::in_child([&] { return cv.try_lock() ? 1 : 0; }), 0);  // we hold it again
  BOOST_CHECK(!cv.wait_for([] { return false; }, 50ms));
  BOOST_CHECK(cv.wait_for([] { return true; }, 50ms));
}

BOOST_AUTO_TEST_CASE(notify_one_wakes_one_and_notify_all_the_rest) {
  mp::Condition cv;
  mp::RawValue<int> woken;
  auto children = start_waiters(3, cv, woken);
  std::this_thread::sleep_for(300ms);  // let all three reach their futex sleep
  BOOST_CHECK_EQUAL(notify_and_count(cv, woken, false), 1);
  BOOST_CHECK_EQUAL(notify_and_count(cv, woken, true), 3);
  join_all(children);
  BOOST_CHECK_EQUAL(woken.load(), 3);
}

BOOST_AUTO_TEST_CASE(a_dead_waiter_does_not_swallow_later_notifications) {
  mp::Condition cv;
  mp::RawValue<int> woken;
  auto doomed = start_waiters(1, cv, woken);
  doomed[0].kill();  // dies asleep in wait()
  doomed[0].join();
  auto survivors = start_waiters(2, cv, woken);
  std::this_thread::sleep_for(200ms);
  BOOST_CHECK_EQUAL(notify_and_count(cv, woken, false), 1);  // the notification reached a live waiter
  BOOST_CHECK_EQUAL(notify_and_count(cv, woken, true), 2);
  join_all(survivors);
  BOOST_CHECK_EQUAL(woken.load(), 2);
}

BOOST_AUTO_TEST_CASE(a_waiter_killed_holding_the_lock_leaves_it_recoverable) {
  mp::Condition cv;
  BOOST_CHECK_EQUAL(test::in_child([&] {
    cv.acquire();
    ::raise(SIGKILL);
    return 0;
  }), -SIGKILL);
  std::unique_lock held(cv);
  BOOST_CHECK(cv.get_lock().recovered());
}

BOOST_AUTO_TEST_CASE(producer_consumer_across_processes_with_a_borrowed_lock) {
  mp::Lock lock;
  mp::Condition cv{lock};
  BOOST_CHECK_EQUAL(&cv.get_lock(), &lock);
  mp::RawArray<long> queue(1000);
  mp::RawValue<int> produced, consumed;
  mp::RawValue<long> sum;
  std::vector<mp::Process> consumers;
  for (int i = 0; i < 2; ++i) {
    consumers.emplace_back([&] {
      for (;;) {
        std::unique_lock held(cv);
        if (!cv.wait_for([&] { return consumed.value() < produced.value() || consumed.value() == 1000; }, 30s)) {
          return 1;
        }
        if (consumed.value() == 1000) return 0;
        sum.value() += queue[static_cast<std::size_t>(consumed.value()++)];
        cv.notify_all();  // a consumer may have finished the work the other waits for
      }
    });
  }
  for (auto& c : consumers) c.start();
  for (int i = 0; i < 1000; ++i) {
    std::scoped_lock held(cv);
    queue[static_cast<std::size_t>(produced.value()++)] = i;
    cv.notify();
  }
  join_all(consumers);
  BOOST_CHECK_EQUAL(sum.value(), 999L * 1000 / 2);
}

BOOST_AUTO_TEST_CASE(named_condition_with_its_own_lock) {
  const auto name = test::unique_name("cv");
  mp::ScopedUnlink cleanup{name};
  mp::Condition cv{mp::create, name};
  mp::Lock other;
  BOOST_CHECK_THROW(mp::Condition(mp::open, name, other), mp::LayoutMismatch);  // it owns its lock
  mp::RawValue<int> ready;
  std::thread waiter([&] {
    std::unique_lock held(cv);
    BOOST_CHECK(cv.wait_for([&] { return ready.value() == 1; }, 30s));
  });
  BOOST_CHECK_EQUAL(test::in_child([&] {
    mp::Condition mine{mp::open, name};
    std::scoped_lock held(mine);
    ready.value() = 1;
    mine.notify_all();
    return 0;
  }), 0);
  waiter.join();
}

BOOST_AUTO_TEST_CASE(a_waiter_sleeps_through_signals_and_uses_no_cpu) {
  mp::Condition cv;
  BOOST_CHECK_EQUAL(test::check_blocked_wait([&](auto timeout) {
    std::unique_lock held(cv);
    return cv.wait(timeout);
  }), 0);
}
