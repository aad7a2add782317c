// The primitives used by threads of one process, as a program's threads may use them. No fork:
// this suite also runs under ThreadSanitizer (tools/run-tests.sh), which checks that every
// shared access is ordered by the primitives' atomics, locks and futexes.
#define BOOST_TEST_MODULE threads
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;
using namespace std::chrono_literals;

namespace {

constexpr int threads = 4;

template <class Body>
void run_threads(int count, Body body) {
  std::vector<std::thread> pool;
  for (int t = 0; t < count; ++t) {
    pool.emplace_back(body, t);
  }
  for (auto& thread : pool) {
    thread.join();
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(lock_and_rlock_guard_plain_data) {
  mp::Lock lock;
  mp::RLock rlock;
  long plain = 0;        // guarded by lock
  long plain_again = 0;  // guarded by rlock, taken twice
  run_threads(threads, [&](int) {
    for (int i = 0; i < 20000; ++i) {
      {
        std::scoped_lock guard(lock);
        ++plain;
      }
      std::scoped_lock outer(rlock);
      std::scoped_lock inner(rlock);
      ++plain_again;
    }
  });
  BOOST_TEST(plain == threads * 20000L);
  BOOST_TEST(plain_again == threads * 20000L);
}

BOOST_AUTO_TEST_CASE(value_and_array_locked_updates) {
  mp::Value<long> value(0);
  mp::Array<int> array(8);
  run_threads(threads, [&](int) {
    for (int i = 0; i < 10000; ++i) {
      std::scoped_lock guard(value.get_lock());
      value.value() += 1;
    }
    for (int i = 0; i < 1000; ++i) {
      std::scoped_lock guard(array.get_lock());
      for (auto& cell : array) {
        ++cell;
      }
    }
  });
  BOOST_TEST(value.load() == threads * 10000L);
  for (std::size_t i = 0; i < array.size(); ++i) {
    BOOST_TEST(array.load(i) == threads * 1000);
  }
}

BOOST_AUTO_TEST_CASE(semaphore_hands_over_data) {
  mp::Semaphore items(0);
  mp::Semaphore room(4);
  std::vector<int> buffer(4);  // guarded by the semaphores' hand-over (one producer, one consumer)
  long sum = 0;
  std::thread producer([&] {
    for (int i = 1; i <= 10000; ++i) {
      room.acquire();
      buffer[static_cast<std::size_t>(i % 4)] = i;
      items.release();
    }
  });
  for (int i = 1; i <= 10000; ++i) {
    items.acquire();
    sum += buffer[static_cast<std::size_t>(i % 4)];
    room.release();
  }
  producer.join();
  BOOST_TEST(sum == 10000L * 10001 / 2);
}

BOOST_AUTO_TEST_CASE(event_publishes_what_was_written_before_set) {
  for (int round = 0; round < 200; ++round) {
    mp::Event ready;
    std::string message;  // written before set(), read after wait()
    std::thread writer([&] {
      message = "round " + std::to_string(round);
      ready.set();
    });
    BOOST_REQUIRE(ready.wait(5s));
    BOOST_TEST(message == "round " + std::to_string(round));
    writer.join();
  }
}

BOOST_AUTO_TEST_CASE(condition_waits_for_a_predicate) {
  mp::Condition condition;
  int stage = 0;  // guarded by the condition's lock
  run_threads(threads, [&](int me) {
    std::unique_lock guard(condition);
    BOOST_REQUIRE(condition.wait_for([&] { return stage == me; }, 10s));
    ++stage;
    condition.notify_all();
  });
  BOOST_TEST(stage == threads);
}

BOOST_AUTO_TEST_CASE(barrier_separates_phases) {
  mp::Barrier barrier(threads);
  std::vector<int> written(threads, 0);  // each written by its thread before the barrier
  std::atomic<int> wrong{0};
  run_threads(threads, [&](int me) {
    written[static_cast<std::size_t>(me)] = me + 1;
    (void)barrier.wait(10s);
    for (int other = 0; other < threads; ++other) {
      if (written[static_cast<std::size_t>(other)] != other + 1) {
        wrong.fetch_add(1);
      }
    }
  });
  BOOST_TEST(wrong.load() == 0);
}

template <class Message, class Make>
void exactly_once_through(mp::Queue<Message>& queue, Make make, long (*number_of)(const Message&)) {
  constexpr long per_producer = 20000;
  std::vector<std::atomic<int>> seen(2 * per_producer);
  std::atomic<long> taken{0};
  run_threads(4, [&](int me) {
    if (me < 2) {
      for (long i = 0; i < per_producer; ++i) {
        queue.put(make(me * per_producer + i));
      }
      return;
    }
    while (taken.fetch_add(1) < 2 * per_producer) {
      seen[static_cast<std::size_t>(number_of(queue.get(10s)))].fetch_add(1);
    }
  });
  long once = 0;
  for (auto& count : seen) {
    once += count.load() == 1 ? 1 : 0;
  }
  BOOST_TEST(once == 2 * per_producer);
}

long number(const long& n) { return n; }
long number_in(const std::string& text) { return std::stol(text); }

BOOST_AUTO_TEST_CASE(queues_deliver_exactly_once_between_threads) {
  mp::Queue<long> numbers(64);
  exactly_once_through<long>(numbers, [](long n) { return n; }, number);
  mp::Queue<std::string> texts(64);
  exactly_once_through<std::string>(texts, [](long n) { return std::to_string(n); }, number_in);
}

BOOST_AUTO_TEST_CASE(rings_between_threads) {
  mp::SpscRing<long> spsc(64);
  mp::MpmcRing<long> mpmc(64);
  constexpr long count = 100000;
  long spsc_sum = 0;
  std::atomic<long> mpmc_sum{0};
  std::thread producer([&] {
    for (long i = 1; i <= count; ++i) {
      while (!spsc.try_push(i)) std::this_thread::yield();
      while (!mpmc.try_push(i)) std::this_thread::yield();
    }
  });
  std::thread mpmc_consumer([&] {
    for (long got = 0; got < count;) {
      if (const auto v = mpmc.try_pop()) {
        mpmc_sum.fetch_add(*v);
        ++got;
      } else {
        std::this_thread::yield();
      }
    }
  });
  for (long got = 0; got < count;) {
    if (const auto v = spsc.try_pop()) {
      spsc_sum += *v;
      ++got;
    } else {
      std::this_thread::yield();
    }
  }
  producer.join();
  mpmc_consumer.join();
  BOOST_TEST(spsc_sum == count * (count + 1) / 2);
  BOOST_TEST(mpmc_sum.load() == count * (count + 1) / 2);
}

BOOST_AUTO_TEST_CASE(shared_dict_and_list_between_threads) {
  mp::SharedDict<std::string, long> dict(1 << 20);
  mp::SharedList<long> list(1 << 20);
  run_threads(threads, [&](int me) {
    for (long i = 0; i < 2000; ++i) {
      dict.update("hits", [](long n) { return n + 1; });
      dict.set(std::to_string(me * 10000 + i), i);
      list.append(i);
    }
  });
  BOOST_TEST(dict.at("hits") == threads * 2000L);
  BOOST_TEST(dict.size() == static_cast<std::size_t>(threads * 2000 + 1));
  BOOST_TEST(list.size() == static_cast<std::size_t>(threads * 2000));
}
