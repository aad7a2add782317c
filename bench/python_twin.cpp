// The C++ side of bench/compare_python.py: the classic lesson of sending N ints from a child
// process through a Pipe and through a Queue, timed from start() to join(), as the Python script
// times multiprocessing's. Prints "<transport> <n> <seconds>" lines.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;

template <class Send, class Receive>
double timed(long n, Send send, Receive receive) {
  const auto start = std::chrono::steady_clock::now();
  mp::Process reader{[&] {
    for (long i = 0; i < n; ++i) receive();
  }};
  reader.start();
  for (long i = 0; i < n; ++i) send(i);
  reader.join();
  if (reader.exitcode() != 0) std::exit(1);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int main() {
  for (const long n : {10'000L, 100'000L, 1'000'000L}) {
    mp::Queue<long> queue;
    std::printf("Queue %ld %.6f\n", n, timed(n, [&](long i) { queue.put(i); }, [&] { (void)queue.get(); }));
    auto [receiving, sending] = mp::Pipe<long>(false);
    std::printf("Pipe %ld %.6f\n", n,
                timed(n, [&, &sending = sending](long i) { sending.send(i); },
                      [&, &receiving = receiving] { (void)receiving.recv(); }));
  }
}
