// threads_vs_processes: a CPU-bound count, split over threads and over processes.
// In Python the threads take as long as one (the GIL lets one run at a time) and only processes
// go faster; in C++ both use every core. The lesson: processes cost more to start and share
// nothing by default, so they pay off for big independent pieces of work.
//
//   ./threads_vs_processes [count in millions]      (default 200)
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;

// Counts to `n` the slow way (the compiler cannot fold the loop: `volatile`).
long count_up(long n) {
  volatile long counter = 0;
  for (long i = 0; i < n; ++i) counter = counter + 1;
  return counter;
}

template <class Run>
double seconds(Run run) {
  const auto start = std::chrono::steady_clock::now();
  run();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int main(int argc, char** argv) {
  const long total = (argc > 1 ? std::stol(argv[1]) : 200) * 1'000'000L;
  const int parts = static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));

  const double one = seconds([&] { count_up(total); });
  const double threads = seconds([&] {
    std::vector<std::thread> team;
    for (int p = 0; p < parts; ++p) team.emplace_back([&] { count_up(total / parts); });
    for (auto& t : team) t.join();
  });
  mp::Value<long> counted{0};
  const double processes = seconds([&] {
    std::vector<mp::Process> team;
    for (int p = 0; p < parts; ++p) {
      team.emplace_back([&] {
        const long mine = count_up(total / parts);
        std::scoped_lock guard(counted.get_lock());
        counted.value() += mine;
      });
    }
    for (auto& p : team) p.start();
    for (auto& p : team) p.join();
  });

  std::printf("counting to %ld on %d cores\n", total, parts);
  std::printf("%-22s %8.3f s\n", "one thread", one);
  std::printf("%-22s %8.3f s  (%.1fx)\n", (std::to_string(parts) + " threads").c_str(), threads, one / threads);
  std::printf("%-22s %8.3f s  (%.1fx)\n", (std::to_string(parts) + " processes").c_str(), processes, one / processes);
  return counted.load() == total / parts * parts ? 0 : 1;
}
