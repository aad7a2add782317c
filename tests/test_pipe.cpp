// Pipe across processes: both directions, one-way ends, close, poll, and a peer that dies.
#define BOOST_TEST_MODULE pipe
#include <signal.h>

#include <stdexcept>
#include <string>
#include <thread>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(duplex_ping_pong_between_processes) {
  auto [parent_end, child_end] = mp::Pipe<std::string>();
  mp::Process child{[&] {
    for (;;) {
      const std::string message = child_end.recv();
      if (message == "stop") return 0;
      child_end.send(message + "!");
    }
  }};
  child.start();
  for (int i = 0; i < 1000; ++i) {
    parent_end.send("ping " + std::to_string(i));
    BOOST_REQUIRE_EQUAL(parent_end.recv(), "ping " + std::to_string(i) + "!");
  }
  parent_end.send("stop");
  BOOST_REQUIRE(child.join(30s));
  BOOST_CHECK_EQUAL(*child.exitcode(), 0);
}

BOOST_AUTO_TEST_CASE(one_way_ends_refuse_the_other_direction) {
  auto [reader, writer] = mp::Pipe<long>(false);
  BOOST_CHECK(reader.readable() && !reader.writable());
  BOOST_CHECK(writer.writable() && !writer.readable());
  BOOST_CHECK_THROW(reader.send(1), mp::ValueError);
  BOOST_CHECK_THROW((void)writer.recv(), mp::ValueError);
  writer.send(5);
  BOOST_CHECK_EQUAL(reader.recv(), 5);
}

BOOST_AUTO_TEST_CASE(a_dead_peer_gives_closed_after_its_messages) {
  auto [mine, theirs] = mp::Pipe<int>(true, 4);
  mp::Process child{[&] {
    theirs.send(1);
    theirs.send(2);
    ::raise(SIGKILL);
  }};
  child.start();
  BOOST_CHECK_EQUAL(mine.recv(), 1);
  BOOST_CHECK_EQUAL(mine.recv(), 2);
  const auto start = std::chrono::steady_clock::now();
  BOOST_CHECK_THROW((void)mine.recv(), mp::Closed);  // not a hang, although we hold `theirs` too
  BOOST_CHECK(std::chrono::steady_clock::now() - start < 10s);
  BOOST_CHECK(mine.poll(0ms));  // poll says recv would not wait (it would throw)
  // A send only looks for the other end when it has to wait: once the direction is full.
  BOOST_CHECK_THROW(
      for (int i = 0; i < 5; ++i) mine.send(i), mp::Closed);
  child.join();
}

BOOST_AUTO_TEST_CASE(the_child_sees_closed_when_the_process_at_the_other_end_dies) {
  auto [a, b] = mp::Pipe<int>();
  mp::Process holder_of_a{[&] {
    a.send(7);
    ::pause();
  }};
  mp::Process holder_of_b{[&] {
    if (b.recv() != 7) return 1;
    try {
      (void)b.recv();
    } catch (const mp::Closed&) {
      return 0;
    }
    return 2;
  }};
  holder_of_a.start();
  holder_of_b.start();
  a.close();  // this process gives up both ends, as in Python's idiom
  b.close();
  std::this_thread::sleep_for(100ms);
  holder_of_a.kill();
  BOOST_REQUIRE(holder_of_b.join(30s));
  BOOST_CHECK_EQUAL(*holder_of_b.exitcode(), 0);
  holder_of_a.join();
}

BOOST_AUTO_TEST_CASE(close_by_a_live_peer_ends_the_stream) {
  auto [mine, theirs] = mp::Pipe<std::string>();
  mp::Event done_reading;
  mp::Process child{[&] {
    theirs.send("a");
    theirs.send("b");
    theirs.close();  // alive, but done with this end
    return done_reading.wait(30s) ? 0 : 1;
  }};
  child.start();
  BOOST_CHECK_EQUAL(mine.recv(), "a");
  BOOST_CHECK_EQUAL(mine.recv(), "b");
  BOOST_CHECK_THROW((void)mine.recv(), mp::Closed);
  done_reading.set();
  BOOST_REQUIRE(child.join(30s));
  BOOST_CHECK_EQUAL(*child.exitcode(), 0);
  mine.close();
  BOOST_CHECK(mine.closed());
  BOOST_CHECK_THROW((void)mine.recv(), mp::Closed);
}

BOOST_AUTO_TEST_CASE(poll_waits_no_longer_than_asked) {
  auto [mine, theirs] = mp::Pipe<int>();
  const auto start = std::chrono::steady_clock::now();
  BOOST_CHECK(!mine.poll(100ms));
  BOOST_CHECK(std::chrono::steady_clock::now() - start >= 100ms);
  theirs.send(1);
  BOOST_CHECK(mine.poll());
  BOOST_CHECK_EQUAL(mine.recv(), 1);
  BOOST_CHECK_EQUAL(test::check_blocked_wait([&](auto timeout) { return mine.poll(timeout); }), 0);
}

BOOST_AUTO_TEST_CASE(threads_of_one_process_share_a_pipe) {
  auto [a, b] = mp::Pipe<int>();
  std::thread sender([&b] {
    std::this_thread::sleep_for(100ms);  // several liveness checks pass meanwhile
    b.send(42);
  });
  BOOST_CHECK_EQUAL(a.recv(), 42);  // no false Closed: this process holds the other end itself
  sender.join();
}
