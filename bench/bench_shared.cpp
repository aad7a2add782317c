// SharedDict against what a user would otherwise pick: Boost.Interprocess's map in a managed
// segment under an interprocess_mutex (not crash-safe), and (through compare_python_dict.py)
// Python's Manager().dict(). Small int keys and values, as in the classic lesson.
//
//   set/<store>   d[i % 1000] = i        get/<store>   d[i % 1000]
// Time per iteration is one operation; items_per_second is operations per second.
#include <functional>
#include <string>

#include <unistd.h>

#include <benchmark/benchmark.h>
#include <boost/interprocess/allocators/allocator.hpp>
#include <boost/interprocess/containers/map.hpp>
#include <boost/interprocess/managed_shared_memory.hpp>
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <boost/interprocess/sync/scoped_lock.hpp>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;
namespace bip = boost::interprocess;

namespace {

constexpr int keys = 1000;

void set_shared_dict(benchmark::State& state) {
  mp::SharedDict<int, int> dict(1 << 20);
  int i = 0;
  for (auto _ : state) {
    dict.set(i % keys, i);
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}

void get_shared_dict(benchmark::State& state) {
  mp::SharedDict<int, int> dict(1 << 20);
  for (int k = 0; k < keys; ++k) dict.set(k, k);
  int i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(dict.get(i % keys));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}

// Boost's map in a named managed segment, the mutex beside it.
struct BoostMap {
  using Allocator = bip::allocator<std::pair<const int, int>, bip::managed_shared_memory::segment_manager>;
  using Map = bip::map<int, int, std::less<>, Allocator>;
  std::string name = "multiproc-bench-boost-map-" + std::to_string(getpid());
  bip::managed_shared_memory segment{bip::create_only, name.c_str(), 1 << 20};
  Map* map = segment.construct<Map>("map")(segment.get_segment_manager());
  bip::interprocess_mutex* mutex = segment.construct<bip::interprocess_mutex>("mutex")();
  ~BoostMap() { bip::shared_memory_object::remove(name.c_str()); }
  void set(int key, int value) {
    bip::scoped_lock lock(*mutex);
    (*map)[key] = value;
  }
  int get(int key) {
    bip::scoped_lock lock(*mutex);
    const auto it = map->find(key);
    return it == map->end() ? -1 : it->second;
  }
};

void set_boost_map(benchmark::State& state) {
  BoostMap store;
  int i = 0;
  for (auto _ : state) {
    store.set(i % keys, i);
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}

void get_boost_map(benchmark::State& state) {
  BoostMap store;
  for (int k = 0; k < keys; ++k) store.set(k, k);
  int i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(store.get(i % keys));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(set_shared_dict)->Name("set/SharedDict");
BENCHMARK(get_shared_dict)->Name("get/SharedDict");
BENCHMARK(set_boost_map)->Name("set/boost_map");
BENCHMARK(get_boost_map)->Name("get/boost_map");
BENCHMARK_MAIN();
