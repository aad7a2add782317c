// The README's example: four processes add to one shared counter under its lock.
#include <cstdio>
#include <mutex>
#include <vector>

#include <multiproc/multiproc.hpp>

int main() {
  multiproc::Value<long> counter{0};  // shared with every child forked after it
  std::vector<multiproc::Process> workers;
  for (int i = 0; i < 4; ++i) {
    workers.emplace_back([&] {
      for (int n = 0; n < 1000; ++n) {
        std::scoped_lock guard(counter.get_lock());
        counter.value() += 1;
      }
    });
  }
  for (auto& w : workers) w.start();
  for (auto& w : workers) w.join();
  std::printf("%ld\n", counter.load());  // 4000, every time
  return counter.load() == 4000 ? 0 : 1;
}
