// pipe_vs_queue: how long it takes to send 10^4, 10^5 and 10^6 numbers to a child process through
// a Pipe and through a Queue (the classic lesson; bench/compare_python.py runs Python's beside it).
//
//   ./pipe_vs_queue [largest]      (default 1000000)
#include <chrono>
#include <cstdio>
#include <string>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;

// Sends 0..n-1 from this process to a child that adds them up; returns seconds, or -1 if the sum
// came out wrong.
template <class Send, class Receive>
double time_transfer(long n, Send send, Receive receive) {
  mp::Value<long> sum{0};
  const auto start = std::chrono::steady_clock::now();
  mp::Process reader{[&] {
    long total = 0;
    for (long i = 0; i < n; ++i) total += receive();
    sum.store(total);
  }};
  reader.start();
  for (long i = 0; i < n; ++i) send(i);
  reader.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return sum.load() == n * (n - 1) / 2 ? seconds : -1;
}

int main(int argc, char** argv) {
  const long largest = argc > 1 ? std::stol(argv[1]) : 1'000'000;
  std::printf("%10s %12s %12s\n", "numbers", "Pipe (s)", "Queue (s)");
  bool all_correct = true;
  for (long n = 10'000; n <= largest; n *= 10) {
    auto [receiving, sending] = mp::Pipe<long>(false);
    const double pipe = time_transfer(
        n, [&, &sending = sending](long i) { sending.send(i); }, [&, &receiving = receiving] { return receiving.recv(); });
    mp::Queue<long> queue;
    const double queue_seconds = time_transfer(n, [&](long i) { queue.put(i); }, [&] { return queue.get(); });
    std::printf("%10ld %12.4f %12.4f\n", n, pipe, queue_seconds);
    all_correct = all_correct && pipe >= 0 && queue_seconds >= 0;
  }
  return all_correct ? 0 : 1;
}
