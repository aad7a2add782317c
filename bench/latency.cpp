// Round-trip latency distributions and throughput, multiproc against its peers, between two
// processes pinned to CPUs 0 and 1. One run: one system, one round, every payload asked for; one
// JSON object per payload on stdout. bench/report.py runs all systems in interleaved rounds.
//
//   latency --system "multiproc SpscRing loan" --payloads 8,65536 --round 0
//
// Ping-pong: the ping side sends message i (its first 8 bytes hold i), the pong side sends it
// back, the ping side times the round trip (steady_clock) after a warm-up. Throughput: one side
// streams for a fixed time, the other counts. Copying systems move every payload byte both ways;
// zero-copy systems (the loan API, iceoryx) build only the 8-byte sequence number in place,
// as iceoryx's own iceperf does. How each peer is used, as its documentation advises for speed:
//   * iceoryx 2.0 (classic): RouDi is started and stopped by this program with its own config
//     (mempools big enough for 4 MiB plus a chunk header); untyped publisher/subscriber,
//     loan/publish/take/release, busy polling on take() (iceperf's default, the fastest mode);
//     BLOCK_PRODUCER / WAIT_FOR_CONSUMER so throughput loses nothing.
//   * ZeroMQ 4.3: PAIR (or PUSH/PULL) over ipc://, one I/O thread, blocking send/recv, the receive
//     into a zmq::message_t (no second copy), high-water mark 1000 (the default).
//   * POSIX mq: mq_send/mq_receive, blocking, message size = the payload (fails above the
//     kernel's msgsize limit: reported as unsupported).
//   * pipe: F_SETPIPE_SZ raised to 1 MiB (pipe-max-size); socketpair: AF_UNIX SOCK_STREAM with
//     4 MiB buffers; both blocking read/write loops.
//   * Boost.Interprocess message_queue: send/receive (blocking).
//   * multiproc: SpscRing (busy polling, as it is meant to be used), SpscRing loan/take, Queue
//     (blocking put/get: spin briefly, then futex), Queue loan/take (blocking the same way).
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/interprocess/ipc/message_queue.hpp>

#include <multiproc/queue.hpp>
#include <multiproc/spsc_ring.hpp>

#include "support.hpp"

#ifdef BENCH_HAVE_ZMQ
#include <zmq.hpp>
#endif
#ifdef BENCH_HAVE_ICEORYX
#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"
#endif

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::uint64_t stop_sequence = ~std::uint64_t{0};

// One side of a link, inside its (pinned) process.
class End {
 public:
  virtual ~End() = default;
  virtual void send(std::uint64_t sequence) = 0;  // a payload-sized message starting with `sequence`
  virtual std::uint64_t receive() = 0;            // waits for the next message; its sequence
};

// A two-way connection, set up before the fork; each side makes its End after it.
class Link {
 public:
  virtual ~Link() = default;
  virtual std::unique_ptr<End> ping_end() = 0;
  virtual std::unique_ptr<End> pong_end() = 0;
};

std::string unique(const std::string& tag) { return "mpbench-" + std::to_string(::getpid()) + "-" + tag; }

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
}

// ---- multiproc --------------------------------------------------------------------------------

template <std::size_t N>
struct Message {
  std::array<std::byte, N> bytes;
};
template <std::size_t N>
std::uint64_t sequence_of(const Message<N>& m) {
  std::uint64_t s;
  std::memcpy(&s, m.bytes.data(), sizeof s);
  return s;
}

// Ring capacities: enough for throughput, bounded in shared memory for the big payloads
// (two rings of 4 x 4 MiB = 32 MiB at 4 MiB).
constexpr std::size_t ring_capacity(std::size_t payload) {
  return payload <= 1024 ? 1024 : payload <= 65536 ? 64 : payload <= 1048576 ? 8 : 4;
}

template <std::size_t N>
class SpscCopyEnd final : public End {
 public:
  SpscCopyEnd(multiproc::SpscRing<Message<N>>& out, multiproc::SpscRing<Message<N>>& in) : out_(out), in_(in) {
    message_->bytes.fill(std::byte{1});
  }
  void send(std::uint64_t sequence) override {
    std::memcpy(message_->bytes.data(), &sequence, sizeof sequence);
    while (!out_.try_push(*message_)) {
    }
  }
  std::uint64_t receive() override {
    for (;;) {
      if (auto m = in_.try_pop()) return sequence_of(*m);
    }
  }

 private:
  multiproc::SpscRing<Message<N>>& out_;
  multiproc::SpscRing<Message<N>>& in_;
  std::unique_ptr<Message<N>> message_ = std::make_unique<Message<N>>();
};

template <std::size_t N>
class SpscLoanEnd final : public End {
 public:
  SpscLoanEnd(multiproc::SpscRing<Message<N>>& out, multiproc::SpscRing<Message<N>>& in) : out_(out), in_(in) {}
  void send(std::uint64_t sequence) override {
    auto slot = out_.try_loan();
    while (!slot) slot = out_.try_loan();
    std::memcpy(slot->bytes.data(), &sequence, sizeof sequence);  // built in place
    slot.publish();
  }
  std::uint64_t receive() override {
    for (;;) {
      if (auto view = in_.try_take()) return sequence_of(*view);  // read in place, freed here
    }
  }

 private:
  multiproc::SpscRing<Message<N>>& out_;
  multiproc::SpscRing<Message<N>>& in_;
};

template <std::size_t N, bool loan>
class SpscLink final : public Link {
 public:
  std::unique_ptr<End> ping_end() override { return make(there_, back_); }
  std::unique_ptr<End> pong_end() override { return make(back_, there_); }

 private:
  static std::unique_ptr<End> make(multiproc::SpscRing<Message<N>>& out, multiproc::SpscRing<Message<N>>& in) {
    if constexpr (loan) {
      return std::make_unique<SpscLoanEnd<N>>(out, in);
    } else {
      return std::make_unique<SpscCopyEnd<N>>(out, in);
    }
  }
  multiproc::SpscRing<Message<N>> there_{ring_capacity(N)};
  multiproc::SpscRing<Message<N>> back_{ring_capacity(N)};
};

template <std::size_t N>
class QueueEnd final : public End {
 public:
  QueueEnd(multiproc::Queue<Message<N>>& out, multiproc::Queue<Message<N>>& in) : out_(out), in_(in) {
    message_->bytes.fill(std::byte{1});
  }
  void send(std::uint64_t sequence) override {
    std::memcpy(message_->bytes.data(), &sequence, sizeof sequence);
    out_.put(*message_);
  }
  std::uint64_t receive() override { return sequence_of(in_.get()); }

 private:
  multiproc::Queue<Message<N>>& out_;
  multiproc::Queue<Message<N>>& in_;
  std::unique_ptr<Message<N>> message_ = std::make_unique<Message<N>>();
};

template <std::size_t N>
class QueueLoanEnd final : public End {
 public:
  QueueLoanEnd(multiproc::Queue<Message<N>>& out, multiproc::Queue<Message<N>>& in) : out_(out), in_(in) {}
  void send(std::uint64_t sequence) override {
    auto slot = out_.loan();
    std::memcpy(slot->bytes.data(), &sequence, sizeof sequence);  // built in place
    slot.publish();
  }
  std::uint64_t receive() override { return sequence_of(*in_.take()); }  // read in place, freed here

 private:
  multiproc::Queue<Message<N>>& out_;
  multiproc::Queue<Message<N>>& in_;
};

template <std::size_t N, bool loan>
class QueueLink final : public Link {
 public:
  std::unique_ptr<End> ping_end() override { return make(there_, back_); }
  std::unique_ptr<End> pong_end() override { return make(back_, there_); }

 private:
  static std::unique_ptr<End> make(multiproc::Queue<Message<N>>& out, multiproc::Queue<Message<N>>& in) {
    if constexpr (loan) {
      return std::make_unique<QueueLoanEnd<N>>(out, in);
    } else {
      return std::make_unique<QueueEnd<N>>(out, in);
    }
  }
  multiproc::Queue<Message<N>> there_{ring_capacity(N)};
  multiproc::Queue<Message<N>> back_{ring_capacity(N)};
};

template <template <std::size_t> class Make>
std::unique_ptr<Link> for_payload(std::size_t payload) {
  switch (payload) {
    case 8: return Make<8>::link();
    case 64: return Make<64>::link();
    case 1024: return Make<1024>::link();
    case 65536: return Make<65536>::link();
    case 1048576: return Make<1048576>::link();
    case 4194304: return Make<4194304>::link();
    default: throw std::invalid_argument("payload must be one of 8, 64, 1024, 65536, 1048576, 4194304");
  }
}
template <std::size_t N> struct MakeSpscCopy { static std::unique_ptr<Link> link() { return std::make_unique<SpscLink<N, false>>(); } };
template <std::size_t N> struct MakeSpscLoan { static std::unique_ptr<Link> link() { return std::make_unique<SpscLink<N, true>>(); } };
template <std::size_t N> struct MakeQueue { static std::unique_ptr<Link> link() { return std::make_unique<QueueLink<N, false>>(); } };
template <std::size_t N> struct MakeQueueLoan { static std::unique_ptr<Link> link() { return std::make_unique<QueueLink<N, true>>(); } };

// ---- byte streams: pipe, socketpair --------------------------------------------------------------

class StreamEnd final : public End {
 public:
  StreamEnd(int out, int in, std::size_t payload) : out_(out), in_(in), buffer_(payload, std::byte{1}) {}
  void send(std::uint64_t sequence) override {
    std::memcpy(buffer_.data(), &sequence, sizeof sequence);
    for (std::size_t done = 0; done < buffer_.size();) {
      const ssize_t n = ::write(out_, buffer_.data() + done, buffer_.size() - done);
      check(n > 0, "write");
      done += static_cast<std::size_t>(n);
    }
  }
  std::uint64_t receive() override {
    for (std::size_t done = 0; done < buffer_.size();) {
      const ssize_t n = ::read(in_, buffer_.data() + done, buffer_.size() - done);
      check(n > 0, "read");
      done += static_cast<std::size_t>(n);
    }
    std::uint64_t s;
    std::memcpy(&s, buffer_.data(), sizeof s);
    return s;
  }

 private:
  int out_, in_;
  std::vector<std::byte> buffer_;
};

class StreamLink final : public Link {
 public:
  StreamLink(bool socket, std::size_t payload) : payload_(payload) {
    if (socket) {
      check(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds_) == 0, "socketpair");
      for (int fd : fds_) {
        const int bytes = 4 << 20;
        ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
      }
      ping_out_ = pong_in_ = -1;
    } else {
      int there[2], back[2];
      check(::pipe(there) == 0 && ::pipe(back) == 0, "pipe");
      for (int fd : {there[1], back[1]}) ::fcntl(fd, F_SETPIPE_SZ, 1 << 20);
      ping_out_ = there[1];
      pong_in_ = there[0];
      pong_out_ = back[1];
      ping_in_ = back[0];
    }
    socket_ = socket;
  }
  std::unique_ptr<End> ping_end() override {
    return socket_ ? std::make_unique<StreamEnd>(fds_[0], fds_[0], payload_) : std::make_unique<StreamEnd>(ping_out_, ping_in_, payload_);
  }
  std::unique_ptr<End> pong_end() override {
    return socket_ ? std::make_unique<StreamEnd>(fds_[1], fds_[1], payload_) : std::make_unique<StreamEnd>(pong_out_, pong_in_, payload_);
  }
  ~StreamLink() override {
    for (int fd : {fds_[0], fds_[1], ping_out_, ping_in_, pong_out_, pong_in_}) {
      if (fd >= 0) ::close(fd);
    }
  }

 private:
  std::size_t payload_;
  bool socket_ = false;
  int fds_[2] = {-1, -1};
  int ping_out_ = -1, ping_in_ = -1, pong_out_ = -1, pong_in_ = -1;
};

// ---- POSIX mq ------------------------------------------------------------------------------------

class MqEnd final : public End {
 public:
  MqEnd(const std::string& out, const std::string& in, std::size_t payload)
      : out_(::mq_open(out.c_str(), O_WRONLY)), in_(::mq_open(in.c_str(), O_RDONLY)), buffer_(payload, std::byte{1}) {
    check(out_ != static_cast<mqd_t>(-1) && in_ != static_cast<mqd_t>(-1), "mq_open");
  }
  ~MqEnd() override {
    ::mq_close(out_);
    ::mq_close(in_);
  }
  void send(std::uint64_t sequence) override {
    std::memcpy(buffer_.data(), &sequence, sizeof sequence);
    check(::mq_send(out_, reinterpret_cast<const char*>(buffer_.data()), buffer_.size(), 0) == 0, "mq_send");
  }
  std::uint64_t receive() override {
    check(::mq_receive(in_, reinterpret_cast<char*>(buffer_.data()), buffer_.size(), nullptr) >= 0, "mq_receive");
    std::uint64_t s;
    std::memcpy(&s, buffer_.data(), sizeof s);
    return s;
  }

 private:
  mqd_t out_, in_;
  std::vector<std::byte> buffer_;
};

class MqLink final : public Link {
 public:
  explicit MqLink(std::size_t payload) : payload_(payload) {
    mq_attr attributes{};
    attributes.mq_maxmsg = 10;  // the kernel's default msg_max
    attributes.mq_msgsize = static_cast<long>(payload);
    for (const auto& name : {there_, back_}) {
      const mqd_t q = ::mq_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600, &attributes);
      check(q != static_cast<mqd_t>(-1), "mq_open (payload above the kernel's mq limits?)");
      ::mq_close(q);
    }
  }
  ~MqLink() override {
    ::mq_unlink(there_.c_str());
    ::mq_unlink(back_.c_str());
  }
  std::unique_ptr<End> ping_end() override { return std::make_unique<MqEnd>(there_, back_, payload_); }
  std::unique_ptr<End> pong_end() override { return std::make_unique<MqEnd>(back_, there_, payload_); }

 private:
  std::size_t payload_;
  std::string there_ = "/" + unique("there"), back_ = "/" + unique("back");
};

// ---- Boost.Interprocess message_queue ------------------------------------------------------------

namespace bip = boost::interprocess;

class BoostMqEnd final : public End {
 public:
  BoostMqEnd(const std::string& out, const std::string& in, std::size_t payload)
      : out_(bip::open_only, out.c_str()), in_(bip::open_only, in.c_str()), buffer_(payload, std::byte{1}) {}
  void send(std::uint64_t sequence) override {
    std::memcpy(buffer_.data(), &sequence, sizeof sequence);
    out_.send(buffer_.data(), buffer_.size(), 0);
  }
  std::uint64_t receive() override {
    bip::message_queue::size_type received = 0;
    unsigned priority = 0;
    in_.receive(buffer_.data(), buffer_.size(), received, priority);
    std::uint64_t s;
    std::memcpy(&s, buffer_.data(), sizeof s);
    return s;
  }

 private:
  bip::message_queue out_, in_;
  std::vector<std::byte> buffer_;
};

class BoostMqLink final : public Link {
 public:
  explicit BoostMqLink(std::size_t payload) : payload_(payload) {
    for (const auto& name : {there_, back_}) {
      bip::message_queue(bip::create_only, name.c_str(), ring_capacity(payload), payload);
    }
  }
  ~BoostMqLink() override {
    bip::message_queue::remove(there_.c_str());
    bip::message_queue::remove(back_.c_str());
  }
  std::unique_ptr<End> ping_end() override { return std::make_unique<BoostMqEnd>(there_, back_, payload_); }
  std::unique_ptr<End> pong_end() override { return std::make_unique<BoostMqEnd>(back_, there_, payload_); }

 private:
  std::size_t payload_;
  std::string there_ = unique("bmq-there"), back_ = unique("bmq-back");
};

// ---- ZeroMQ --------------------------------------------------------------------------------------

#ifdef BENCH_HAVE_ZMQ
class ZmqEnd final : public End {
 public:
  // PAIR: one socket each way round (`bind_first` binds `first`); PUSH/PULL: a PUSH and a PULL socket.
  ZmqEnd(bool pair, bool ping, const std::string& a, const std::string& b, std::size_t payload)
      : buffer_(payload, std::byte{1}) {
    if (pair) {
      out_ = zmq::socket_t(context_, zmq::socket_type::pair);
      ping ? out_.bind(a) : out_.connect(a);
    } else {
      out_ = zmq::socket_t(context_, zmq::socket_type::push);
      in_ = zmq::socket_t(context_, zmq::socket_type::pull);
      if (ping) {
        out_.bind(a);
        in_.bind(b);
      } else {
        in_.connect(a);
        out_.connect(b);
      }
    }
  }
  void send(std::uint64_t sequence) override {
    std::memcpy(buffer_.data(), &sequence, sizeof sequence);
    (void)out_.send(zmq::buffer(buffer_.data(), buffer_.size()), zmq::send_flags::none);
  }
  std::uint64_t receive() override {
    zmq::socket_t& in = in_ ? in_ : out_;
    (void)in.recv(message_, zmq::recv_flags::none);
    std::uint64_t s;
    std::memcpy(&s, message_.data(), sizeof s);
    return s;
  }

 private:
  zmq::context_t context_{1};
  zmq::socket_t out_, in_;
  zmq::message_t message_;
  std::vector<std::byte> buffer_;
};

class ZmqLink final : public Link {
 public:
  ZmqLink(bool pair, std::size_t payload) : pair_(pair), payload_(payload) {}
  ~ZmqLink() override {
    ::unlink(a_.c_str());
    ::unlink(b_.c_str());
  }
  std::unique_ptr<End> ping_end() override { return std::make_unique<ZmqEnd>(pair_, true, "ipc://" + a_, "ipc://" + b_, payload_); }
  std::unique_ptr<End> pong_end() override { return std::make_unique<ZmqEnd>(pair_, false, "ipc://" + a_, "ipc://" + b_, payload_); }

 private:
  bool pair_;
  std::size_t payload_;
  std::string a_ = "/tmp/" + unique("zmq-a"), b_ = "/tmp/" + unique("zmq-b");
};
#endif

// ---- iceoryx -------------------------------------------------------------------------------------

#ifdef BENCH_HAVE_ICEORYX
class IceoryxEnd final : public End {
 public:
  IceoryxEnd(bool ping, std::size_t payload) : payload_(static_cast<std::uint32_t>(payload)) {
    iox::log::LogManager::GetLogManager().SetDefaultLogLevel(iox::log::LogLevel::kError);
    const std::string me = unique(ping ? "ping" : "pong");
    iox::runtime::PoshRuntime::initRuntime(iox::RuntimeName_t(iox::cxx::TruncateToCapacity, me.c_str()));
    iox::popo::PublisherOptions publisher_options;
    publisher_options.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
    iox::popo::SubscriberOptions subscriber_options;
    subscriber_options.queueFullPolicy = iox::popo::QueueFullPolicy::BLOCK_PRODUCER;
    // As deep as our rings (iceoryx allows at most 256); the mempools below hold both queues.
    subscriber_options.queueCapacity =
        std::min<std::uint64_t>(ring_capacity(payload), iox::MAX_SUBSCRIBER_QUEUE_CAPACITY);
    const iox::capro::IdString_t service{"multiproc-bench"}, event{"payload"};
    const iox::capro::IdString_t out{ping ? "Ping" : "Pong"}, in{ping ? "Pong" : "Ping"};
    publisher_ = std::make_unique<iox::popo::UntypedPublisher>(
        iox::capro::ServiceDescription{service, out, event}, publisher_options);
    subscriber_ = std::make_unique<iox::popo::UntypedSubscriber>(
        iox::capro::ServiceDescription{service, in, event}, subscriber_options);
    // Both directions connected before the first message (history 0: earlier messages are lost).
    while (!publisher_->hasSubscribers() ||
           subscriber_->getSubscriptionState() != iox::SubscribeState::SUBSCRIBED) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  void send(std::uint64_t sequence) override {
    for (;;) {
      auto chunk = publisher_->loan(payload_, alignof(std::uint64_t));
      if (!chunk.has_error()) {
        std::memcpy(chunk.value(), &sequence, sizeof sequence);  // built in place
        publisher_->publish(chunk.value());
        return;
      }
    }
  }
  std::uint64_t receive() override {
    for (;;) {  // busy polling
      auto chunk = subscriber_->take();
      if (!chunk.has_error()) {
        std::uint64_t s;
        std::memcpy(&s, chunk.value(), sizeof s);
        subscriber_->release(chunk.value());
        return s;
      }
    }
  }

 private:
  std::uint32_t payload_;
  std::unique_ptr<iox::popo::UntypedPublisher> publisher_;
  std::unique_ptr<iox::popo::UntypedSubscriber> subscriber_;
};

// RouDi, started for this run with a config whose mempools hold 4 MiB chunks, and stopped after.
class IceoryxLink final : public Link {
 public:
  explicit IceoryxLink(std::size_t payload) : payload_(payload) {
    FILE* file = std::fopen(config_.c_str(), "w");
    check(file != nullptr, "roudi config");
    std::fputs("[general]\nversion = 1\n\n[[segment]]\n", file);
    for (auto [size, count] : {std::pair{256, 1024}, {2048, 1024}, {66560, 160}, {1052672, 24}, {4198400, 16}}) {
      std::fprintf(file, "\n[[segment.mempool]]\nsize = %d\ncount = %d\n", size, count);
    }
    std::fclose(file);
    roudi_ = ::fork();
    check(roudi_ >= 0, "fork");
    if (roudi_ == 0) {
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::execlp("iox-roudi", "iox-roudi", "-c", config_.c_str(), "-l", "error", nullptr);
      ::_exit(127);
    }
  }
  ~IceoryxLink() override {
    ::kill(roudi_, SIGTERM);
    ::waitpid(roudi_, nullptr, 0);
    ::unlink(config_.c_str());
  }
  std::unique_ptr<End> ping_end() override { return std::make_unique<IceoryxEnd>(true, payload_); }
  std::unique_ptr<End> pong_end() override { return std::make_unique<IceoryxEnd>(false, payload_); }

 private:
  std::size_t payload_;
  std::string config_ = "/tmp/" + unique("roudi.toml");
  pid_t roudi_ = -1;
};
#endif

std::unique_ptr<Link> make_link(const std::string& system, std::size_t payload) {
  if (system == "multiproc SpscRing") return for_payload<MakeSpscCopy>(payload);
  if (system == "multiproc SpscRing loan") return for_payload<MakeSpscLoan>(payload);
  if (system == "multiproc Queue") return for_payload<MakeQueue>(payload);
  if (system == "multiproc Queue loan") return for_payload<MakeQueueLoan>(payload);
  if (system == "pipe") return std::make_unique<StreamLink>(false, payload);
  if (system == "socketpair") return std::make_unique<StreamLink>(true, payload);
  if (system == "posix mq") return std::make_unique<MqLink>(payload);
  if (system == "boost message_queue") return std::make_unique<BoostMqLink>(payload);
#ifdef BENCH_HAVE_ZMQ
  if (system == "zeromq ipc PAIR") return std::make_unique<ZmqLink>(true, payload);
  if (system == "zeromq ipc PUSH/PULL") return std::make_unique<ZmqLink>(false, payload);
#endif
#ifdef BENCH_HAVE_ICEORYX
  if (system == "iceoryx") return std::make_unique<IceoryxLink>(payload);
#endif
  throw std::invalid_argument("unknown or not built: system \"" + system + "\"");
}

// ---- the measurement -----------------------------------------------------------------------------

// Filled by the two children, read by the parent.
struct Outcome {
  std::uint64_t samples;
  double p50, p99, p999, max, mean;
  std::uint64_t throughput_messages;
  double throughput_seconds;
  int failed;  // set by a child whose side threw
};

struct Plan {
  std::uint64_t samples, warmup;
  double sampling_seconds;  // a run stops sampling after this long, with the samples it has
  double throughput_seconds;
};

// 10^5 round trips per run up to 1 KiB; fewer for big payloads, so that the whole report (5 rounds
// of every system) stays near 10 minutes: a round trip of a copying peer at 4 MiB takes milliseconds.
// A run also stops sampling after 2 s and warming up after 0.5 s: on a loaded machine a blocking
// system's round trip can take milliseconds. The JSON says how many samples each run took.
Plan plan_for(std::size_t payload, double scale) {
  const auto scaled = [scale](double n) { return static_cast<std::uint64_t>(std::max(50.0, n * scale)); };
  if (payload <= 1024) return {scaled(100000), scaled(10000), 2.0, 0.25};
  if (payload <= 65536) return {scaled(10000), scaled(1000), 2.0, 0.25};
  if (payload <= 1048576) return {scaled(1000), scaled(100), 2.0, 0.25};
  return {scaled(200), scaled(20), 2.0, 0.25};
}

double percentile(const std::vector<std::uint64_t>& sorted, double q) {
  return static_cast<double>(sorted[std::min(sorted.size() - 1, static_cast<std::size_t>(q * static_cast<double>(sorted.size())))]);
}

void ping_side(Link& link, const Plan& plan, Outcome& outcome) {
  bench::pin_to_cpu(0);
  auto end = link.ping_end();
  std::uint64_t sequence = 0;
  const auto warm = Clock::now() + std::chrono::milliseconds(500);
  for (std::uint64_t i = 0; i < plan.warmup && (i % 256 != 0 || Clock::now() < warm); ++i, ++sequence) {
    end->send(sequence);
    if (end->receive() != sequence) throw std::runtime_error("warm-up: a message came back out of order");
  }
  std::vector<std::uint64_t> rtt;
  rtt.reserve(plan.samples);
  const auto give_up = Clock::now() + std::chrono::duration<double>(plan.sampling_seconds);
  while (rtt.size() < plan.samples && (rtt.size() % 256 != 0 || Clock::now() < give_up)) {
    const auto start = Clock::now();
    end->send(sequence);
    const std::uint64_t back = end->receive();
    rtt.push_back(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count()));
    if (back != sequence++) throw std::runtime_error("a message came back out of order");
  }
  end->send(stop_sequence);  // the pong side turns to receiving the stream
  // Throughput: stream for a fixed time, then the stop message.
  const auto until = Clock::now() + std::chrono::duration<double>(plan.throughput_seconds);
  std::uint64_t streamed = 0;
  while (Clock::now() < until) {
    for (int batch = 0; batch < 64; ++batch) end->send(streamed++);
  }
  end->send(stop_sequence);
  (void)end->receive();  // the pong side's acknowledgement: it has everything
  double sum = 0;
  for (auto v : rtt) sum += static_cast<double>(v);
  std::sort(rtt.begin(), rtt.end());
  outcome.samples = rtt.size();
  outcome.p50 = percentile(rtt, 0.5);
  outcome.p99 = percentile(rtt, 0.99);
  outcome.p999 = percentile(rtt, 0.999);
  outcome.max = static_cast<double>(rtt.back());
  outcome.mean = sum / static_cast<double>(rtt.size());
}

void pong_side(Link& link, Outcome& outcome) {
  bench::pin_to_cpu(1);
  auto end = link.pong_end();
  for (std::uint64_t s; (s = end->receive()) != stop_sequence;) end->send(s);
  std::uint64_t expected = 0;
  Clock::time_point first{};
  for (std::uint64_t s; (s = end->receive()) != stop_sequence; ++expected) {
    if (s != expected) throw std::runtime_error("the stream arrived out of order");
    if (expected == 0) first = Clock::now();
  }
  const auto last = Clock::now();
  end->send(0);
  // The first message starts the clock: count the ones after it.
  outcome.throughput_messages = expected > 0 ? expected - 1 : 0;
  outcome.throughput_seconds = std::chrono::duration<double>(last - first).count();
}

int run_child(const std::function<void()>& side, Outcome& outcome) {
  try {
    side();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "latency: %s\n", e.what());
    outcome.failed = 1;
    return 1;
  }
}

void measure(const std::string& system, std::size_t payload, int round, double scale) {
  const Plan plan = plan_for(payload, scale);
  Outcome& outcome = bench::shared_object<Outcome>();
  std::string error;
  try {
    auto link = make_link(system, payload);
    const pid_t pong = ::fork();
    // exit(), not _exit(): iceoryx's runtime (a static) unregisters from RouDi in its destructor.
    if (pong == 0) std::exit(run_child([&] { pong_side(*link, outcome); }, outcome));
    const pid_t ping = ::fork();
    if (ping == 0) std::exit(run_child([&] { ping_side(*link, plan, outcome); }, outcome));
    int status_ping = 0, status_pong = 0;
    ::waitpid(ping, &status_ping, 0);
    if (status_ping != 0) ::kill(pong, SIGKILL);
    ::waitpid(pong, &status_pong, 0);
    if (status_ping != 0 || status_pong != 0 || outcome.failed) error = "a side failed";
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!error.empty()) {
    std::printf("{\"system\": \"%s\", \"payload_bytes\": %zu, \"round\": %d, \"error\": \"%s\"}\n", system.c_str(),
                payload, round, error.c_str());
  } else {
    std::printf(
        "{\"system\": \"%s\", \"payload_bytes\": %zu, \"round\": %d, \"samples\": %llu, \"rtt_p50_ns\": %.0f, "
        "\"rtt_p99_ns\": %.0f, \"rtt_p999_ns\": %.0f, \"rtt_max_ns\": %.0f, \"rtt_mean_ns\": %.0f, "
        "\"msgs_per_s\": %.0f, \"throughput_messages\": %llu}\n",
        system.c_str(), payload, round, static_cast<unsigned long long>(outcome.samples), outcome.p50, outcome.p99,
        outcome.p999, outcome.max, outcome.mean,
        outcome.throughput_seconds > 0 ? static_cast<double>(outcome.throughput_messages) / outcome.throughput_seconds : 0.0,
        static_cast<unsigned long long>(outcome.throughput_messages));
  }
  std::fflush(stdout);
  bench::release_shared_object(outcome);
}

std::vector<std::size_t> parse_payloads(const std::string& list) {
  std::vector<std::size_t> payloads;
  for (std::size_t at = 0; at < list.size();) {
    const std::size_t comma = std::min(list.find(',', at), list.size());
    payloads.push_back(std::stoull(list.substr(at, comma - at)));
    at = comma + 1;
  }
  return payloads;
}

}  // namespace

int main(int argc, char** argv) {
  std::string system = "multiproc SpscRing";
  std::string payloads = "8,64,1024,65536,1048576,4194304";
  int round = 0;
  double scale = 1.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string option = argv[i];
    if (option == "--system") system = argv[i + 1];
    else if (option == "--payloads") payloads = argv[i + 1];
    else if (option == "--round") round = std::stoi(argv[i + 1]);
    else if (option == "--scale") scale = std::stod(argv[i + 1]);  // sample counts x scale (smoke runs)
    else {
      std::fprintf(stderr, "usage: latency [--system NAME] [--payloads 8,64,...] [--round N] [--scale X]\n");
      return 2;
    }
  }
  if (argc % 2 == 0) {
    std::fprintf(stderr, "usage: latency [--system NAME] [--payloads 8,64,...] [--round N] [--scale X]\n");
    return 2;
  }
  // Copying a 4 MiB message by value (Queue::get, SpscRing::try_pop) needs more than 8 MiB of stack.
  rlimit stack{};
  ::getrlimit(RLIMIT_STACK, &stack);
  stack.rlim_cur = std::min<rlim_t>(stack.rlim_max, rlim_t{256} << 20);
  ::setrlimit(RLIMIT_STACK, &stack);
  for (std::size_t payload : parse_payloads(payloads)) measure(system, payload, round, scale);
  return 0;
}
