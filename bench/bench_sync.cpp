// Synchronisation primitives against what a user would otherwise pick:
//   uncontended/*   one acquire + release, one thread, nobody else around;
//   pingpong/*      a cross-process hand-off round trip: this process wakes a forked helper, which
//                   wakes it back (two semaphores, two events, or two pipes);
//   wake/*          signal-to-wake-up latency of a helper already asleep in the kernel (it waited
//                   longer than multiproc's spin), timed from signal() to the helper's first
//                   instruction after its wait;
// The helper is pinned to CPU 1 and this process to CPU 0. Compare rows of one run.
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <thread>

#include <benchmark/benchmark.h>
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <boost/interprocess/sync/interprocess_semaphore.hpp>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;
namespace bip = boost::interprocess;

namespace {

// ---- uncontended acquire + release --------------------------------------------------------------

template <class Mutex>
void uncontended(benchmark::State& state, Mutex& mutex) {
  for (auto _ : state) {
    mutex.lock();
    mutex.unlock();
  }
}

void uncontended_multiproc_lock(benchmark::State& state) {
  mp::Lock lock;
  uncontended(state, lock);
}

void uncontended_multiproc_rlock(benchmark::State& state) {
  mp::RLock lock;
  uncontended(state, lock);
}

void uncontended_std_mutex(benchmark::State& state) {
  std::mutex mutex;
  uncontended(state, mutex);
}

void uncontended_boost_interprocess_mutex(benchmark::State& state) {
  auto& mutex = bench::shared_object<bip::interprocess_mutex>();
  uncontended(state, mutex);
  bench::release_shared_object(mutex);
}

// A process-shared pthread mutex; robust or not, as the benchmark's argument says.
void uncontended_pthread_mutex(benchmark::State& state) {
  auto& mutex = bench::shared_object<pthread_mutex_t>();
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  if (state.range(0) != 0) pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&mutex, &attr);
  pthread_mutexattr_destroy(&attr);
  for (auto _ : state) {
    pthread_mutex_lock(&mutex);
    pthread_mutex_unlock(&mutex);
  }
  bench::release_shared_object(mutex);
}

void uncontended_multiproc_semaphore(benchmark::State& state) {
  mp::Semaphore sem{1};
  for (auto _ : state) {
    sem.acquire();
    sem.release();
  }
}

// ---- cross-process round trips -----------------------------------------------------------------

// A channel has two directions; each direction has a `signal()` side and a `wait()` side.
// Round trip: this process signals `there` and waits on `back`; the helper does the opposite.
template <class Channel>
void pingpong(benchmark::State& state) {
  Channel there, back;
  mp::RawValue<int> stop{0};
  mp::Process helper{[&] {
    bench::pin_to_cpu(1);
    for (;;) {
      there.wait();
      if (stop.atomic().load(std::memory_order_acquire) != 0) return;
      back.signal();
    }
  }};
  helper.start();
  bench::pin_to_cpu(0);
  for (auto _ : state) {
    there.signal();
    back.wait();
  }
  stop.atomic().store(1, std::memory_order_release);
  there.signal();
  helper.join();
}

// The helper waits on `there` while this process sleeps long enough for it to be asleep in the
// kernel too; then the time from signal() to the helper's wake-up is the iteration's time.
template <class Channel>
void wake(benchmark::State& state) {
  using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC: one clock for both processes
  Channel there, back;
  mp::RawValue<Clock::rep> woke_at{0};
  mp::RawValue<int> stop{0};
  mp::Process helper{[&] {
    bench::pin_to_cpu(1);
    for (;;) {
      there.wait();
      woke_at.value() = Clock::now().time_since_epoch().count();
      if (stop.atomic().load(std::memory_order_acquire) != 0) return;
      back.signal();
    }
  }};
  helper.start();
  bench::pin_to_cpu(0);
  for (auto _ : state) {
    std::this_thread::sleep_for(std::chrono::microseconds(300));
    const auto signalled_at = Clock::now().time_since_epoch().count();
    there.signal();
    back.wait();  // also orders the helper's write of woke_at before our read
    state.SetIterationTime(static_cast<double>(woke_at.value() - signalled_at) * 1e-9);
  }
  stop.atomic().store(1, std::memory_order_release);
  there.signal();
  helper.join();
}

struct MultiprocSemaphore {
  mp::Semaphore sem{0};
  void signal() { sem.release(); }
  void wait() { sem.acquire(); }
};

struct MultiprocEvent {
  mp::Event event;
  void signal() { event.set(); }
  void wait() {
    event.wait();
    event.clear();
  }
};

struct PosixSemaphore {
  sem_t& sem = bench::shared_object<sem_t>();
  PosixSemaphore() { sem_init(&sem, 1, 0); }
  ~PosixSemaphore() { bench::release_shared_object(sem); }
  void signal() { sem_post(&sem); }
  void wait() {
    while (sem_wait(&sem) != 0) {
    }
  }
};

struct BoostSemaphore {
  bip::interprocess_semaphore& sem = bench::shared_object<bip::interprocess_semaphore>(0u);
  ~BoostSemaphore() { bench::release_shared_object(sem); }
  void signal() { sem.post(); }
  void wait() { sem.wait(); }
};

struct Pipe {
  int fds[2];
  Pipe() {
    if (::pipe(fds) != 0) throw std::runtime_error("pipe");
  }
  ~Pipe() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  void signal() {
    const char byte = 1;
    (void)!::write(fds[1], &byte, 1);
  }
  void wait() {
    char byte;
    (void)!::read(fds[0], &byte, 1);
  }
};

}  // namespace

BENCHMARK(uncontended_multiproc_lock)->Name("uncontended/multiproc_Lock");
BENCHMARK(uncontended_multiproc_rlock)->Name("uncontended/multiproc_RLock");
BENCHMARK(uncontended_pthread_mutex)->Name("uncontended/pthread_mutex")->Arg(0)->ArgName("robust");
BENCHMARK(uncontended_pthread_mutex)->Name("uncontended/pthread_mutex")->Arg(1)->ArgName("robust");
BENCHMARK(uncontended_boost_interprocess_mutex)->Name("uncontended/boost_interprocess_mutex");
BENCHMARK(uncontended_std_mutex)->Name("uncontended/std_mutex");
BENCHMARK(uncontended_multiproc_semaphore)->Name("uncontended/multiproc_Semaphore");

BENCHMARK_TEMPLATE(pingpong, MultiprocSemaphore)->Name("pingpong/multiproc_Semaphore")->UseRealTime();
BENCHMARK_TEMPLATE(pingpong, PosixSemaphore)->Name("pingpong/posix_sem_t")->UseRealTime();
BENCHMARK_TEMPLATE(pingpong, BoostSemaphore)->Name("pingpong/boost_interprocess_semaphore")->UseRealTime();
BENCHMARK_TEMPLATE(pingpong, MultiprocEvent)->Name("pingpong/multiproc_Event")->UseRealTime();
BENCHMARK_TEMPLATE(pingpong, Pipe)->Name("pingpong/pipe")->UseRealTime();

BENCHMARK_TEMPLATE(wake, MultiprocEvent)->Name("wake/multiproc_Event")->UseManualTime();
BENCHMARK_TEMPLATE(wake, MultiprocSemaphore)->Name("wake/multiproc_Semaphore")->UseManualTime();
BENCHMARK_TEMPLATE(wake, PosixSemaphore)->Name("wake/posix_sem_t")->UseManualTime();
BENCHMARK_TEMPLATE(wake, Pipe)->Name("wake/pipe")->UseManualTime();

BENCHMARK_MAIN();
