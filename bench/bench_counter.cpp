// A counter incremented by two processes at once, under each way a user might guard it:
// multiproc::Lock (via Value::get_lock), Boost.Interprocess interprocess_mutex, a robust and a
// plain process-shared pthread mutex, and a lock-free std::atomic fetch_add.
//
// The measured loop runs in this process, pinned to CPU 0, while a forked helper pinned to CPU 1
// hammers the same counter. Time per iteration is the main process's cost of one increment under
// contention; "both/s" is the combined rate of the two processes. Every run checks that no
// increment was lost. Compare the rows of one run: ratios, not absolute times.
#include <pthread.h>

#include <atomic>
#include <mutex>

#include <benchmark/benchmark.h>
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <boost/interprocess/sync/scoped_lock.hpp>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;
namespace bip = boost::interprocess;

namespace {

using bench::pin_to_cpu;
using bench::release_shared_object;
using bench::shared_object;

struct MultiprocLock {
  mp::Value<long> counter{0};
  void increment() {
    std::scoped_lock guard(counter.get_lock());
    ++counter.value();
  }
  long total() const { return counter.load(); }
};

struct BoostInterprocessMutex {
  struct Shared {
    bip::interprocess_mutex mutex;
    long counter = 0;
  };
  Shared& shared = shared_object<Shared>();
  ~BoostInterprocessMutex() { release_shared_object(shared); }
  void increment() {
    bip::scoped_lock<bip::interprocess_mutex> guard(shared.mutex);
    ++shared.counter;
  }
  long total() const { return shared.counter; }
};

template <bool Robust>
struct PthreadMutex {
  struct Shared {
    pthread_mutex_t mutex;
    long counter = 0;
  };
  Shared& shared = shared_object<Shared>();
  PthreadMutex() {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (Robust) pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&shared.mutex, &attr);
    pthread_mutexattr_destroy(&attr);
  }
  ~PthreadMutex() { release_shared_object(shared); }
  void increment() {
    pthread_mutex_lock(&shared.mutex);
    ++shared.counter;
    pthread_mutex_unlock(&shared.mutex);
  }
  long total() const { return shared.counter; }
};

struct AtomicFetchAdd {
  mp::RawValue<long> counter{0};
  void increment() { counter.atomic().fetch_add(1, std::memory_order_relaxed); }
  long total() const { return counter.load(); }
};

template <class Guarded>
void counter_two_processes(benchmark::State& state) {
  Guarded guarded;
  mp::RawValue<int> stop{0};
  mp::RawValue<long> helper_increments{0};
  mp::Process helper{[&] {
    pin_to_cpu(1);
    long n = 0;
    // Acquire pairs with the release below: the helper stops soon after the main loop ends.
    while (stop.atomic().load(std::memory_order_acquire) == 0) {
      guarded.increment();
      ++n;
    }
    helper_increments.value() = n;
  }};
  helper.start();
  pin_to_cpu(0);
  for (auto _ : state) {
    guarded.increment();
  }
  stop.atomic().store(1, std::memory_order_release);
  helper.join();
  const long total = guarded.total();
  if (total != static_cast<long>(state.iterations()) + helper_increments.value()) {
    state.SkipWithError("increments were lost");
  }
  state.counters["both/s"] = benchmark::Counter(static_cast<double>(total), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK_TEMPLATE(counter_two_processes, MultiprocLock)->Name("counter/multiproc_Lock")->UseRealTime();
BENCHMARK_TEMPLATE(counter_two_processes, BoostInterprocessMutex)->Name("counter/boost_interprocess_mutex")->UseRealTime();
BENCHMARK_TEMPLATE(counter_two_processes, PthreadMutex<true>)->Name("counter/pthread_robust_mutex")->UseRealTime();
BENCHMARK_TEMPLATE(counter_two_processes, PthreadMutex<false>)->Name("counter/pthread_mutex")->UseRealTime();
BENCHMARK_TEMPLATE(counter_two_processes, AtomicFetchAdd)->Name("counter/atomic_fetch_add")->UseRealTime();

BENCHMARK_MAIN();
