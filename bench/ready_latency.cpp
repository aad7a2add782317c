// Send -> readable latency of ready_fd() (issue 14.13): how long after another process sends does
// an event loop's poll(2) on Queue::ready_fd(), Connection::ready_fd() or Event::ready_fd() return?
//
//   ready_latency [rounds]        (default 2000 per object)
//
// The receiver (pinned to CPU 1) sleeps in poll on the fd; when it returns it reads the clock,
// drains the object (take until empty / clear), and says so. The sender (CPU 0) waits for that,
// lets the receiver fall asleep (200 us), reads the clock and sends. steady_clock is one clock for
// both processes. Prints median, p99 and the worst round in microseconds, one line per object.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int max_rounds = 100000;

struct Shared {
  std::atomic<int> drained{0};     // rounds the receiver has finished
  std::atomic<long long> sent_at{0};  // steady_clock ticks of the current round's send
  long long latency_ns[max_rounds];
};

template <class Object, class Send, class Drain>
void measure(const char* what, int rounds, Object& object, Send send, Drain drain) {
  auto& shared = bench::shared_object<Shared>();
  mp::Process receiver{[&] {
    bench::pin_to_cpu(1);
    pollfd watched{object.ready_fd(), POLLIN, 0};
    drain();
    shared.drained.store(0);
    for (int round = 0; round < rounds; ++round) {
      while (::poll(&watched, 1, -1) != 1) {
      }
      const long long now = Clock::now().time_since_epoch().count();
      shared.latency_ns[round] = now - shared.sent_at.load();
      drain();
      shared.drained.store(round + 1);
    }
    return 0;
  }};
  shared.drained.store(-1);
  receiver.start();
  bench::pin_to_cpu(0);
  for (int round = 0; round < rounds; ++round) {
    while (shared.drained.load() != round) {
      std::this_thread::yield();
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // the receiver is asleep in poll
    shared.sent_at.store(Clock::now().time_since_epoch().count());
    send();
  }
  receiver.join();
  std::vector<long long> ns(shared.latency_ns, shared.latency_ns + rounds);
  std::ranges::sort(ns);
  const auto at = [&](double q) { return static_cast<double>(ns[static_cast<std::size_t>(q * (rounds - 1))]) / 1000.0; };
  std::printf("%-6s rounds %d  median %.1f us  p99 %.1f us  max %.1f us\n", what, rounds, at(0.5), at(0.99),
              static_cast<double>(ns.back()) / 1000.0);
  bench::release_shared_object(shared);
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = std::clamp(argc > 1 ? std::atoi(argv[1]) : 2000, 10, max_rounds);
  {
    mp::Queue<long> queue{64};
    measure("Queue", rounds, queue, [&] { queue.put(1); }, [&] {
      while (queue.try_get()) {
      }
    });
  }
  {
    auto [receiving, sending] = mp::Pipe<long>(false);
    measure("Pipe", rounds, receiving, [&, &sending = sending] { sending.send(1); }, [&, &receiving = receiving] {
      while (receiving.poll()) {
        (void)receiving.recv();
      }
    });
  }
  {
    mp::Event event;
    measure("Event", rounds, event, [&] { event.set(); }, [&] { event.clear(); });
  }
  return 0;
}
