// condition_producer_consumer: one producer and two consumer processes share a small buffer.
// Consumers sleep on a Condition until there is something to take; the producer sleeps on the same
// Condition while the buffer is full.
//
//   ./condition_producer_consumer [items]      (default 20)
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;
using namespace std::chrono_literals;

constexpr int capacity = 4;
constexpr int done_marker = -1;

// Everything in shared memory: a first-in first-out ring of items, and what the consumers took.
struct Shared {
  int items[capacity];
  int first;  // where the oldest item is
  int count;  // how many items are in the ring
  int taken_sum;
  int taken_count;
};

int main(int argc, char** argv) {
  const int items = argc > 1 ? std::stoi(argv[1]) : 20;
  mp::Condition changed;            // owns its Lock, which guards everything in `shared`
  mp::RawValue<Shared> shared{};

  auto consumer = [&] {
    for (;;) {
      std::unique_lock guard(changed);
      Shared& s = shared.value();
      changed.wait_for([&] { return s.count > 0; });  // sleeps; the lock is free meanwhile
      const int item = s.items[s.first];
      if (item == done_marker) {
        return;  // left in the ring, so the other consumer sees it too
      }
      s.first = (s.first + 1) % capacity;
      s.count -= 1;
      s.taken_sum += item;
      s.taken_count += 1;
      std::printf("consumer pid %d took %d\n", ::getpid(), item);
      std::fflush(stdout);
      changed.notify_all();  // the producer may be waiting for room
    }
  };
  std::vector<mp::Process> consumers;
  consumers.emplace_back(consumer);
  consumers.emplace_back(consumer);
  for (auto& c : consumers) c.start();

  mp::Process producer{[&] {
    for (int item = 1; item <= items + 1; ++item) {
      std::unique_lock guard(changed);
      Shared& s = shared.value();
      changed.wait_for([&] { return s.count < capacity; });
      s.items[(s.first + s.count) % capacity] = item <= items ? item : done_marker;
      s.count += 1;
      changed.notify_all();
    }
  }};
  producer.start();

  producer.join();
  for (auto& c : consumers) c.join();
  const int expected = items * (items + 1) / 2;
  std::printf("consumed %d items summing to %d (expected %d)\n", shared.value().taken_count, shared.value().taken_sum,
              expected);
  return shared.value().taken_sum == expected && shared.value().taken_count == items ? 0 : 1;
}
