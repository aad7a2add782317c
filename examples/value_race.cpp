// value_race: four processes add 1 to one shared counter, first without a lock, then with one.
//
//   ./value_race [processes] [increments]      (defaults: 4 and 100000)
//
// The twin of the classic Python lesson:
//     def add(counter):                          def add(counter):
//         for _ in range(100000):                    for _ in range(100000):
//             counter.value += 1                         with counter.get_lock():
//                                                            counter.value += 1
#include <sched.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;

// `counter += 1` is three steps: read the value, add one, write it back. If another process runs
// between our read and our write, it adds to the old value too, and one of the two additions is
// lost.
//
// The operating system may pause a process between any two instructions, but a pause between
// these two is rare: on one CPU, a process usually finishes all its additions before its turn
// ends, and the loss would show on some runs only. So every 1000th time we give up the CPU right
// there, as a busy machine would, and the race shows on every run, on one CPU or many.
//
// Why `volatile`: through a plain reference the C++ optimiser may turn 100,000 `+= 1` into one
// `+= 100000`, because it may assume no one else touches the memory meanwhile. `volatile` makes it
// do every read and every write, as Python does. It does NOT make the steps indivisible.
void add_one(volatile long& counter, long i) {
  const long seen = counter;  // 1. read
  if (i % 1000 == 0) {
    sched_yield();            //    (let another process run here, between the read and the write)
  }
  counter = seen + 1;         // 2. add one, 3. write back
}

// Starts `processes` children that each run `work`, all at the same moment, and waits for them.
// A child counts to 100,000 faster than the next one can be forked, so they wait for a start
// signal (an Event) that the parent gives once every child exists.
template <class Work>
void run_processes(int processes, Work work) {
  mp::Event start;
  std::vector<mp::Process> children;
  for (int i = 0; i < processes; ++i) {
    children.emplace_back([&] {
      start.wait();
      work();
    });
  }
  for (auto& child : children) child.start();
  start.set();
  for (auto& child : children) child.join();
}

// Prints the outcome; returns how many updates were lost.
long report(const char* title, long expected, long actual) {
  const long lost = expected - actual;
  std::printf("%-28s expected %8ld, got %8ld", title, expected, actual);
  if (lost == 0) {
    std::printf("  -> exact\n");
  } else {
    std::printf("  -> %ld updates lost (%.1f%%)\n", lost, 100.0 * static_cast<double>(lost) / static_cast<double>(expected));
  }
  return lost;
}

int main(int argc, char** argv) {
  const int processes = argc > 1 ? std::atoi(argv[1]) : 4;
  const long increments = argc > 2 ? std::atol(argv[2]) : 100000;
  const long expected = processes * increments;
  std::printf("%d processes each add 1 to a shared counter %ld times.\n\n", processes, increments);

  // 1. No lock: RawValue is shared memory and nothing else.
  mp::RawValue<long> raw{0};
  run_processes(processes, [&] {
    for (long i = 0; i < increments; ++i) add_one(raw.value(), i);
  });
  const long lost_without_lock = report("RawValue, no lock:", expected, raw.value());

  // 2. The fix: only one process at a time may read, add and write (even when it pauses inside).
  mp::Value<long> locked{0};
  run_processes(processes, [&] {
    for (long i = 0; i < increments; ++i) {
      std::scoped_lock guard(locked.get_lock());
      add_one(locked.value(), i);
    }
  });
  const long lost_with_lock = report("Value with get_lock():", expected, locked.load());

  std::printf("\nWithout the lock, processes overwrite each other's updates; with it, none is lost.\n");
  // The demo's own check (the test suite runs it 20 times): it must show both halves of its point.
  const bool shown = (processes < 2 || lost_without_lock > 0) && lost_with_lock == 0;
  return shown ? EXIT_SUCCESS : EXIT_FAILURE;
}
