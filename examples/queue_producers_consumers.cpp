// queue_producers_consumers: 2 producers and 4 consumers share one Queue. A consumer stops when
// nothing has come for a while: get(timeout) throws Empty.
//
//   ./queue_producers_consumers [items per producer]      (default 10)
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  const int per_producer = argc > 1 ? std::stoi(argv[1]) : 10;
  mp::Queue<int> queue{16};
  mp::RawValue<int> consumed{0};

  std::vector<mp::Process> producers;
  for (int p = 0; p < 2; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < per_producer; ++i) {
        queue.put(p * 1000 + i);
        std::this_thread::sleep_for(1ms);
      }
    });
  }
  std::vector<mp::Process> consumers;
  for (int c = 0; c < 4; ++c) {
    consumers.emplace_back([&, c] {
      try {
        for (;;) {
          const int item = queue.get(300ms);  // Empty after 300 ms of silence ends this consumer
          std::printf("consumer %d (pid %d) got %d\n", c, ::getpid(), item);
          std::fflush(stdout);
          consumed.atomic().fetch_add(1);
        }
      } catch (const mp::Empty&) {
        std::printf("consumer %d: nothing for 300 ms, stopping\n", c);
      }
    });
  }
  for (auto& p : producers) p.start();
  for (auto& c : consumers) c.start();
  for (auto& p : producers) p.join();
  for (auto& c : consumers) c.join();
  std::printf("%d items consumed of %d produced\n", consumed.load(), 2 * per_producer);
  return consumed.load() == 2 * per_producer ? 0 : 1;
}
