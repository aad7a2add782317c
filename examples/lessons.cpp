// multiproc-lessons: the classic lessons of Python's multiprocessing, in C++, one command each.
//
//   ./multiproc-lessons                     list the lessons
//   ./multiproc-lessons lost-updates        run one (add --slow-motion to watch the race)
//   ./multiproc-lessons all                 run every lesson of this program
//
// Each lesson says what it will show, runs, and says what it showed. It exits non-zero if what it
// claims did not hold (the test suite runs them all).
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;
using namespace std::chrono_literals;

namespace {

bool slow_motion = false;  // --slow-motion: widen the window between read and write

// Starts one process per index, all at once, and waits for all of them.
template <class Work>
void run_processes(int count, Work work) {
  std::vector<mp::Process> team;
  for (int i = 0; i < count; ++i) team.emplace_back([&work, i] { work(i); });
  for (auto& p : team) p.start();
  for (auto& p : team) p.join();
}

template <class Run>
double milliseconds(Run run) {
  const auto start = std::chrono::steady_clock::now();
  run();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// ---- 1 -------------------------------------------------------------------------------------------

int global_counter = 0;

bool global_not_shared() {
  run_processes(4, [](int) { global_counter += 10; });
  std::printf("4 processes each added 10 to a global int. The parent sees: %d\n", global_counter);
  mp::Value<int> shared{0};
  run_processes(4, [&](int) {
    std::scoped_lock guard(shared.get_lock());
    shared.value() += 10;
  });
  std::printf("The same with a multiproc::Value<int>.  The parent sees: %d\n", shared.load());
  return global_counter == 0 && shared.load() == 40;
}

// ---- 2 -------------------------------------------------------------------------------------------

// One step of the race, recorded for the slow-motion replay.
struct Step {
  int worker;
  int value;
  bool is_write;
};

bool lost_updates() {
  constexpr int workers = 4;
  const int increments = slow_motion ? 5 : 100000;
  mp::RawValue<int> counter{0};
  mp::RawArray<Step> steps(slow_motion ? 2 * workers * increments : 0);
  mp::RawValue<int> next_step{0};
  mp::Lock gate;  // all workers start together (see examples/value_race.cpp)
  gate.acquire();
  std::vector<mp::Process> team;
  for (int w = 0; w < workers; ++w) {
    team.emplace_back([&, w] {
      { std::scoped_lock pass(gate); }
      volatile int& shared = counter.value();  // every read and write really happens
      for (int i = 0; i < increments; ++i) {
        const int seen = shared;  // 1. read
        if (slow_motion) {
          steps[static_cast<std::size_t>(next_step.atomic().fetch_add(1))] = {w, seen, false};
          std::this_thread::sleep_for(1ms);  // the window, made wide: others run here even on one core
        }
        shared = seen + 1;  // 2. write (read + 1)
        if (slow_motion) {
          steps[static_cast<std::size_t>(next_step.atomic().fetch_add(1))] = {w, seen + 1, true};
        }
      }
    });
  }
  for (auto& p : team) p.start();
  gate.release();
  for (auto& p : team) p.join();

  if (slow_motion) {
    std::printf("What happened, step by step:\n");
    int last_written = 0;
    int last_writer = -1;
    for (int s = 0; s < next_step.load(); ++s) {
      const Step& step = steps[static_cast<std::size_t>(s)];
      if (!step.is_write) {
        std::printf("  worker %d reads  %d\n", step.worker, step.value);
        continue;
      }
      if (step.value <= last_written) {
        std::printf("  worker %d writes %d   <- overwrites worker %d's %d: one update LOST\n", step.worker, step.value,
                    last_writer, last_written);
      } else {
        std::printf("  worker %d writes %d\n", step.worker, step.value);
      }
      last_written = step.value;
      last_writer = step.worker;
    }
  }
  const int expected = workers * increments;
  std::printf("RawValue without a lock: expected %d, got %d (%d lost)\n", expected, counter.value(),
              expected - counter.value());

  mp::Value<int> locked{0};
  run_processes(workers, [&](int) {
    for (int i = 0; i < increments; ++i) {
      std::scoped_lock guard(locked.get_lock());
      locked.value() += 1;
    }
  });
  std::printf("Value under get_lock():  expected %d, got %d\n", expected, locked.load());
  return counter.value() <= expected && locked.load() == expected;
}

// ---- 3 -------------------------------------------------------------------------------------------

bool three_fixes() {
  constexpr int workers = 4;
  constexpr long increments = 200000;
  constexpr long expected = workers * increments;
  mp::Value<long> with_lock{0};
  mp::RawValue<long> with_atomic{0};
  mp::RawArray<long> partial(workers);

  const double lock_ms = milliseconds([&] {
    run_processes(workers, [&](int) {
      for (long i = 0; i < increments; ++i) {
        std::scoped_lock guard(with_lock.get_lock());
        with_lock.value() += 1;
      }
    });
  });
  const double atomic_ms = milliseconds([&] {
    run_processes(workers, [&](int) {
      for (long i = 0; i < increments; ++i) with_atomic.atomic().fetch_add(1, std::memory_order_relaxed);
    });
  });
  long summed = 0;
  const double partial_ms = milliseconds([&] {
    run_processes(workers, [&](int w) {
      long mine = 0;  // private to this process: no sharing, no race
      for (long i = 0; i < increments; ++i) mine += 1;
      partial[static_cast<std::size_t>(w)] = mine;  // each writes only its own slot
    });
    for (long p : partial) summed += p;
  });
  std::printf("%-34s %10s %10s\n", "fix", "result", "ms");
  std::printf("%-34s %10ld %10.1f\n", "1. lock around each += 1", with_lock.load(), lock_ms);
  std::printf("%-34s %10ld %10.1f\n", "2. atomic fetch_add", with_atomic.load(), atomic_ms);
  std::printf("%-34s %10ld %10.1f\n", "3. private sums, added at the end", summed, partial_ms);
  return with_lock.load() == expected && with_atomic.load() == expected && summed == expected;
}

// ---- 4 -------------------------------------------------------------------------------------------

bool array_partition() {
  constexpr int workers = 10;
  constexpr int per_worker = 1000;
  mp::RawArray<long> squares(workers * per_worker);
  run_processes(workers, [&](int w) {
    // Worker w owns elements [w * 1000, (w + 1) * 1000): no other process touches them.
    for (int i = w * per_worker; i < (w + 1) * per_worker; ++i) squares[static_cast<std::size_t>(i)] = long{i} * i;
  });
  int right = 0;
  for (int i = 0; i < workers * per_worker; ++i) right += squares[static_cast<std::size_t>(i)] == long{i} * i;
  std::printf("%d workers filled %d of %d elements correctly, without a lock\n", workers, right, workers * per_worker);
  return right == workers * per_worker;
}

// ---- 5 -------------------------------------------------------------------------------------------

bool vanishing_results() {
  const std::vector<int> inputs{1, 2, 3, 4, 5};
  std::map<int, int> results;  // an ordinary map: each child changes its own copy
  run_processes(static_cast<int>(inputs.size()), [&](int i) { results[inputs[static_cast<std::size_t>(i)]] = 2 * inputs[static_cast<std::size_t>(i)]; });
  std::printf("Doubled in children, written to a std::map: the parent's map has %zu entries\n", results.size());

  mp::RawArray<int> shared(inputs.size());  // shared memory: the children's writes are the parent's
  run_processes(static_cast<int>(inputs.size()), [&](int i) {
    shared[static_cast<std::size_t>(i)] = 2 * inputs[static_cast<std::size_t>(i)];
  });
  std::printf("Written to a multiproc::RawArray instead:");
  for (int d : shared) std::printf(" %d", d);
  std::printf("\n");

  mp::SharedDict<int, int> doubled;  // Python's Manager().dict(), without a server process
  run_processes(static_cast<int>(inputs.size()), [&](int i) {
    doubled.set(inputs[static_cast<std::size_t>(i)], 2 * inputs[static_cast<std::size_t>(i)]);
  });
  std::printf("Written to a multiproc::SharedDict:");
  const std::map<int, int> collected = doubled.snapshot();
  for (const auto& [n, d] : collected) std::printf(" %d: %d", n, d);
  std::printf("\n");
  return results.empty() && shared[4] == 10 && collected.size() == inputs.size() && collected.at(5) == 10;
}

// ---- 6 -------------------------------------------------------------------------------------------

// Two processes, two locks. Each takes its first lock, waits until the other has taken its own,
// then tries for the second, giving up after a second. Returns how many gave up.
int two_processes_two_locks(bool same_order) {
  mp::Lock first, second;
  mp::Barrier both_hold{2};
  mp::RawValue<int> gave_up{0};
  run_processes(2, [&](int who) {
    mp::Lock& mine = (who == 0 || same_order) ? first : second;
    mp::Lock& other = (who == 0 || same_order) ? second : first;
    std::scoped_lock hold(mine);
    if (!same_order) {
      (void)both_hold.wait(5s);  // make sure each holds one lock before reaching for the other
    }
    if (!other.acquire(1s)) {
      std::printf("  process %d: holds one lock, waited 1 s for the other: deadlock, gives up\n", who);
      gave_up.atomic().fetch_add(1);
      return;
    }
    std::printf("  process %d: got both locks\n", who);
    other.release();
  });
  return gave_up.load();
}

bool deadlock() {
  std::printf("Process 0 takes A then B; process 1 takes B then A:\n");
  const int stuck = two_processes_two_locks(false);
  std::printf("Both take A then B (one order for everyone):\n");
  const int fixed = two_processes_two_locks(true);
  return stuck >= 1 && fixed == 0;
}

// ---- 8 -------------------------------------------------------------------------------------------

bool logging() {
  std::printf("print() piece by piece from 3 processes:\n");
  std::fflush(stdout);
  run_processes(3, [](int w) {
    for (int line = 0; line < 2; ++line) {
      for (const char* piece : {"process ", "says ", "line ", "number ", "\n"}) {
        (void)!::write(STDOUT_FILENO, piece, std::strlen(piece));
        std::this_thread::sleep_for(std::chrono::microseconds(300 + 100 * w));
      }
    }
  });
  const std::string path = std::filesystem::temp_directory_path() / ("multiproc-lesson-" + std::to_string(::getpid()) + ".log");
  {
    mp::Logger logger{path};
    run_processes(3, [&](int w) {
      for (int line = 0; line < 20; ++line) logger.log("line " + std::to_string(line) + " from worker " + std::to_string(w));
    });
  }
  std::ifstream file(path);
  const std::regex whole(R"(\d\d:\d\d:\d\d\.\d{3} Process-[0-9:]+\[\d+\] line \d+ from worker \d)");
  int lines = 0, good = 0;
  std::printf("\nmultiproc::Logger from 3 processes into one file (first lines):\n");
  for (std::string line; std::getline(file, line); ++lines) {
    good += std::regex_match(line, whole);
    if (lines < 6) std::printf("  %s\n", line.c_str());
  }
  std::filesystem::remove(path);
  std::printf("%d of %d logged lines whole\n", good, lines);
  return lines == 60 && good == 60;
}

// ---- the runner ------------------------------------------------------------------------------------

struct Lesson {
  const char* name;
  const char* summary;
  const char* before;
  const char* after;
  std::function<bool()> run;
};

const std::vector<Lesson>& lessons() {
  static const std::vector<Lesson> all{
      {"global-not-shared", "a global variable is not shared between processes",
       "Each child is a copy of the parent. Four children add 10 to a global int...",
       "The children changed their own copies; the parent's global never moved. Shared memory\n"
       "(Value) is what all of them see.",
       global_not_shared},
      {"lost-updates", "counter += 1 from 4 processes without a lock loses updates (--slow-motion)",
       "counter += 1 is three steps: read, add, write. Two processes that read the same value\n"
       "both write value + 1, and one update is gone.",
       "Without a lock some increments vanished (in slow motion you saw who overwrote whom).\n"
       "Under the lock, read-add-write happens for one process at a time: nothing is lost.",
       lost_updates},
      {"three-fixes", "the fix three ways: a lock, an atomic add, private sums; with timings",
       "Three correct ways to count from 4 processes, and what each costs.",
       "All three are exact. The lock serialises every step; the atomic add does it in one CPU\n"
       "instruction; private sums share nothing until the end and are the fastest.",
       three_fixes},
      {"array-partition", "10 workers fill disjoint slices of a RawArray with no lock",
       "A race needs two processes touching the same memory. Give each worker its own slice...",
       "No element was touched by two workers, so no lock was needed and nothing was lost.",
       array_partition},
      {"vanishing-results", "results written to a plain map in children vanish; shared memory keeps them",
       "A doubler: children compute 2 x n and store it in a std::map...",
       "The children filled their own copies of the map, which died with them. Results must go\n"
       "through shared memory (an Array, a SharedDict; or a Queue, or a Pool) to reach the parent.",
       vanishing_results},
      {"deadlock", "two locks taken in opposite order deadlock; acquire(timeout) detects it",
       "Process 0 holds A and wants B; process 1 holds B and wants A. Neither can go on...",
       "With opposite orders each held what the other wanted. Without a timeout both would wait\n"
       "forever; acquire(1s) let one give up, which freed the other. One order for everyone makes\n"
       "the cycle impossible.",
       deadlock},
      {"logging", "output from many processes tears mid-line; multiproc::Logger writes whole lines",
       "Several processes writing a line in pieces interleave their pieces...",
       "Pieces mixed into torn lines. The Logger writes each record with one write(2), stamped\n"
       "with time, process name and pid: lines from different processes never mix.",
       logging},
  };
  return all;
}

// The other demos of examples/, started from this program's directory.
const std::vector<std::pair<const char*, const char*>>& demos() {
  static const std::vector<std::pair<const char*, const char*>> all{
      {"value_race", "4 processes race on a counter, without and with a lock"},
      {"lock_print", "10 workers print under a shared Lock, and without it"},
      {"stop_with_event", "a long computation stopped by an Event, result in a Value"},
      {"condition_producer_consumer", "producer and consumers on a Condition"},
      {"pipe_ping_pong", "ping-pong over a duplex Pipe"},
      {"pipe_workers", "a master feeds 10 workers through one Pipe and a Lock"},
      {"queue_producers_consumers", "2 producers, 4 consumers, get(timeout) ends them"},
      {"joinable_queue", "task_done() and join() with poison pills"},
      {"pipe_vs_queue", "Pipe vs Queue throughput for 10^4..10^6 numbers"},
      {"pool_experiment", "100 sleeping tasks on 10 workers, five ways"},
      {"pool_who_ran_what", "map, map_async, imap, imap_unordered and their workers"},
      {"pool_imap_order", "imap yields in order, imap_unordered as ready"},
      {"pool_initializer", "a pool initializer that announces each worker"},
      {"threads_vs_processes", "a CPU-bound count on threads and on processes"},
  };
  return all;
}

bool run_lesson(const Lesson& lesson) {
  std::printf("=== %s ===\n%s\n\n", lesson.name, lesson.before);
  std::fflush(stdout);
  const bool held = lesson.run();
  std::printf("\n%s\n%s\n\n", lesson.after, held ? "" : "(!) the lesson's claim did NOT hold on this run");
  return held;
}

[[noreturn]] void run_demo(const char* name, char** args) {
  const std::string path = std::filesystem::read_symlink("/proc/self/exe").parent_path() / name;
  std::fflush(stdout);
  args[0] = const_cast<char*>(path.c_str());
  ::execv(path.c_str(), args);
  std::perror(path.c_str());
  std::exit(2);
}

void list() {
  std::printf("Lessons (multiproc-lessons NAME, or 'all'):\n");
  for (const Lesson& l : lessons()) std::printf("  %-20s %s\n", l.name, l.summary);
  std::printf("\nDemos (multiproc-lessons NAME [arguments]):\n");
  for (const auto& [name, summary] : demos()) std::printf("  %-28s %s\n", name, summary);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest;  // what follows the name, for demos
  const char* chosen = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--slow-motion") == 0) {
      slow_motion = true;
    } else if (chosen == nullptr) {
      chosen = argv[i];
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (chosen == nullptr) {
    list();
    return 0;
  }
  if (std::strcmp(chosen, "all") == 0) {
    bool all_held = true;
    for (const Lesson& l : lessons()) all_held = run_lesson(l) && all_held;
    return all_held ? 0 : 1;
  }
  for (const Lesson& l : lessons()) {
    if (l.name == std::string(chosen)) return run_lesson(l) ? 0 : 1;
  }
  for (const auto& [name, summary] : demos()) {
    if (name == std::string(chosen)) {
      std::vector<char*> args{nullptr};
      args.insert(args.end(), rest.begin(), rest.end());
      args.push_back(nullptr);
      run_demo(name, args.data());
    }
  }
  std::fprintf(stderr, "no lesson or demo named '%s'\n\n", chosen);
  list();
  return 2;
}
