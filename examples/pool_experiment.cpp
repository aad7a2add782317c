// pool_experiment: the classic lesson. 100 inputs, 10 workers; each task sleeps (50 ms) and then
// returns i*i. The same work through hand-made Process + Queue workers, Pool.map, Pool.map_async,
// ProcessPoolExecutor and a pool of threads, with the ideal time (100 x 50 ms / 10) beside them.
//
//   ./pool_experiment [milliseconds per task]      (default 50)
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;

constexpr int inputs = 100;
constexpr int workers = 10;
int task_ms = 50;  // set from the command line before any worker is forked

long long slow_square(int i) {
  std::this_thread::sleep_for(std::chrono::milliseconds(task_ms));
  return static_cast<long long>(i) * i;
}

// Ten Process workers take inputs from one Queue and put results on another; -1 stops a worker.
std::vector<long long> hand_made() {
  mp::Queue<int> todo{inputs + workers};
  mp::Queue<long long> done{inputs};
  std::vector<mp::Process> team;
  for (int w = 0; w < workers; ++w) {
    team.emplace_back([&] {
      for (int i; (i = todo.get()) != -1;) done.put(slow_square(i));
    });
  }
  for (auto& p : team) p.start();
  for (int i = 0; i < inputs; ++i) todo.put(i);
  for (int w = 0; w < workers; ++w) todo.put(-1);
  std::vector<long long> results;
  for (int i = 0; i < inputs; ++i) results.push_back(done.get());
  for (auto& p : team) p.join();
  return results;
}

// A fixed set of threads taking jobs from a shared deque (what a thread pool is).
std::vector<long long> thread_pool() {
  std::mutex mutex;
  std::deque<int> jobs;
  std::vector<long long> results(inputs);
  for (int i = 0; i < inputs; ++i) jobs.push_back(i);
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      for (;;) {
        int i = 0;
        {
          std::scoped_lock lock(mutex);
          if (jobs.empty()) return;
          i = jobs.front();
          jobs.pop_front();
        }
        results[static_cast<std::size_t>(i)] = slow_square(i);
      }
    });
  }
  for (auto& t : threads) t.join();
  return results;
}

int main(int argc, char** argv) {
  task_ms = argc > 1 ? std::stoi(argv[1]) : 50;
  std::vector<int> numbers(inputs);
  std::iota(numbers.begin(), numbers.end(), 0);
  const long long expected = [] {
    long long sum = 0;
    for (long long i = 0; i < inputs; ++i) sum += i * i;
    return sum;
  }();

  mp::Pool pool{workers};
  mp::ProcessPoolExecutor executor{workers};
  const std::vector<std::pair<std::string, std::function<std::vector<long long>()>>> ways{
      {"Process + Queue (by hand)", hand_made},
      {"Pool.map", [&] { return pool.map(slow_square, numbers); }},
      {"Pool.map_async + get", [&] { return pool.map_async(slow_square, numbers).get(); }},
      {"ProcessPoolExecutor.map",
       [&] {
         std::vector<long long> out;
         for (long long r : executor.map(slow_square, numbers)) out.push_back(r);
         return out;
       }},
      {"thread pool", thread_pool},
  };

  std::printf("%d tasks of %d ms on %d workers; ideal %d ms\n\n", inputs, task_ms, workers, inputs * task_ms / workers);
  std::printf("%-28s %10s %10s\n", "how", "ms", "x ideal");
  bool all_right = true;
  for (const auto& [name, run] : ways) {
    const auto start = std::chrono::steady_clock::now();
    const std::vector<long long> results = run();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    const bool right = std::accumulate(results.begin(), results.end(), 0LL) == expected;
    all_right = all_right && right;
    std::printf("%-28s %10.1f %10.2f%s\n", name.c_str(), ms, ms / (inputs * task_ms / workers), right ? "" : "  WRONG");
  }
  return all_right ? 0 : 1;
}
