// SpscRing<long> against a hand-written Lamport ring of the same algorithm (cached positions,
// positions on separate cache lines), both in shared memory:
//   spsc_compare stream   throughput between two processes pinned to CPUs 0 and 1 (messages/s)
//   spsc_compare steps    push-then-pop in one process, for callgrind's instructions per message:
//     valgrind --tool=callgrind --toggle-collect='*run_steps*' spsc_compare steps
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <optional>

#include <multiproc/spsc_ring.hpp>

#include "support.hpp"

namespace {

constexpr std::size_t capacity = 1024;
constexpr std::uint64_t messages = 20'000'000;

// The hand-written ring: the textbook version, everything in one shared struct.
struct HandRing {
  alignas(64) std::atomic<std::uint64_t> write_pos{0};
  alignas(64) std::atomic<std::uint64_t> read_pos{0};
  alignas(64) long slots[capacity];
};
struct HandProducer {
  HandRing& ring;
  std::uint64_t cached_read = 0;
  bool try_push(long v) {
    const std::uint64_t w = ring.write_pos.load(std::memory_order_relaxed);
    if (w - cached_read >= capacity && w - (cached_read = ring.read_pos.load(std::memory_order_acquire)) >= capacity) return false;
    ring.slots[w & (capacity - 1)] = v;
    ring.write_pos.store(w + 1, std::memory_order_release);
    return true;
  }
};
struct HandConsumer {
  HandRing& ring;
  std::uint64_t cached_write = 0;
  std::optional<long> try_pop() {
    const std::uint64_t r = ring.read_pos.load(std::memory_order_relaxed);
    if (r >= cached_write && r >= (cached_write = ring.write_pos.load(std::memory_order_acquire))) return std::nullopt;
    const long v = ring.slots[r & (capacity - 1)];
    ring.read_pos.store(r + 1, std::memory_order_release);
    return v;
  }
};

template <class Producer, class Consumer>
double stream(Producer& producer, Consumer& consumer) {
  const pid_t child = ::fork();
  if (child == 0) {
    bench::pin_to_cpu(1);
    for (std::uint64_t i = 0; i < messages; ++i) {
      while (!producer.try_push(static_cast<long>(i))) {
      }
    }
    ::_exit(0);
  }
  bench::pin_to_cpu(0);
  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < messages;) {
    if (auto v = consumer.try_pop()) {
      if (*v != static_cast<long>(i)) std::abort();
      ++i;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::waitpid(child, nullptr, 0);
  return static_cast<double>(messages) / seconds;
}

template <class Producer, class Consumer>
[[gnu::noinline]] long run_steps(Producer& producer, Consumer& consumer, std::uint64_t count) {
  long sum = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    (void)producer.try_push(static_cast<long>(i));
    sum += *consumer.try_pop();
  }
  return sum;
}

struct RingAsBoth {
  multiproc::SpscRing<long>& ring;
  bool try_push(long v) { return ring.try_push(v); }
  std::optional<long> try_pop() { return ring.try_pop(); }
};

}  // namespace

int main(int argc, char** argv) {
  const bool steps = argc > 1 && std::strcmp(argv[1], "steps") == 0;
  HandRing& hand = bench::shared_object<HandRing>();
  multiproc::SpscRing<long> ring{capacity};
  HandProducer hand_producer{hand};
  HandConsumer hand_consumer{hand};
  RingAsBoth ours{ring};
  if (steps) {
    constexpr std::uint64_t count = 1'000'000;
    std::printf("%ld %ld\n", run_steps(hand_producer, hand_consumer, count), run_steps(ours, ours, count));
  } else {
    for (int round = 0; round < 5; ++round) {
      const double hand_rate = stream(hand_producer, hand_consumer);
      const double ring_rate = stream(ours, ours);
      std::printf("round %d: hand-written %.1f M msg/s, SpscRing %.1f M msg/s, ratio %.2f\n", round, hand_rate / 1e6,
                  ring_rate / 1e6, hand_rate / ring_rate);
    }
  }
  bench::release_shared_object(hand);
  return 0;
}
