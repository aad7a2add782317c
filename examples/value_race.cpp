// value_race: four processes add 1 to one shared counter, first without a lock, then with one.
//
//   ./value_race [processes] [increments]      (defaults: 4 and 100000)
//
// The twin of the classic Python lesson:
//     def add(counter):                          def add(counter):
//         for _ in range(100000):                    for _ in range(100000):
//             counter.value += 1                         with counter.get_lock():
//                                                            counter.value += 1
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;

// `counter += 1` is three steps: read the value, add one, write it back. Another process can
// read the same old value between our read and our write; then one of the two additions is lost.
//
// Why `volatile`: through a plain reference the C++ optimiser may turn 100,000 `+= 1` into one
// `+= 100000`, because it may assume no one else touches the memory meanwhile. `volatile` makes it
// do every read and every write, as Python does. It does NOT make the three steps indivisible.
void add_one(volatile long& counter) { counter = counter + 1; }

// Starts `processes` children that each run `work`, all at the same moment, and waits for them.
// A child counts to 100,000 faster than the next child can be forked, so without the gate they
// would run one after another and never meet. The gate is a Lock the parent holds until every
// child exists; each child passes through it (acquire, release) before it starts counting.
template <class Work>
void run_processes(int processes, Work work) {
  mp::Lock gate;
  gate.acquire();
  std::vector<mp::Process> children;
  for (int i = 0; i < processes; ++i) {
    children.emplace_back([&] {
      { std::scoped_lock pass(gate); }
      work();
    });
  }
  for (auto& child : children) child.start();
  gate.release();
  for (auto& child : children) child.join();
}

void report(const char* title, long expected, long actual) {
  const long lost = expected - actual;
  std::printf("%-28s expected %8ld, got %8ld", title, expected, actual);
  if (lost == 0) {
    std::printf("  -> exact\n");
  } else {
    std::printf("  -> %ld updates lost (%.1f%%)\n", lost, 100.0 * static_cast<double>(lost) / static_cast<double>(expected));
  }
}

int main(int argc, char** argv) {
  const int processes = argc > 1 ? std::atoi(argv[1]) : 4;
  const long increments = argc > 2 ? std::atol(argv[2]) : 100000;
  const long expected = processes * increments;
  std::printf("%d processes each add 1 to a shared counter %ld times.\n\n", processes, increments);

  // 1. No lock: RawValue is shared memory and nothing else.
  mp::RawValue<long> raw{0};
  run_processes(processes, [&] {
    for (long i = 0; i < increments; ++i) add_one(raw.value());
  });
  report("RawValue, no lock:", expected, raw.value());

  // 2. The fix: only one process at a time may read-add-write.
  mp::Value<long> locked{0};
  run_processes(processes, [&] {
    for (long i = 0; i < increments; ++i) {
      std::scoped_lock guard(locked.get_lock());
      add_one(locked.value());
    }
  });
  report("Value with get_lock():", expected, locked.load());

  std::printf("\nWithout the lock, processes overwrite each other's updates; with it, none is lost.\n");
  return locked.load() == expected ? EXIT_SUCCESS : EXIT_FAILURE;
}
