// A program for tests/mpi/rank_lost.sh: a map long enough to be killed in the middle of. Every rank
// prints its pid; rank 0 says when the map is under way, and that it finished (it never should:
// the script kills serving rank 2 in between).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ranges>
#include <thread>

#include <multiproc/mpi.hpp>

namespace {

int slow_square(int x) {
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  return x * x;
}

}  // namespace

int main(int argc, char** argv) {
  multiproc::mpi::World world{argc, argv};
  std::printf("rank %d pid %d\n", world.rank(), static_cast<int>(::getpid()));
  std::fflush(stdout);
  multiproc::mpi::Pool pool{world};
  if (!pool.is_client()) {
    return 0;
  }
  int seen = 0;
  for (int square : pool.imap(slow_square, std::views::iota(0, 100000))) {
    (void)square;
    if (++seen == 300) {
      std::printf("map under way\n");
      std::fflush(stdout);
    }
  }
  std::printf("map finished\n");
  return 0;
}
