// The C++ half of bench/compare_mpi4py.py: one measurement of a pool, printed by rank 0 as one
// JSON line. (A plain timer, not Google Benchmark: the serving ranks must make the pool in step
// with rank 0, and the script interleaves these runs with mpi4py's, launch by launch.)
//
//   mpirun -n 4 bench_mpi cluster [LOCAL_WORKERS]   multiproc::mpi::Pool (LOCAL_WORKERS 0: hybrid default)
//   bench_mpi local WORKERS                          multiproc::Pool on this machine
//
// Measures, with the same tasks as bench/mpi4py_pool.py:
//   map_chunksize_1_us  map(square, 10,000 inputs, chunksize 1), time per task: the per-task overhead
//   map_default_us      the same with the default chunksize, len / (4 x workers)
//   round_trip_us       one apply_async(square, i).get() at a time
//   busy_tasks_per_s    map(busy_200us, 2,000 inputs, chunksize 1): tasks of 200 us of CPU each
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ranges>
#include <string>
#include <vector>

#include <multiproc/mpi.hpp>
#include <multiproc/pool.hpp>

namespace {

using Clock = std::chrono::steady_clock;

constexpr int map_inputs = 10000;
constexpr int round_trips = 2000;
constexpr int busy_tasks = 2000;

int square(int x) { return x * x; }

// 200 us of CPU, however fast the machine: the work of a small real task.
int busy_200us(int x) {
  const auto until = Clock::now() + std::chrono::microseconds(200);
  while (Clock::now() < until) {
  }
  return x;
}

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

template <class Pool>
void measure(Pool& pool, int workers) {
  (void)pool.map(square, std::views::iota(0, 100), 1);  // warm: workers up, paces known
  auto start = Clock::now();
  (void)pool.map(square, std::views::iota(0, map_inputs), 1);
  const double chunksize_1 = seconds_since(start) / map_inputs * 1e6;
  start = Clock::now();
  (void)pool.map(square, std::views::iota(0, map_inputs));
  const double default_chunks = seconds_since(start) / map_inputs * 1e6;
  start = Clock::now();
  for (int i = 0; i < round_trips; ++i) {
    (void)pool.apply_async(square, i).get();
  }
  const double round_trip = seconds_since(start) / round_trips * 1e6;
  start = Clock::now();
  (void)pool.map(busy_200us, std::views::iota(0, busy_tasks), 1);
  const double busy = busy_tasks / seconds_since(start);
  std::printf(
      "{\"workers\": %d, \"map_chunksize_1_us\": %.4f, \"map_default_us\": %.4f, \"round_trip_us\": %.3f, "
      "\"busy_tasks_per_s\": %.1f}\n",
      workers, chunksize_1, default_chunks, round_trip, busy);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  const int count = argc > 2 ? std::atoi(argv[2]) : 0;
  if (mode == "local" && count > 0) {
    multiproc::Pool pool{count};
    measure(pool, count);
    return 0;
  }
  if (mode != "cluster") {
    std::fprintf(stderr, "usage: mpirun -n N %s cluster [LOCAL_WORKERS] | %s local WORKERS\n", argv[0], argv[0]);
    return 2;
  }
  multiproc::mpi::World world{argc, argv};
  multiproc::mpi::Pool pool{world, multiproc::mpi::PoolOptions{.local_workers = count}};
  if (pool.is_client()) {
    measure(pool, pool.processes());
  }
  return 0;
}
