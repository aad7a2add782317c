// Readiness file descriptors (Queue::ready_fd, Connection::ready_fd) under epoll, across processes.
#define BOOST_TEST_MODULE ready
#include <sys/epoll.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;
using namespace std::chrono_literals;

namespace {

// An epoll set watching one fd for input.
struct Watch {
  explicit Watch(int fd) : epoll(::epoll_create1(EPOLL_CLOEXEC)), watched(fd) {
    BOOST_REQUIRE(epoll >= 0);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    BOOST_REQUIRE_EQUAL(::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event), 0);
  }
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;
  ~Watch() { ::close(epoll); }
  // True if the fd is readable within `timeout`, without clearing it.
  bool readable(std::chrono::milliseconds timeout) const {
    epoll_event event{};
    return ::epoll_wait(epoll, &event, 1, static_cast<int>(timeout.count())) == 1;
  }
  // True if the fd became readable within `timeout`; clears it (reads the eventfd) if so, as an
  // edge-triggered loop may.
  bool fired(std::chrono::milliseconds timeout) const {
    epoll_event event{};
    const int n = ::epoll_wait(epoll, &event, 1, static_cast<int>(timeout.count()));
    if (n == 1) {
      std::uint64_t count = 0;
      BOOST_REQUIRE_EQUAL(::read(watched, &count, sizeof count), static_cast<ssize_t>(sizeof count));
    }
    return n == 1;
  }
  int epoll;
  int watched;
};

}  // namespace

BOOST_AUTO_TEST_CASE(queue_fd_fires_when_another_process_puts_and_not_before) {
  for (const bool codec : {false, true}) {
    mp::Queue<long> numbers(16);
    mp::Queue<std::string> texts(16);
    const int fd = codec ? texts.ready_fd() : numbers.ready_fd();
    const Watch watch(fd);
    BOOST_TEST(!watch.fired(100ms));  // empty: nothing to say
    test::Notice go;
    mp::Process producer{[&] {
      for (int round = 0; round < 3; ++round) {
        go.wait();
        codec ? texts.put("message " + std::to_string(round)) : numbers.put(round);
      }
    }};
    producer.start();
    for (int round = 0; round < 3; ++round) {
      BOOST_TEST(!watch.fired(50ms));  // the producer has not put yet
      go.raise();
      BOOST_REQUIRE(watch.fired(5000ms));
      if (codec) {
        BOOST_TEST(*texts.try_get() == "message " + std::to_string(round));
        BOOST_TEST(!texts.try_get());  // drained: re-arms
      } else {
        BOOST_TEST(*numbers.try_get() == round);
        BOOST_TEST(!numbers.try_get());
      }
    }
    producer.join();
  }
}

BOOST_AUTO_TEST_CASE(queue_fd_fires_for_messages_already_there_and_on_close) {
  mp::Queue<int> queue(8);
  queue.put(1);
  queue.put(2);
  const Watch watch(queue.ready_fd());
  // Readable while messages are there, without anyone reading the fd...
  BOOST_REQUIRE(watch.readable(5000ms));
  BOOST_TEST(queue.get_nowait() == 1);
  BOOST_TEST(watch.readable(0ms));
  BOOST_TEST(queue.get_nowait() == 2);
  BOOST_TEST(watch.readable(0ms));  // ...until this process finds the queue empty
  BOOST_CHECK_THROW((void)queue.get_nowait(), mp::Empty);
  BOOST_TEST(!watch.readable(50ms));
  BOOST_REQUIRE_EQUAL(test::in_child([&] {
                        queue.close();
                        return 0;
                      }),
                      0);
  BOOST_REQUIRE(watch.fired(5000ms));
  BOOST_CHECK_THROW((void)queue.try_get(), mp::Closed);
}

// An open loan at the head holds back the messages behind it (qsize() counts them, try_get finds
// nothing): the fd waits for the loan's publish, and for a loan whose holder died it fires so that
// a get reclaims the slot. (It used to be readable at once, and a poll loop spun on try_get.)
BOOST_AUTO_TEST_CASE(queue_fd_waits_for_an_open_loan_at_the_head) {
  mp::Queue<long> queue(8);
  const Watch watch(queue.ready_fd());
  auto loan = queue.loan();
  *loan = 1;
  queue.put(2);  // behind the loan
  BOOST_TEST(queue.qsize() == 2u);
  BOOST_TEST(!watch.readable(100ms));
  BOOST_TEST(!queue.try_get());
  loan.publish();
  BOOST_REQUIRE(watch.readable(5000ms));
  BOOST_TEST(queue.get_nowait() == 1);
  BOOST_TEST(queue.get_nowait() == 2);
  BOOST_TEST(!queue.try_get());

  test::Notice loaned;
  test::Notice never;
  mp::Process holder{[&] {
    auto held = queue.loan();
    loaned.raise();
    never.wait();  // killed holding it
  }};
  holder.start();
  loaned.wait();
  queue.put(3);
  BOOST_TEST(!watch.readable(100ms));  // its holder is alive: it may still publish
  holder.kill();
  holder.join();
  BOOST_REQUIRE(watch.readable(5000ms));
  BOOST_TEST(queue.get(5s) == 3);  // the dead loan's slot is reclaimed on the way
}

BOOST_AUTO_TEST_CASE(pipe_fd_fires_on_a_message_and_when_the_peer_dies) {
  auto [parent_end, child_end] = mp::Pipe<std::string>();
  const Watch watch(parent_end.ready_fd());
  test::Notice go;
  mp::Process child{[&, &child_end = child_end] {
    go.wait();
    child_end.send("hello");
    go.wait();
    return 0;  // leaves: its end is abandoned
  }};
  child.start();
  child_end.close();
  BOOST_TEST(!watch.fired(50ms));
  go.raise();
  BOOST_REQUIRE(watch.fired(5000ms));
  BOOST_TEST(parent_end.recv() == "hello");
  BOOST_TEST(!parent_end.poll());  // nothing more: re-arms
  go.raise();
  child.join();
  BOOST_REQUIRE(watch.fired(5000ms));
  BOOST_CHECK_THROW((void)parent_end.recv(), mp::Closed);
}

BOOST_AUTO_TEST_CASE(many_messages_each_burst_seen_once_drained) {
  mp::Queue<long> queue(1024);
  const Watch watch(queue.ready_fd());
  constexpr long total = 20000;
  mp::Process producer{[&] {
    for (long i = 0; i < total; ++i) {
      queue.put(i);
    }
  }};
  producer.start();
  long expected = 0;
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (expected < total && std::chrono::steady_clock::now() < give_up) {
    if (!watch.fired(1000ms)) {
      continue;
    }
    while (const auto value = queue.try_get()) {
      BOOST_REQUIRE_EQUAL(*value, expected);
      ++expected;
    }
  }
  producer.join();
  BOOST_TEST(expected == total);
}

BOOST_AUTO_TEST_CASE(event_fd_fires_on_set_and_again_after_a_clear) {
  mp::Event event;
  const Watch watch(event.ready_fd());
  BOOST_TEST(!watch.fired(50ms));
  test::Notice go;
  mp::Process setter{[&] {
    for (int round = 0; round < 2; ++round) {
      go.wait();
      event.set();
    }
  }};
  setter.start();
  go.raise();
  BOOST_REQUIRE(watch.readable(5000ms));
  BOOST_TEST(watch.readable(0ms));  // readable while set
  BOOST_TEST(event.is_set());
  event.clear();
  BOOST_TEST(!watch.readable(50ms));
  go.raise();
  BOOST_REQUIRE(watch.fired(5000ms));
  setter.join();
}
