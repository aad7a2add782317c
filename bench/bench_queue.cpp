// Moving messages between two processes, multiproc against what a user would otherwise pick.
//
//   throughput/<transport>/<message>  a forked producer (CPU 1) sends; this process (CPU 0) receives.
//                                     items_per_second is messages per second.
//   round_trip/<transport>/<message>  this process sends, a forked echo process sends it back.
//                                     Time per iteration is one round trip.
// Messages: long (8 bytes), Bytes64 (a 64-byte struct), string (a 64-byte std::string; through the
// codec for multiproc, as its 64 raw bytes for the others). Transports: SpscRing and MpmcRing
// (polled: a ring never blocks), Queue and Pipe (blocking), Queue_epoll (the receiver waits in
// epoll_wait on Queue::ready_fd(), as an event loop does), pipe(2), a Unix socketpair, and
// Boost.Interprocess message_queue. Compare rows of one run.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>

#include <benchmark/benchmark.h>
#include <boost/interprocess/ipc/message_queue.hpp>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;
namespace bip = boost::interprocess;

namespace {

constexpr std::size_t capacity = 1024;

struct Bytes64 {
  std::uint64_t word[8];
};

template <class Msg>
Msg make_message(std::uint64_t i) {
  if constexpr (std::is_same_v<Msg, std::string>) {
    std::string text(64, 'x');
    std::memcpy(text.data(), &i, sizeof i);
    return text;
  } else if constexpr (std::is_same_v<Msg, Bytes64>) {
    return Bytes64{{i, 1, 2, 3, 4, 5, 6, 7}};
  } else {
    return static_cast<Msg>(i);
  }
}

// The raw bytes a non-multiproc transport carries for a message, and back.
template <class Msg>
std::span<const std::byte> raw_bytes(const Msg& m) {
  if constexpr (std::is_same_v<Msg, std::string>) {
    return std::as_bytes(std::span(m.data(), m.size()));
  } else {
    return std::as_bytes(std::span(&m, 1));
  }
}
template <class Msg>
constexpr std::size_t raw_size = std::is_same_v<Msg, std::string> ? 64 : sizeof(Msg);
template <class Msg>
Msg from_raw(const std::byte* bytes) {
  if constexpr (std::is_same_v<Msg, std::string>) {
    return std::string(reinterpret_cast<const char*>(bytes), 64);
  } else {
    Msg m;
    std::memcpy(&m, bytes, sizeof m);
    return m;
  }
}

// ---- transports: one direction each, made before fork ----------------------------------------

// A ring never blocks: both sides poll it.
template <template <class> class Ring, class Msg>
struct PolledRing {
  Ring<Msg> ring{capacity};
  void send(const Msg& m) {
    while (!ring.try_push(m)) {
    }
  }
  Msg recv() {
    for (;;) {
      if (auto m = ring.try_pop()) return *m;
    }
  }
};
template <class Msg>
using SpscRingTransport = PolledRing<mp::SpscRing, Msg>;
template <class Msg>
using MpmcRingTransport = PolledRing<mp::MpmcRing, Msg>;

template <class Msg>
struct QueueTransport {
  mp::Queue<Msg> queue{capacity};
  void send(const Msg& m) { queue.put(m); }
  Msg recv() { return queue.get(); }
};

// A Queue read the way an event loop reads it: epoll on ready_fd(), then take until empty.
template <class Msg>
struct QueueEpollTransport {
  mp::Queue<Msg> queue{capacity};
  int epoll = -1;  // made by the receiving process on its first recv
  void send(const Msg& m) { queue.put(m); }
  Msg recv() {
    if (epoll < 0) {
      epoll = epoll_create1(EPOLL_CLOEXEC);
      epoll_event event{};
      event.events = EPOLLIN;
      if (epoll_ctl(epoll, EPOLL_CTL_ADD, queue.ready_fd(), &event) != 0) throw std::runtime_error("epoll_ctl");
    }
    for (;;) {
      if (auto m = queue.try_get()) return *m;  // an empty try re-arms the fd
      epoll_event event{};
      if (epoll_wait(epoll, &event, 1, -1) == 1) {
        std::uint64_t count;
        (void)!read(queue.ready_fd(), &count, sizeof count);
      }
    }
  }
};

template <class Msg>
struct PipeTransport {
  std::pair<mp::Connection<Msg>, mp::Connection<Msg>> ends = mp::Pipe<Msg>(false, capacity);
  void send(const Msg& m) { ends.second.send(m); }
  Msg recv() { return ends.first.recv(); }
};

// pipe(2) or a socketpair: one write(2) per message, and reads until the message is whole.
template <class Msg, bool Socket>
struct FdTransport {
  int fds[2];
  FdTransport() {
    const int rc = Socket ? ::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) : ::pipe(fds);
    if (rc != 0) throw std::runtime_error("pipe/socketpair");
  }
  ~FdTransport() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  void send(const Msg& m) {
    const auto bytes = raw_bytes(m);
    for (std::size_t done = 0; done < bytes.size();) {
      const ssize_t n = ::write(fds[1], bytes.data() + done, bytes.size() - done);
      if (n > 0) done += static_cast<std::size_t>(n);
    }
  }
  Msg recv() {
    std::byte buffer[raw_size<Msg>];
    for (std::size_t done = 0; done < sizeof buffer;) {
      const ssize_t n = ::read(fds[0], buffer + done, sizeof buffer - done);
      if (n > 0) done += static_cast<std::size_t>(n);
    }
    return from_raw<Msg>(buffer);
  }
};

template <class Msg>
struct BoostMessageQueueTransport {
  std::string name = "multiproc-bench-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++);
  bip::message_queue queue{bip::create_only, name.c_str(), capacity, raw_size<Msg>};
  ~BoostMessageQueueTransport() { bip::message_queue::remove(name.c_str()); }
  static int& counter() {
    static int n = 0;
    return n;
  }
  void send(const Msg& m) {
    const auto bytes = raw_bytes(m);
    queue.send(bytes.data(), bytes.size(), 0);
  }
  Msg recv() {
    std::byte buffer[raw_size<Msg>];
    bip::message_queue::size_type received = 0;
    unsigned priority = 0;
    queue.receive(buffer, sizeof buffer, received, priority);
    return from_raw<Msg>(buffer);
  }
};

// ---- the two measurements ------------------------------------------------------------------------

template <class Transport, class Msg>
void throughput(benchmark::State& state) {
  Transport transport;
  const auto messages = static_cast<std::uint64_t>(state.max_iterations);
  mp::Process producer{[&] {
    bench::pin_to_cpu(1);
    for (std::uint64_t i = 0; i < messages; ++i) transport.send(make_message<Msg>(i));
  }};
  bench::pin_to_cpu(0);
  producer.start();
  for (auto _ : state) {
    benchmark::DoNotOptimize(transport.recv());
  }
  producer.join();
  state.SetItemsProcessed(state.iterations());
}

template <class Transport, class Msg>
void round_trip(benchmark::State& state) {
  Transport there, back;
  const auto trips = static_cast<std::uint64_t>(state.max_iterations);
  mp::Process echo{[&] {
    bench::pin_to_cpu(1);
    for (std::uint64_t i = 0; i < trips; ++i) back.send(there.recv());
  }};
  bench::pin_to_cpu(0);
  echo.start();
  const Msg message = make_message<Msg>(42);
  for (auto _ : state) {
    there.send(message);
    benchmark::DoNotOptimize(back.recv());
  }
  echo.join();
}

template <template <class> class Transport, class Msg>
void register_pair(const std::string& transport, const std::string& message) {
  benchmark::RegisterBenchmark(("throughput/" + transport + "/" + message).c_str(), throughput<Transport<Msg>, Msg>)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("round_trip/" + transport + "/" + message).c_str(), round_trip<Transport<Msg>, Msg>)
      ->UseRealTime();
}

template <class Msg>
using UnixPipe = FdTransport<Msg, false>;
template <class Msg>
using SocketPair = FdTransport<Msg, true>;

template <class Msg>
void register_message(const std::string& message) {
  if constexpr (std::is_trivially_copyable_v<Msg>) {
    register_pair<SpscRingTransport, Msg>("SpscRing", message);
    register_pair<MpmcRingTransport, Msg>("MpmcRing", message);
  }
  register_pair<QueueTransport, Msg>("Queue", message);
  register_pair<QueueEpollTransport, Msg>("Queue_epoll", message);
  register_pair<PipeTransport, Msg>("Pipe", message);
  register_pair<UnixPipe, Msg>("pipe2", message);
  register_pair<SocketPair, Msg>("socketpair", message);
  register_pair<BoostMessageQueueTransport, Msg>("boost_message_queue", message);
}

}  // namespace

int main(int argc, char** argv) {
  register_message<long>("long");
  register_message<Bytes64>("bytes64");
  register_message<std::string>("string64");
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
