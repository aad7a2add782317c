// The cluster pool's first program: squares of 0..N-1 on every rank of an MPI job but the first,
// which hands out the work and prints the sum. Runs unchanged on one machine or many:
//
//   mpirun -n 4 --oversubscribe ./build/examples/mpi_squares 100000          # 4 ranks here
//   mpirun --hostfile hosts --map-by ppr:1:node --bind-to none ./build/examples/mpi_squares 100000
//   srun --mpi=pmix -N 4 --ntasks-per-node=1 --cpus-per-task=32 ./build/examples/mpi_squares 100000
//
// Each serving rank forks a local pool over its share of its machine's CPUs; the program prints
// how many ranks and workers took part, and where each worker ran, and checks the sum.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <ranges>
#include <string>
#include <vector>

#include <multiproc/mpi.hpp>

namespace {

long long square(long long x) { return x * x; }

// Where a task ran, "<host>:<pid>", after 10 ms of pretended work (so that every worker gets some).
std::string where_it_runs(int) {
  ::usleep(10000);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid());
}

}  // namespace

int main(int argc, char** argv) {
  multiproc::mpi::World world{argc, argv};
  multiproc::mpi::Pool pool{world};  // every rank but 0 serves in here until rank 0 closes the pool
  if (!pool.is_client()) {
    return 0;
  }
  const long long n = argc > 1 ? std::atoll(argv[1]) : 100000;
  const std::vector<long long> squares = pool.map(square, std::views::iota(0LL, n));
  long long sum = 0;
  for (const long long s : squares) {
    sum += s;
  }
  std::map<std::string, int> workers;
  for (const std::string& where : pool.map(where_it_runs, std::views::iota(0, 4 * pool.processes()), 1)) {
    ++workers[where];
  }
  pool.close();
  pool.join();
  const long long expected = (n - 1) * n * (2 * n - 1) / 6;
  std::printf("%d ranks, %d workers: sum of %lld squares = %lld (%s)\n", world.size(), pool.processes(), n, sum,
              sum == expected ? "right" : "WRONG");
  for (const auto& [where, tasks] : workers) {
    std::printf("  worker %s ran %d of the %d probes\n", where.c_str(), tasks, 4 * pool.processes());
  }
  return sum == expected ? 0 : 1;
}
