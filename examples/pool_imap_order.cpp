// pool_imap_order: a doubler whose tasks take longer the earlier they come (3 - n units of time).
// imap yields in input order, so it waits for the slow first task; imap_unordered yields each
// result as soon as it is ready.
//
//   ./pool_imap_order [milliseconds per unit]      (default 300: the lesson's seconds, scaled)
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;

int unit_ms = 300;

int slow_double(int n) {
  std::this_thread::sleep_for(std::chrono::milliseconds((3 - n) * unit_ms));
  return 2 * n;
}

int main(int argc, char** argv) {
  unit_ms = argc > 1 ? std::stoi(argv[1]) : 300;
  const std::vector<int> inputs{0, 1, 2, 3};
  mp::Pool pool{4};
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() * 1000 / unit_ms;
  };

  std::vector<int> in_order, as_ready;
  std::printf("imap (input order):\n");
  for (int r : pool.imap(slow_double, inputs)) {
    std::printf("  %d after %.1f units\n", r, elapsed());
    in_order.push_back(r);
  }
  std::printf("imap_unordered (as each finishes):\n");
  const auto second = std::chrono::steady_clock::now();
  for (int r : pool.imap_unordered(slow_double, inputs)) {
    std::printf("  %d after %.1f units\n",
                r, std::chrono::duration<double>(std::chrono::steady_clock::now() - second).count() * 1000 / unit_ms);
    as_ready.push_back(r);
  }
  return in_order == std::vector<int>{0, 2, 4, 6} && as_ready == std::vector<int>{6, 4, 2, 0} ? 0 : 1;
}
