// Lock across processes and threads: exclusion, timeouts, misuse, recovery from a dead holder.
#define BOOST_TEST_MODULE lock
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;
using namespace std::chrono_literals;

namespace {

// A child that holds `lock` from before this returns until `done` is raised.
template <class AnyLock>
mp::Process start_holder(AnyLock& lock, const test::Notice& done) {
  test::Notice held;
  mp::Process holder{[&lock, &held, &done] {
    lock.acquire();
    held.raise();
    done.wait();
    lock.release();
  }};
  holder.start();
  held.wait();
  return holder;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_lock_held_by_another_process_is_not_available) {
  mp::Lock lock;
  test::Notice done;
  mp::Process holder = start_holder(lock, done);
  BOOST_CHECK(!lock.try_acquire());
  const auto start = std::chrono::steady_clock::now();
  BOOST_CHECK(!lock.acquire(150ms));
  BOOST_CHECK(std::chrono::steady_clock::now() - start >= 150ms);  // not earlier than asked
  done.raise();
  BOOST_CHECK(lock.acquire(30s));
  BOOST_CHECK(!lock.recovered());
  lock.release();
  holder.join();
  BOOST_CHECK_EQUAL(*holder.exitcode(), 0);
}

BOOST_AUTO_TEST_CASE(named_lock_excludes_across_processes) {
  const auto name = test::unique_name("lock");
  mp::ScopedUnlink cleanup{name};
  mp::Lock creator{mp::create, name};
  mp::RawValue<long> counter;
  constexpr int increments = 20000;
  std::vector<mp::Process> children;
  for (int i = 0; i < 3; ++i) {
    children.emplace_back([&] {
      mp::Lock lock{mp::open, name};
      for (int n = 0; n < increments; ++n) {
        std::scoped_lock guard(lock);
        const long seen = counter.value();
        std::atomic_signal_fence(std::memory_order_seq_cst);  // keep the read and write apart
        counter.value() = seen + 1;
      }
    });
  }
  for (auto& c : children) c.start();
  for (auto& c : children) {
    BOOST_REQUIRE(c.join(60s));
    BOOST_CHECK_EQUAL(*c.exitcode(), 0);
  }
  BOOST_CHECK_EQUAL(counter.value(), 3L * increments);
}

BOOST_AUTO_TEST_CASE(threads_of_one_process_are_excluded_too) {
  mp::Lock lock;
  long counter = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int n = 0; n < 20000; ++n) {
        std::unique_lock guard(lock);
        ++counter;
      }
    });
  }
  for (auto& t : threads) t.join();
  BOOST_CHECK_EQUAL(counter, 80000);
}

BOOST_AUTO_TEST_CASE(misuse_throws_instead_of_hanging) {
  mp::Lock lock;
  BOOST_CHECK_THROW(lock.release(), mp::NotOwner);
  lock.acquire();
  BOOST_CHECK_THROW(lock.acquire(), mp::ValueError);  // same thread again: an error, not a hang
  std::thread other([&] { BOOST_CHECK_THROW(lock.release(), mp::NotOwner); });
  other.join();
  lock.release();
}

BOOST_AUTO_TEST_CASE(holder_killed_while_a_waiter_sleeps_hands_the_lock_over) {
  mp::Lock lock;
  test::Notice held;
  mp::Process holder{[&] {
    lock.acquire();
    held.raise();
    ::pause();  // holds the lock until killed
  }};
  holder.start();
  held.wait();
  std::thread killer([&] {
    std::this_thread::sleep_for(200ms);
    holder.kill();
  });
  const auto start = std::chrono::steady_clock::now();
  BOOST_CHECK(lock.acquire(20s));  // the same call that was blocked gets the lock
  const auto waited = std::chrono::steady_clock::now() - start;
  killer.join();
  BOOST_CHECK(lock.recovered());
  BOOST_CHECK(waited < 20s);
  lock.release();
  holder.join();
  BOOST_CHECK_EQUAL(*holder.exitcode(), -SIGKILL);
  lock.acquire();
  BOOST_CHECK(!lock.recovered());  // only the acquisition that took over reports it
  lock.release();
}

BOOST_AUTO_TEST_CASE(holder_killed_with_no_waiter_is_recovered_by_the_next_acquirer) {
  const auto name = test::unique_name("dead");
  mp::ScopedUnlink cleanup{name};
  mp::Lock lock{mp::create, name};
  BOOST_CHECK_EQUAL(test::in_child([&] {
    mp::Lock mine{mp::open, name};
    mine.acquire();
    ::raise(SIGKILL);
    return 0;
  }), -SIGKILL);
  BOOST_CHECK(lock.try_acquire());
  BOOST_CHECK(lock.recovered());
  lock.release();
  // The lock stays usable by everyone afterwards.
  BOOST_CHECK_EQUAL(test::in_child([&] {
    if (!lock.acquire(5s) || lock.recovered()) return 1;
    lock.release();
    return 0;
  }), 0);
}

BOOST_AUTO_TEST_CASE(value_lock_recovers_after_its_holder_is_killed) {
  mp::Value<int> v{0};
  BOOST_CHECK_EQUAL(test::in_child([&] {
    v.get_lock().acquire();
    v.value() = 13;
    ::raise(SIGKILL);
    return 0;
  }), -SIGKILL);
  BOOST_CHECK_EQUAL(v.load(), 13);  // load() takes the lock: it must not hang
}

BOOST_AUTO_TEST_CASE(a_blocked_acquirer_sleeps_through_signals_and_uses_no_cpu) {
  mp::Lock lock;
  lock.acquire();
  BOOST_CHECK_EQUAL(test::check_blocked_wait([&](auto timeout) { return lock.acquire(timeout); }), 0);
  lock.release();
}

BOOST_AUTO_TEST_CASE(rlock_reenters_and_is_free_only_after_as_many_releases) {
  mp::RLock rlock;
  rlock.acquire();
  rlock.acquire();
  BOOST_CHECK(rlock.try_acquire());
  rlock.release();
  rlock.release();
  BOOST_CHECK_EQUAL(test::in_child([&] { return rlock.try_acquire() ? 1 : 0; }), 0);  // still held once
  rlock.release();
  BOOST_CHECK_EQUAL(test::in_child([&] {
    if (!rlock.try_acquire()) return 1;
    rlock.release();
    return 0;
  }), 0);
  BOOST_CHECK_THROW(rlock.release(), mp::NotOwner);
}

BOOST_AUTO_TEST_CASE(rlock_release_by_a_non_owner_throws) {
  mp::RLock rlock;
  rlock.acquire();
  std::thread other([&] { BOOST_CHECK_THROW(rlock.release(), mp::NotOwner); });
  other.join();
  BOOST_CHECK_EQUAL(test::in_child([&] {
    try {
      rlock.release();
    } catch (const mp::NotOwner&) {
      return 0;
    }
    return 1;
  }), 0);
  rlock.release();
}

BOOST_AUTO_TEST_CASE(rlock_excludes_threads_and_processes) {
  const auto name = test::unique_name("rlock");
  mp::ScopedUnlink cleanup{name};
  mp::RLock rlock{mp::create, name};
  mp::RawValue<long> counter;
  const auto add = [&](mp::RLock& lock, int times) {
    for (int n = 0; n < times; ++n) {
      std::scoped_lock outer(lock);
      std::scoped_lock inner(lock);  // re-entry
      const long seen = counter.value();
      std::atomic_signal_fence(std::memory_order_seq_cst);
      counter.value() = seen + 1;
    }
  };
  std::vector<mp::Process> children;
  for (int i = 0; i < 2; ++i) {
    children.emplace_back([&] {
      mp::RLock mine{mp::open, name};
      std::thread helper([&] { add(mine, 5000); });
      add(mine, 5000);
      helper.join();
    });
  }
  for (auto& c : children) c.start();
  for (auto& c : children) {
    BOOST_REQUIRE(c.join(60s));
    BOOST_CHECK_EQUAL(*c.exitcode(), 0);
  }
  BOOST_CHECK_EQUAL(counter.value(), 20000);
}

BOOST_AUTO_TEST_CASE(rlock_holder_killed_mid_reentry_is_recovered) {
  mp::RLock rlock;
  BOOST_CHECK_EQUAL(test::in_child([&] {
    rlock.acquire();
    rlock.acquire();
    ::raise(SIGKILL);
    return 0;
  }), -SIGKILL);
  BOOST_CHECK(rlock.acquire(5s));
  BOOST_CHECK(rlock.recovered());
  rlock.acquire();  // a nested acquisition keeps the outermost one's flag
  BOOST_CHECK(rlock.recovered());
  rlock.release();
  rlock.release();
  BOOST_CHECK_EQUAL(test::in_child([&] { return rlock.try_acquire() && !rlock.recovered() ? 0 : 1; }), 0);
}

BOOST_AUTO_TEST_CASE(rlock_timeouts_and_idle_waits) {
  mp::RLock rlock;
  test::Notice done;
  mp::Process holder = start_holder(rlock, done);
  const auto start = std::chrono::steady_clock::now();
  BOOST_CHECK(!rlock.acquire(150ms));
  BOOST_CHECK(std::chrono::steady_clock::now() - start >= 150ms);
  BOOST_CHECK_EQUAL(test::check_blocked_wait([&](auto timeout) { return rlock.acquire(timeout); }), 0);
  done.raise();
  holder.join();
  BOOST_CHECK_THROW(mp::Lock(mp::open, "no-such-rlock-anywhere"), mp::NotFound);
}

// The state a woken waiter leaves when it is killed before taking the lock while another thread
// takes it first: glibc's unlock cleared FUTEX_WAITERS when it woke the dead waiter, so the next
// unlock wakes nobody although another waiter sleeps. Built here by clearing the bit by hand; the
// sleeper must still get the lock (within its re-check period), not sleep forever.
BOOST_AUTO_TEST_CASE(a_wake_lost_to_a_dead_waiter_does_not_strand_the_others) {
  for (const bool recursive : {false, true}) {
    const auto name = test::unique_name("lost-wake");
    mp::ScopedUnlink cleanup{name};
    std::unique_ptr<mp::detail::RobustMutex> lock;
    if (recursive) {
      lock = std::make_unique<mp::RLock>(mp::create, name);
    } else {
      lock = std::make_unique<mp::Lock>(mp::create, name);
    }
    test::RawSegment raw{name};
    const std::atomic_ref<int> word(raw.element<mp::LockState>().mutex.__data.__lock);
    constexpr int futex_waiters = static_cast<int>(0x80000000u);
    lock->acquire();
    mp::Process sleeper{[&] {
      lock->acquire();  // no timeout: only the re-check can end this wait
      lock->release();
    }};
    sleeper.start();
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while ((word.load() & futex_waiters) == 0 && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(1ms);
    }
    BOOST_REQUIRE((word.load() & futex_waiters) != 0);  // the sleeper is asleep in the kernel
    word.fetch_and(~futex_waiters);
    lock->release();  // sees no waiter: no wake-up
    const bool done = sleeper.join(5s);
    if (!done) {
      sleeper.kill();
      sleeper.join();
    }
    BOOST_TEST(done);
    BOOST_TEST((sleeper.exitcode() == 0));
  }
}

// CPython _TestLock.test_lock, and issue 14 bug 10: try_acquire() by the holder is false (it
// threw system_error(EDEADLK)); a second release is refused.
BOOST_AUTO_TEST_CASE(test_lock) {
  mp::Lock lock;
  BOOST_CHECK(!lock.locked());
  lock.acquire();
  BOOST_CHECK(lock.locked());
  BOOST_CHECK(!lock.try_acquire());
  BOOST_CHECK(!lock.try_lock());
  BOOST_CHECK(lock.locked());  // the refused attempts changed nothing
  lock.release();
  BOOST_CHECK(!lock.locked());
  BOOST_CHECK_THROW(lock.release(), mp::NotOwner);
}

// CPython _TestLock.test_rlock: three acquisitions need three releases, a fourth is refused.
BOOST_AUTO_TEST_CASE(test_rlock) {
  mp::RLock rlock;
  rlock.acquire();
  BOOST_CHECK(rlock.try_acquire());
  BOOST_CHECK(rlock.acquire(0ms));
  BOOST_CHECK(rlock.locked());
  rlock.release();
  rlock.release();
  BOOST_CHECK(rlock.locked());
  rlock.release();
  BOOST_CHECK(!rlock.locked());
  BOOST_CHECK_THROW(rlock.release(), mp::NotOwner);
}

// CPython _TestLock.test_lock_locked_2processes and test_rlock_locked_2processes: locked() seen
// from the process that does not hold it, while held and after release.
template <class AnyLock>
void check_locked_seen_by_another_process() {
  AnyLock lock;
  test::Notice done;
  mp::Process holder = start_holder(lock, done);
  BOOST_CHECK(lock.locked());
  BOOST_CHECK_EQUAL(test::in_child([&] { return lock.locked() ? 0 : 1; }), 0);
  done.raise();
  BOOST_REQUIRE(holder.join(30s));
  BOOST_CHECK(!lock.locked());
}
BOOST_AUTO_TEST_CASE(test_lock_locked_2processes) { check_locked_seen_by_another_process<mp::Lock>(); }
BOOST_AUTO_TEST_CASE(test_rlock_locked_2processes) { check_locked_seen_by_another_process<mp::RLock>(); }

BOOST_AUTO_TEST_CASE(a_lock_whose_holder_died_is_locked_until_taken_over) {
  mp::Lock lock;
  BOOST_CHECK_EQUAL(test::in_child([&] {
    lock.acquire();
    ::raise(SIGKILL);
    return 0;
  }), -SIGKILL);
  BOOST_CHECK(lock.locked());
  lock.acquire();
  BOOST_CHECK(lock.recovered());
  lock.release();
  BOOST_CHECK(!lock.locked());
}
