// pool_initializer: every new worker runs the initializer once, and announces itself.
//
//   ./pool_initializer [workers]      (default 3)
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;

int cube(int x) { return x * x * x; }

int main(int argc, char** argv) {
  const int workers = argc > 1 ? std::stoi(argv[1]) : 3;
  mp::RawValue<int> started{0};  // shared: counts the initializer's runs in all workers
  mp::Pool pool{workers, [&] {
                  started.atomic().fetch_add(1);
                  std::printf("worker pid %d is ready\n", ::getpid());
                  std::fflush(stdout);
                }};
  std::vector<int> inputs{1, 2, 3, 4, 5, 6, 7, 8};
  const auto cubes = pool.map(cube, inputs);
  std::printf("cubes:");
  for (int c : cubes) std::printf(" %d", c);
  // The map may finish before the last worker is even ready (the others took every task): close
  // and join, so that every worker has started, run its initializer and left before we count.
  pool.close();
  pool.join();
  std::printf("\n%d workers started\n", started.load());
  return started.load() == workers && cubes.back() == 512 ? 0 : 1;
}
