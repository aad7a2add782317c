// Per-task overhead of the pools: tiny tasks (x * x), so the time is the pool's own.
//   map_chunksize_1   pool.map over 10,000 inputs, one task per input
//   map_default       the same with Python's default chunksize
//   apply_async_get   one apply_async + get at a time (a round trip through a worker)
//   submit_result     one executor submit + result at a time
// Time per iteration is per task. bench/compare_python_pool.py runs Python's Pool and
// ProcessPoolExecutor beside these and prints the ratios.
#include <ranges>

#include <benchmark/benchmark.h>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;

namespace {

constexpr int workers = 2;
constexpr int map_inputs = 10000;

int square(int x) { return x * x; }

void map_tasks(benchmark::State& state, std::size_t chunksize) {
  mp::Pool pool{workers};
  for (auto _ : state) {
    benchmark::DoNotOptimize(pool.map(square, std::views::iota(0, map_inputs), chunksize));
  }
  state.SetItemsProcessed(state.iterations() * map_inputs);
  state.counters["us_per_task"] = benchmark::Counter(
      static_cast<double>(state.iterations() * map_inputs), benchmark::Counter::kIsRate | benchmark::Counter::kInvert,
      benchmark::Counter::kIs1000);
}

void map_chunksize_1(benchmark::State& state) { map_tasks(state, 1); }
void map_default(benchmark::State& state) { map_tasks(state, 0); }

// One call at a time: `call_and_wait(i)` submits square(i) and waits for its result.
template <class CallAndWait>
void round_trips(benchmark::State& state, CallAndWait call_and_wait) {
  int i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(call_and_wait(++i));
  }
  state.SetItemsProcessed(state.iterations());
}

void apply_async_get(benchmark::State& state) {
  mp::Pool pool{workers};
  round_trips(state, [&](int i) { return pool.apply_async(square, i).get(); });
}

void submit_result(benchmark::State& state) {
  mp::ProcessPoolExecutor executor{workers};
  round_trips(state, [&](int i) { return executor.submit(square, i).result(); });
}

}  // namespace

BENCHMARK(map_chunksize_1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(map_default)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(apply_async_get)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(submit_result)->UseRealTime()->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
