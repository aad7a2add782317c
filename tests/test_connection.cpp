// Python's multiprocessing.connection on Pipe ends, across processes: send_bytes / recv_bytes /
// recv_bytes_into, a ring size of the user's choice, and multiproc::wait over Pipe ends, Queues,
// Process sentinels and plain fds. Ported from CPython's Lib/test/_test_multiprocessing.py
// (_TestConnection, _TestPoll, TestWait); each case names its original.
#define BOOST_TEST_MODULE connection
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;
using namespace std::chrono_literals;

namespace {

using Bytes = std::vector<std::byte>;

Bytes bytes_of(std::string_view text) {
  const auto view = std::as_bytes(std::span(text.data(), text.size()));
  return {view.begin(), view.end()};
}

// _TestConnection._echo: sends back every message's bytes until an empty one.
template <class T>
int echo(mp::Connection<T>& end) {
  for (;;) {
    const Bytes message = end.recv_bytes();
    if (message.empty()) return 0;
    end.send_bytes(message);
  }
}

}  // namespace

// _TestConnection.test_connection, with its 16 MiB message through the default Pipe (bug 14.12).
BOOST_AUTO_TEST_CASE(connection_objects_bytes_into_buffers_poll_and_close) {
  auto [mine, theirs] = mp::Pipe<std::vector<int>>();
  mp::Process child{[&, &theirs = theirs] { return echo(theirs); }};
  child.start();

  const std::vector<int> sequence{1, 2, 25};
  mine.send(sequence);  // an object travels as its codec bytes, and comes back so
  BOOST_TEST((mine.recv() == sequence));

  const Bytes message = bytes_of("hello world");
  mine.send_bytes(message);
  BOOST_TEST((mine.recv_bytes() == message));

  const std::array<std::int32_t, 4> numbers{0, 1, 2, 3};
  const auto numbers_bytes = std::as_bytes(std::span(numbers));
  std::array<std::int32_t, 10> buffer{};
  mine.send_bytes(numbers_bytes);
  BOOST_TEST((mine.recv_bytes_into(std::as_writable_bytes(std::span(buffer))) == sizeof numbers));
  BOOST_TEST((buffer == std::array<std::int32_t, 10>{0, 1, 2, 3, 0, 0, 0, 0, 0, 0}));

  buffer = {};
  mine.send_bytes(numbers_bytes);
  BOOST_TEST((mine.recv_bytes_into(std::as_writable_bytes(std::span(buffer)), 3 * sizeof(std::int32_t)) == sizeof numbers));
  BOOST_TEST((buffer == std::array<std::int32_t, 10>{0, 0, 0, 0, 1, 2, 3, 0, 0, 0}));

  // Too small a buffer: BufferTooShort carries the whole message; the buffer is untouched.
  Bytes long_message;
  for (int i = 0; i < 10; ++i) long_message.insert(long_message.end(), message.begin(), message.end());
  Bytes small(40, std::byte{' '});
  mine.send_bytes(long_message);
  try {
    (void)mine.recv_bytes_into(small);
    BOOST_ERROR("expected BufferTooShort");
  } catch (const mp::BufferTooShort& e) {
    BOOST_TEST((e.message() == long_message));
  }
  BOOST_TEST((small == Bytes(40, std::byte{' '})));
  BOOST_CHECK_THROW((void)mine.recv_bytes_into(small, 41), mp::ValueError);  // offset beyond it

  BOOST_TEST(!mine.poll());
  BOOST_TEST(!mine.poll(-1s));
  BOOST_TEST(!mine.poll(100ms));
  mine.send({});
  BOOST_TEST(mine.poll(30s));
  BOOST_TEST(mine.recv().empty());

  const Bytes big(16 << 20, std::byte{'X'});  // 16 MiB: far beyond the ring, so it travels spilled
  mine.send_bytes(big);
  BOOST_TEST((mine.recv_bytes() == big));

  mine.send_bytes(Bytes{});  // tells the child to quit
  theirs.close();
  BOOST_REQUIRE(child.join(30s));
  BOOST_TEST((*child.exitcode() == 0));
  BOOST_TEST(mine.readable());
  BOOST_TEST(mine.writable());
  BOOST_CHECK_THROW((void)mine.recv(), mp::Closed);  // Python: EOFError
  BOOST_CHECK_THROW((void)mine.recv_bytes(), mp::Closed);
}

// _TestConnection.test_duplex_false, for the byte calls.
BOOST_AUTO_TEST_CASE(one_way_ends_refuse_the_byte_calls_of_the_other_direction) {
  auto [reader, writer] = mp::Pipe<std::string>(false);
  writer.send_bytes(bytes_of("1"));
  BOOST_TEST((reader.recv_bytes() == bytes_of("1")));
  BOOST_CHECK_THROW(reader.send_bytes(bytes_of("2")), mp::ValueError);
  BOOST_CHECK_THROW((void)writer.recv_bytes(), mp::ValueError);
  Bytes buffer(8);
  BOOST_CHECK_THROW((void)writer.recv_bytes_into(buffer), mp::ValueError);
  BOOST_CHECK_THROW((void)writer.poll(), mp::ValueError);
}

// _TestConnection.test_spawn_close: the parent closes the child's end at once.
BOOST_AUTO_TEST_CASE(closing_the_childs_end_at_once_after_start) {
  auto [mine, theirs] = mp::Pipe<std::string>();
  mp::Process child{[&, &theirs = theirs] { return echo(theirs); }};
  child.start();
  theirs.close();
  mine.send_bytes(bytes_of("hello"));
  BOOST_TEST((mine.recv_bytes() == bytes_of("hello")));
  mine.send_bytes(Bytes{});
  mine.close();
  BOOST_REQUIRE(child.join(30s));
  BOOST_TEST((*child.exitcode() == 0));
}

// _TestConnection.test_sendbytes: offsets and sizes; those outside the buffer are ValueError
// (Python's negative ones cannot be written with size_t).
BOOST_AUTO_TEST_CASE(send_bytes_with_offset_and_size) {
  auto [a, b] = mp::Pipe<std::string>();
  const Bytes message = bytes_of("abcdefghijklmnopqrstuvwxyz");
  BOOST_REQUIRE_EQUAL(test::in_child([&, &a = a] {
                        a.send_bytes(message);
                        a.send_bytes(message, 5);
                        a.send_bytes(message, 7, 8);
                        a.send_bytes(message, 26);
                        a.send_bytes(message, 26, 0);
                        const auto refused = [&](auto send) {
                          try {
                            send();
                            return 0;
                          } catch (const mp::ValueError&) {
                            return 1;
                          }
                        };
                        const int refusals = refused([&] { a.send_bytes(message, 27); }) +
                                             refused([&] { a.send_bytes(message, 22, 5); }) +
                                             refused([&] { a.send_bytes(message, 26, 1); }) +
                                             refused([&] { a.send_bytes(message, 0, 27); });
                        return refusals == 4 ? 0 : 1;
                      }),
                      0);
  BOOST_TEST((b.recv_bytes() == message));
  BOOST_TEST((b.recv_bytes() == bytes_of("fghijklmnopqrstuvwxyz")));
  BOOST_TEST((b.recv_bytes() == bytes_of("hijklmno")));
  BOOST_TEST(b.recv_bytes().empty());
  BOOST_TEST(b.recv_bytes().empty());
  BOOST_CHECK_THROW((void)b.recv_bytes(), mp::Closed);  // nothing of the refused sends arrived
}

// A Pipe whose ring size the user chooses: messages up to it and beyond travel (the big ones in
// segments of their own); nonsense sizes are ValueError.
BOOST_AUTO_TEST_CASE(a_pipe_with_a_ring_size_of_the_users_choice) {
  auto [a, b] = mp::Pipe<std::string>(true, 4, 1 << 16);
  BOOST_REQUIRE_EQUAL(test::in_child([&, &a = a] {
                        a.send(std::string(60000, 'y'));
                        return 0;
                      }),
                      0);
  BOOST_TEST((b.recv() == std::string(60000, 'y')));
  a.send_bytes(Bytes(1 << 16, std::byte{7}));  // as big as the ring: travels on its own
  BOOST_TEST((b.recv_bytes() == Bytes(1 << 16, std::byte{7})));
  BOOST_TEST(!b.poll());
  BOOST_CHECK_THROW((void)mp::Pipe<std::string>(true, 4, 0), mp::ValueError);
  BOOST_CHECK_THROW((void)mp::Pipe<std::string>(true, 4, 15), mp::ValueError);
  BOOST_CHECK_THROW((void)mp::Pipe<std::string>(true, 4, ~std::size_t{0}), mp::ValueError);
  BOOST_CHECK_THROW((void)mp::Pipe<std::string>(true, 0, 4096), mp::ValueError);
  BOOST_CHECK_THROW((void)mp::Pipe<long>(true, 0), mp::ValueError);
  BOOST_CHECK_THROW((void)mp::Queue<std::string>(4, 3), mp::ValueError);
}

// _TestPoll.test_empty_string.
BOOST_AUTO_TEST_CASE(an_empty_message_makes_poll_true) {
  auto [a, b] = mp::Pipe<std::string>();
  BOOST_TEST(!a.poll());
  BOOST_REQUIRE_EQUAL(test::in_child([&, &b = b] {
                        b.send_bytes(Bytes{});
                        return 0;
                      }),
                      0);
  BOOST_TEST(a.poll());
  BOOST_TEST(a.poll());
  BOOST_TEST(a.recv_bytes().empty());
}

// _TestPoll.test_strings: a child sends slowly, the parent polls in short slices.
BOOST_AUTO_TEST_CASE(poll_in_slices_then_receive_each_string) {
  const std::vector<std::string> strings{"hello", "", "a", "b", "", "bye", "", "lop"};
  auto [a, b] = mp::Pipe<std::string>();
  mp::Process child{[&, &b = b] {
    for (const auto& s : strings) {
      std::this_thread::sleep_for(20ms);
      b.send_bytes(bytes_of(s));
    }
    b.close();
  }};
  child.start();
  for (const auto& s : strings) {
    for (int i = 0; i < 2000 && !a.poll(10ms); ++i) {
    }
    BOOST_TEST((a.recv_bytes() == bytes_of(s)));
  }
  BOOST_REQUIRE(child.join(30s));
}

// _TestPoll.test_boundaries: a poll in another process takes nothing, not even part of a message.
BOOST_AUTO_TEST_CASE(a_poll_elsewhere_takes_nothing) {
  auto [r, w] = mp::Pipe<std::string>(false);
  test::Notice polling;
  mp::Process child{[&, &r = r] {
    polling.raise();
    return r.poll(5s) ? 0 : 1;
  }};
  child.start();
  polling.wait();
  w.send_bytes(bytes_of("first"));
  w.send_bytes(bytes_of("second"));
  w.close();
  BOOST_REQUIRE(child.join(30s));
  BOOST_TEST((*child.exitcode() == 0));
  BOOST_TEST((r.recv_bytes() == bytes_of("first")));
  BOOST_TEST((r.recv_bytes() == bytes_of("second")));
}

// _TestPoll.test_dont_merge: messages keep their boundaries.
BOOST_AUTO_TEST_CASE(messages_are_never_merged) {
  auto [a, b] = mp::Pipe<std::string>();
  BOOST_TEST(!a.poll(0s));
  BOOST_TEST(!a.poll(100ms));
  mp::Process child{[&, &b = b] {
    b.send_bytes(bytes_of("a"));
    b.send_bytes(bytes_of("b"));
    b.send_bytes(bytes_of("cd"));
  }};
  child.start();
  BOOST_TEST((a.recv_bytes() == bytes_of("a")));
  BOOST_TEST(a.poll(10s));
  BOOST_TEST(a.poll(10s));
  BOOST_TEST((a.recv_bytes() == bytes_of("b")));
  BOOST_TEST(a.poll(10s));
  BOOST_TEST(a.poll(0s));
  BOOST_TEST((a.recv_bytes() == bytes_of("cd")));
  BOOST_REQUIRE(child.join(30s));
}

// TestWait.test_wait and test_wait_slow: four children, each with a one-way pipe, send ten
// messages each; wait() says which reader to take from, until every pipe reports Closed.
BOOST_AUTO_TEST_CASE(wait_over_pipe_ends_until_every_writer_is_gone) {
  for (const bool slow : {false, true}) {
    using Message = std::pair<int, int>;  // (i, the sender's pid)
    std::vector<std::pair<mp::Connection<Message>, mp::Connection<Message>>> pipes;
    std::vector<mp::Process> children;
    for (int c = 0; c < 4; ++c) {
      pipes.push_back(mp::Pipe<Message>(false));
      children.emplace_back([&pipes, c, slow] {
        for (int i = 0; i < 10; ++i) {
          if (slow) std::this_thread::sleep_for(std::chrono::milliseconds((c * 7 + i * 3) % 10));
          pipes[static_cast<std::size_t>(c)].second.send({i, ::getpid()});
        }
      });
    }
    std::vector<mp::Connection<Message>*> readers;
    for (auto& [reader, writer] : pipes) readers.push_back(&reader);
    for (auto& child : children) child.start();
    for (auto& [reader, writer] : pipes) writer.close();
    std::vector<Message> messages;
    while (!readers.empty()) {
      const auto ready = mp::wait(readers, 30s);
      BOOST_REQUIRE(!ready.empty());
      for (auto* reader : ready) {
        try {
          messages.push_back(reader->recv());
        } catch (const mp::Closed&) {
          std::erase(readers, reader);
        }
      }
    }
    std::vector<Message> expected;
    for (auto& child : children) {
      BOOST_REQUIRE(child.join(30s));
      for (int i = 0; i < 10; ++i) expected.emplace_back(i, child.pid());
    }
    std::ranges::sort(messages);
    std::ranges::sort(expected);
    BOOST_TEST((messages == expected));
  }
}

// TestWait.test_wait_socket (and _slow): plain fds, here one socketpair per child.
BOOST_AUTO_TEST_CASE(wait_over_plain_fds) {
  std::vector<std::array<int, 2>> sockets(4);
  for (auto& pair : sockets) BOOST_REQUIRE_EQUAL(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair.data()), 0);
  std::vector<mp::Process> children;
  for (std::size_t c = 0; c < sockets.size(); ++c) {
    children.emplace_back([&sockets, c] {
      for (int i = 0; i < 10; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds((c * 5 + static_cast<std::size_t>(i)) % 7));
        const std::string line = std::to_string(i) + "\n";
        if (::write(sockets[c][1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) return 1;
      }
      return 0;
    });
  }
  for (auto& child : children) child.start();
  std::vector<mp::Waitable> readers;
  std::vector<std::string> received(sockets.size());
  for (auto& pair : sockets) {
    ::close(pair[1]);
    readers.emplace_back(pair[0]);
  }
  while (!readers.empty()) {
    const auto ready = mp::wait(readers, 30s);
    BOOST_REQUIRE(!ready.empty());
    for (const auto& r : ready) {
      const auto which = static_cast<std::size_t>(
          std::ranges::find_if(sockets, [&](const auto& pair) { return mp::Waitable(pair[0]) == r; }) - sockets.begin());
      char chunk[32];
      const ssize_t n = ::read(sockets[which][0], chunk, sizeof chunk);
      if (n <= 0) {
        std::erase(readers, r);
        ::close(sockets[which][0]);
      } else {
        received[which].append(chunk, static_cast<std::size_t>(n));
      }
    }
  }
  for (auto& child : children) {
    BOOST_REQUIRE(child.join(30s));
    BOOST_TEST((*child.exitcode() == 0));
  }
  for (const auto& text : received) BOOST_TEST(text == "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n");
}

// TestWait.test_wait_timeout (without its timing asserts): nothing ready gives an empty list
// after the timeout; a message makes its reader, and only it, ready.
BOOST_AUTO_TEST_CASE(wait_times_out_empty_then_names_the_ready_end) {
  auto [a, b] = mp::Pipe<std::string>();
  BOOST_TEST(mp::wait({a, b}, 200ms).empty());
  BOOST_REQUIRE_EQUAL(test::in_child([&, &b = b] {
                        b.send("x");
                        return 0;
                      }),
                      0);
  const auto ready = mp::wait({a, b}, 20s);
  BOOST_TEST((ready == std::vector<mp::Waitable>{a}));
}

// TestWait.test_wait_integer: a Process sentinel among pipe ends.
BOOST_AUTO_TEST_CASE(wait_over_a_sentinel_and_pipe_ends) {
  auto [a, b] = mp::Pipe<std::string>();
  test::Notice leave;
  mp::Process p{[&] { leave.wait(); }};
  p.start();
  const int sentinel = p.sentinel();
  BOOST_TEST(mp::wait({a, sentinel, b}, 0s).empty());
  leave.raise();
  BOOST_TEST((mp::wait({a, sentinel, b}, 30s) == std::vector<mp::Waitable>{sentinel}));
  a.send("to b");
  BOOST_TEST((mp::wait({a, sentinel, b}, 30s) == std::vector<mp::Waitable>{sentinel, b}));
  b.send("to a");
  BOOST_TEST((mp::wait({a, sentinel, b}, 30s) == std::vector<mp::Waitable>{a, sentinel, b}));
  p.join();
}

// TestWait.test_neg_timeout.
BOOST_AUTO_TEST_CASE(a_negative_timeout_looks_once) {
  auto [a, b] = mp::Pipe<int>();
  BOOST_TEST(mp::wait({a}, -1s).empty());
}

// Not in CPython (its wait takes no Queue): Queues, a JoinableQueue and a closed queue, and an end
// drained by recv() behind wait's back is not reported again.
BOOST_AUTO_TEST_CASE(wait_over_queues_and_a_drained_end) {
  mp::Queue<long> numbers{4};
  mp::JoinableQueue<std::string> tasks{4};
  auto [a, b] = mp::Pipe<long>();
  BOOST_TEST(mp::wait({numbers, tasks, a, b}, 0s).empty());  // b used here too: the child's exit does not close it
  BOOST_REQUIRE_EQUAL(test::in_child([&, &b = b] {
                        tasks.put("t");
                        b.send(1);
                        return 0;
                      }),
                      0);
  BOOST_TEST((mp::wait({numbers, tasks, a, b}, 30s) == std::vector<mp::Waitable>{tasks, a}));
  BOOST_TEST(a.recv() == 1);  // drained without wait() seeing it empty
  BOOST_TEST((tasks.get() == "t"));
  BOOST_TEST(mp::wait({numbers, tasks, a, b}, 100ms).empty());
  BOOST_REQUIRE_EQUAL(test::in_child([&] {
                        numbers.close();
                        return 0;
                      }),
                      0);
  BOOST_TEST((mp::wait(std::vector<mp::Queue<long>*>{&numbers}, 30s) == std::vector<mp::Queue<long>*>{&numbers}));
  BOOST_CHECK_THROW((void)mp::wait({-5}, 0s), mp::ValueError);  // Python: ValueError
  int fds[2];
  BOOST_REQUIRE_EQUAL(::pipe(fds), 0);
  ::close(fds[0]);
  ::close(fds[1]);
  BOOST_CHECK_THROW((void)mp::wait({fds[0]}, 0s), std::system_error);  // EBADF
}

// A blocked wait() sleeps: no CPU while nothing is ready, signals absorbed.
BOOST_AUTO_TEST_CASE(a_blocked_wait_uses_no_cpu) {
  auto [a, b] = mp::Pipe<std::string>();
  mp::Queue<int> queue{2};
  BOOST_TEST((test::check_blocked_wait([&, &a = a](auto timeout) { return !mp::wait({a, queue}, timeout).empty(); }) == 0));
}
