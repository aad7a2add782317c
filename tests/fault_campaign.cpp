// The fault campaign: trials that SIGKILL a process at a random moment while it holds a Lock or an
// RLock, waits on a Condition, puts into or gets from a Queue, or runs a Pool task, and then check
// that the survivors go on: every wait ends (no hang), no message is duplicated, no message other
// than the one the victim had in hand is lost, and the object is still usable.
//
//   fault_campaign [--trials N] [--seed S]      N trials in all, spread over the scenarios
//
// Prints one line per scenario (trials, kills that landed, locks taken over from a killed holder,
// failures) and exits 1 on any failure.
// The test suite runs a short campaign; the README ("Failure, measured") quotes a long one.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;
using namespace std::chrono_literals;

namespace {

// Any wait a survivor makes is bounded by this; reaching it is reported as a hang.
constexpr auto bound = 10s;

struct Outcome {
  bool killed = false;  // the SIGKILL landed before the victim finished on its own
  std::string failure;  // empty when every check held
  bool recovered = false;  // a survivor took a lock over from the dead victim
};

using Rng = std::mt19937_64;

std::chrono::microseconds random_delay(Rng& rng, std::chrono::microseconds upto) {
  return std::chrono::microseconds(std::uniform_int_distribution<long>(0, upto.count())(rng));
}

// Kills `victim` after `delay` unless it has finished; returns whether the kill is what ended it.
bool kill_after(mp::Process& victim, std::chrono::microseconds delay) {
  std::this_thread::sleep_for(delay);
  victim.kill();  // a no-op on a finished process
  if (!victim.join(bound)) {
    return false;
  }
  return victim.exitcode() == -SIGKILL;
}

// Joins every survivor within the bound; the first problem found, or empty.
std::string join_survivors(std::vector<mp::Process>& survivors) {
  std::string failure;
  for (auto& p : survivors) {
    if (!p.join(bound)) {
      p.kill();
      p.join();
      failure = "hang: " + p.name() + " still waiting after " + std::to_string(bound.count()) + " s";
    } else if (p.exitcode() != 0 && failure.empty()) {
      failure = p.name() + " exited with " + std::to_string(*p.exitcode());
    }
  }
  return failure;
}

// Loops pause briefly every 256 rounds, so that they last about as long as the window in which
// the kill may land (the fast queues would otherwise finish before most kills).
void pace(long sequence) {
  if (sequence % 256 == 255) {
    std::this_thread::sleep_for(100us);
  }
}

// ---- Lock / RLock holder ------------------------------------------------------------------------
// Three processes each add 1 to a total and to their own tally, both under the lock, 100,000 times.
// The victim is killed at a random moment, possibly inside the lock. Survivors must finish; the
// total must equal the sum of tallies, or exceed it by one if (and only if) a survivor recovered
// the lock from the victim (killed between the two additions).
template <class LockType>
Outcome lock_holder(Rng& rng) {
  constexpr int workers = 3;
  constexpr long rounds = 100000;
  LockType lock;
  mp::RawArray<long> counts(workers + 2);  // [0..workers): tallies, [workers]: total, [workers+1]: recoveries
  const auto work = [&](int me) {
    volatile long* cell = counts.data();
    for (long i = 0; i < rounds; ++i) {
      lock.acquire();
      if constexpr (std::is_same_v<LockType, mp::RLock>) {
        lock.acquire();  // nested: the victim may die holding it twice
      }
      if (lock.recovered()) {
        cell[workers + 1] = cell[workers + 1] + 1;
      }
      cell[workers] = cell[workers] + 1;
      for (int spin = 0; spin < 32; ++spin) {
        cell[me] = cell[me];  // hold the lock a while, so that many kills land inside it
      }
      cell[me] = cell[me] + 1;
      if constexpr (std::is_same_v<LockType, mp::RLock>) {
        lock.release();
      }
      lock.release();
    }
    return 0;
  };
  std::vector<mp::Process> survivors;
  for (int w = 1; w < workers; ++w) {
    survivors.emplace_back([&, w] { return work(w); });
  }
  mp::Process victim{[&] { return work(0); }};
  victim.start();
  for (auto& p : survivors) p.start();
  Outcome out;
  out.killed = kill_after(victim, random_delay(rng, 10ms));
  out.failure = join_survivors(survivors);
  if (!out.failure.empty()) return out;
  // The lock must still work. Taken before the tallies are checked: a victim that outlived both
  // survivors and died holding it is recovered from here, at this acquire, and counts as one.
  if (!lock.acquire(bound)) {
    out.failure = "the lock is stuck after the kill";
    return out;
  }
  const bool recovered_at_the_end = lock.recovered();
  lock.release();
  long tallies = 0;
  for (int w = 0; w < workers; ++w) tallies += counts[w];
  const long total = counts[workers];
  const long recoveries = counts[workers + 1] + (recovered_at_the_end ? 1 : 0);
  out.recovered = recoveries > 0;
  if (counts[1] != rounds || counts[2] != rounds) {
    out.failure = "a survivor's tally is short";
  } else if (total != tallies && !(total == tallies + 1 && recoveries == 1)) {
    out.failure = "total " + std::to_string(total) + " vs tallies " + std::to_string(tallies) + " with " +
                  std::to_string(recoveries) + " recoveries";
  }
  return out;
}

// ---- Condition waiter ---------------------------------------------------------------------------
// Three processes wait for a flag on a Condition; one is killed at a random moment (asleep or
// waking). Then the flag is set and notify_all() called once: both survivors must wake.
Outcome condition_waiter(Rng& rng) {
  mp::Condition condition;
  mp::RawValue<int> go(0);
  mp::Semaphore waiting(0);
  const auto wait_for_go = [&] {
    condition.acquire();
    waiting.release();
    const bool woke = condition.wait_for([&] { return go.value() != 0; }, bound);
    condition.release();
    return woke ? 0 : 2;
  };
  mp::Process victim{wait_for_go};
  std::vector<mp::Process> survivors;
  survivors.emplace_back(wait_for_go);
  survivors.emplace_back(wait_for_go);
  victim.start();
  for (auto& p : survivors) p.start();
  for (int i = 0; i < 3; ++i) {
    if (!waiting.acquire(bound)) return {false, "hang: a waiter never started"};
  }
  Outcome out;
  out.killed = kill_after(victim, random_delay(rng, 500us));
  condition.acquire();
  go.value() = 1;
  condition.notify_all();
  condition.release();
  out.failure = join_survivors(survivors);
  return out;
}

// ---- Queue producer mid-put ---------------------------------------------------------------------
// Two producers put (producer, sequence) pairs; each records in shared memory how many of its puts
// returned. One is killed at a random moment. A consumer takes everything. Nothing may arrive
// twice, every put that returned must arrive, and at most one more of the victim's (the put it
// was in) may arrive; the queue must then still carry a message.
struct Message {
  int producer;
  long sequence;
};

template <class Wire, class Encode, class Decode>
Outcome producer_killed(Rng& rng, Encode encode, Decode decode) {
  constexpr long per_producer = 20000;
  mp::Queue<Wire> queue(64);
  mp::RawArray<long> confirmed(2);
  const auto produce = [&](int me) {
    volatile long* done = confirmed.data();
    for (long s = 0; s < per_producer; ++s) {
      queue.put(encode(Message{me, s}), bound);
      done[me] = s + 1;
      pace(s);
    }
    return 0;
  };
  mp::Process victim{[&] { return produce(0); }};
  std::vector<mp::Process> survivors;
  survivors.emplace_back([&] { return produce(1); });
  victim.start();
  survivors[0].start();
  std::vector<std::vector<int>> seen(2, std::vector<int>(per_producer, 0));
  Outcome out;
  std::thread killer([&] { out.killed = kill_after(victim, random_delay(rng, 10ms)); });
  // Take until the survivor has finished and the victim is gone and the queue is empty.
  const auto give_up = std::chrono::steady_clock::now() + bound;
  for (;;) {
    Wire wire;
    try {
      wire = queue.get(20ms);
    } catch (const mp::Empty&) {
      if (confirmed[1] == per_producer && !victim.is_alive()) break;
      if (std::chrono::steady_clock::now() > give_up) {
        out.failure = "hang: consumer saw no end";
        break;
      }
      continue;
    }
    const Message m = decode(wire);
    if (m.producer < 0 || m.producer > 1 || m.sequence < 0 || m.sequence >= per_producer) {
      out.failure = "garbage message";
      break;
    }
    if (++seen[m.producer][m.sequence] > 1) {
      out.failure = "duplicate message " + std::to_string(m.producer) + ":" + std::to_string(m.sequence);
      break;
    }
  }
  killer.join();
  if (const auto f = join_survivors(survivors); out.failure.empty()) out.failure = f;
  if (!out.failure.empty()) return out;
  for (int p = 0; p < 2; ++p) {
    const long returned = confirmed[p];
    const long arrived = std::count(seen[p].begin(), seen[p].end(), 1);
    const bool prefix_whole = std::all_of(seen[p].begin(), seen[p].begin() + returned, [](int n) { return n == 1; });
    if (!prefix_whole || arrived > returned + 1) {
      out.failure = "producer " + std::to_string(p) + ": " + std::to_string(returned) + " puts returned, " +
                    std::to_string(arrived) + " arrived";
      return out;
    }
  }
  queue.put(encode(Message{1, 7}));
  if (decode(queue.get(bound)).sequence != 7) out.failure = "queue unusable after the kill";
  return out;
}

// ---- Queue consumer mid-get ---------------------------------------------------------------------
// One producer puts 0..N-1; two consumers take and mark each in a shared table right after get()
// returns. One consumer is killed at a random moment. Nothing may be marked twice, and at most one
// message may be missing (the one the victim had taken and not yet marked).
template <class Wire, class Encode, class Decode>
Outcome consumer_killed(Rng& rng, Encode encode, Decode decode) {
  constexpr long messages = 20000;
  mp::Queue<Wire> queue(64);
  mp::RawArray<std::uint8_t> marks(messages);
  const auto consume = [&] {
    volatile std::uint8_t* mark = marks.data();
    for (;;) {
      const Message m = decode(queue.get(bound));
      if (m.sequence < 0) return 0;  // the end
      if (m.sequence >= messages) return 3;
      mark[m.sequence] = static_cast<std::uint8_t>(mark[m.sequence] + 1);
    }
  };
  mp::Process victim{consume};
  std::vector<mp::Process> survivors;
  survivors.emplace_back(consume);
  victim.start();
  survivors[0].start();
  Outcome out;
  std::thread killer([&] { out.killed = kill_after(victim, random_delay(rng, 10ms)); });
  for (long s = 0; s < messages; ++s) {
    queue.put(encode(Message{0, s}), bound);
    pace(s);
  }
  killer.join();
  queue.put(encode(Message{0, -1}), bound);  // one end marker for the one survivor (the victim never ends by itself)
  out.failure = join_survivors(survivors);
  if (!out.failure.empty()) return out;
  long missing = 0;
  for (long s = 0; s < messages; ++s) {
    if (marks[s] > 1) return {out.killed, "message " + std::to_string(s) + " taken twice"};
    missing += marks[s] == 0 ? 1 : 0;
  }
  if (missing > (out.killed ? 1 : 0)) {
    out.failure = std::to_string(missing) + " messages lost";
  }
  return out;
}

// ---- Pool worker mid-task -----------------------------------------------------------------------
// Tasks of 0-2 ms report which worker ran them; a worker is SIGKILLed at a random moment. Every
// result must arrive within the bound: a value, or WorkerLost for the task the dead worker held
// (at most one). The pool must then still run a map.
int task_pid(int sleep_us) {
  std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
  return static_cast<int>(::getpid());
}
int square(int x) { return x * x; }

Outcome pool_worker(Rng& rng) {
  mp::Pool pool(2);
  const pid_t target = pool.apply(task_pid, 0);
  std::vector<mp::AsyncResult<int>> results;
  for (int i = 0; i < 40; ++i) {
    results.push_back(pool.apply_async(task_pid, static_cast<int>(random_delay(rng, 2ms).count())));
  }
  std::this_thread::sleep_for(random_delay(rng, 20ms));
  const bool killed = ::kill(target, SIGKILL) == 0;
  Outcome out{killed, {}};
  int lost = 0;
  for (auto& r : results) {
    try {
      (void)r.get(bound);
    } catch (const mp::WorkerLost&) {
      ++lost;
    } catch (const mp::Timeout&) {
      return {killed, "hang: a result never came"};
    }
  }
  if (lost > 1) {
    out.failure = std::to_string(lost) + " tasks failed for one dead worker";
  } else if (pool.map(square, std::vector<int>{1, 2, 3}) != std::vector<int>{1, 4, 9}) {
    out.failure = "pool unusable after the kill";
  }
  return out;
}

// ---- The campaign -------------------------------------------------------------------------------

Message same(const Message& m) { return m; }
std::string as_text(const Message& m) { return std::to_string(m.producer) + ":" + std::to_string(m.sequence); }
Message from_text(const std::string& text) {
  const auto colon = text.find(':');
  return {std::stoi(text.substr(0, colon)), std::stol(text.substr(colon + 1))};
}

struct Scenario {
  const char* name;
  std::function<Outcome(Rng&)> run;
  int trials = 0;
  int kills = 0;
  int failures = 0;
  int recoveries = 0;
};

}  // namespace

int main(int argc, char** argv) {
  int trials = 60;
  unsigned long long seed = std::random_device{}();
  CLI::App app{"SIGKILL a process at a random moment while it holds a Lock or RLock, waits on a Condition, "
               "puts into or gets from a Queue, or runs a Pool task; check that the survivors go on",
               "fault_campaign"};
  app.add_option("--trials", trials, "Trials in all, spread over the scenarios")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "Seed of the random moments (printed, so a failing run can be repeated)");
  CLI11_PARSE(app, argc, argv);
  std::vector<Scenario> scenarios = {
      {"Lock holder", lock_holder<mp::Lock>},
      {"RLock holder", lock_holder<mp::RLock>},
      {"Condition waiter", condition_waiter},
      {"Queue producer mid-put", [](Rng& rng) { return producer_killed<Message>(rng, same, same); }},
      {"Queue<string> producer mid-put", [](Rng& rng) { return producer_killed<std::string>(rng, as_text, from_text); }},
      {"Queue consumer mid-get", [](Rng& rng) { return consumer_killed<Message>(rng, same, same); }},
      {"Queue<string> consumer mid-get", [](Rng& rng) { return consumer_killed<std::string>(rng, as_text, from_text); }},
      {"Pool worker mid-task", pool_worker},
  };
  std::printf("fault campaign: %d trials, seed %llu\n", trials, seed);
  Rng rng(seed);
  int failures = 0;
  for (int t = 0; t < trials; ++t) {
    Scenario& s = scenarios[static_cast<std::size_t>(t) % scenarios.size()];
    Outcome out;
    try {
      out = s.run(rng);
    } catch (const std::exception& e) {
      out.failure = std::string("exception: ") + e.what();
    }
    ++s.trials;
    s.kills += out.killed ? 1 : 0;
    s.recoveries += out.recovered ? 1 : 0;
    if (!out.failure.empty()) {
      ++s.failures;
      ++failures;
      std::printf("  FAILED trial %d (%s): %s\n", t, s.name, out.failure.c_str());
      std::fflush(stdout);
    }
  }
  std::printf("%-32s %7s %7s %16s %9s\n", "scenario", "trials", "kills", "locks recovered", "failures");
  for (const auto& s : scenarios) {
    std::printf("%-32s %7d %7d %16d %9d\n", s.name, s.trials, s.kills, s.recoveries, s.failures);
  }
  std::printf("%d trials, %d failures\n", trials, failures);
  return failures == 0 ? 0 : 1;
}
