// stop_with_event: a child computes e = 1/0! + 1/1! + 1/2! + ... until the parent tells it to stop
// through an Event; the result comes back through a Value.
//
//   ./stop_with_event [milliseconds]      (default 300: how long the parent lets it run)
//
// The twin of the classic Python lesson:
//     def compute_e(stop, result):
//         e, term, k = 0.0, 1.0, 0
//         while not stop.is_set():
//             e += term; k += 1; term /= k
//             result.value = e
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;

int main(int argc, char** argv) {
  const auto run_for = std::chrono::milliseconds(argc > 1 ? std::stoi(argv[1]) : 300);

  mp::Event stop;
  mp::Value<double> result{0.0};
  mp::Value<long> terms{0};

  mp::Process worker{[&] {
    double e = 0.0;
    double term = 1.0;
    for (long k = 1; !stop.is_set(); ++k) {
      e += term;
      term /= static_cast<double>(k);
      result.store(e);
      terms.store(k);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // stands for a heavier step
    }
  }};
  worker.start();

  std::this_thread::sleep_for(run_for);
  stop.set();  // the worker sees it at its next step and returns
  worker.join();

  std::printf("after %lld ms the worker had summed %ld terms\n", static_cast<long long>(run_for.count()), terms.load());
  std::printf("e ~ %.15f (error %.1e)\n", result.load(), std::fabs(result.load() - M_E));
  std::printf("worker exit code: %d\n", *worker.exitcode());
  return worker.exitcode() == 0 && std::fabs(result.load() - M_E) < 1e-12 ? 0 : 1;
}
