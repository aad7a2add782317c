// Lock across processes and threads: exclusion, timeouts, misuse, recovery from a dead holder.
#define BOOST_TEST_MODULE lock
#include <signal.h>
#include <sys/resource.h>
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

// A one-shot signal from a child to the parent: the child writes a byte, the parent waits for it.
struct Signal {
  Signal() { BOOST_REQUIRE_EQUAL(::pipe(fds), 0); }
  ~Signal() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  void raise() const { (void)!::write(fds[1], "x", 1); }
  void wait() const {
    char byte = 0;
    BOOST_REQUIRE_EQUAL(::read(fds[0], &byte, 1), 1);
  }
  int fds[2];
};

std::chrono::nanoseconds cpu_time_of_this_process() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return std::chrono::seconds(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         std::chrono::microseconds(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_lock_held_by_another_process_is_not_available) {
  mp::Lock lock;
  Signal held, done;
  mp::Process holder{[&] {
    lock.acquire();
    held.raise();
    done.wait();
    lock.release();
  }};
  holder.start();
  held.wait();
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
  BOOST_CHECK_THROW(lock.acquire(), std::system_error);  // same thread again: EDEADLK, not a hang
  std::thread other([&] { BOOST_CHECK_THROW(lock.release(), mp::NotOwner); });
  other.join();
  lock.release();
}

BOOST_AUTO_TEST_CASE(holder_killed_while_a_waiter_sleeps_hands_the_lock_over) {
  mp::Lock lock;
  Signal held;
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

BOOST_AUTO_TEST_CASE(a_blocked_acquirer_uses_no_cpu) {
  mp::Lock lock;
  lock.acquire();
  mp::Process waiter{[&] {
    const auto before = cpu_time_of_this_process();
    if (lock.acquire(1s)) return 2;  // the parent holds it throughout
    const auto used = cpu_time_of_this_process() - before;
    return used < 50ms ? 0 : 1;  // well under 5% of the second spent waiting
  }};
  waiter.start();
  BOOST_REQUIRE(waiter.join(30s));
  lock.release();
  BOOST_CHECK_EQUAL(*waiter.exitcode(), 0);
}
