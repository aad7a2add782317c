// asio_queue_and_socket: one Boost.Asio event loop waits on a multiproc Queue and a UDP socket at
// once, the way a service waits on many things.
//
//   ./asio_queue_and_socket [messages]      (default 5 from each side)
//
// A "worker" process puts results into the Queue; a "client" process sends datagrams to the
// socket. The loop never blocks in Queue::get: Queue::ready_fd() is a file descriptor that Asio
// watches like any socket. It is readable while messages wait; we take them until the queue is
// empty, which clears it until the next message.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <functional>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <boost/asio.hpp>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;
namespace asio = boost::asio;
using asio::ip::udp;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  const int messages = argc > 1 ? std::stoi(argv[1]) : 5;
  asio::io_context loop;
  mp::Queue<std::string> results(64);
  udp::socket socket(loop, udp::endpoint(asio::ip::address_v4::loopback(), 0));
  const udp::endpoint address = socket.local_endpoint();

  // Two other processes: one feeds the queue, one the socket, at different paces.
  mp::Process worker{[&] {
    for (int i = 0; i < messages; ++i) {
      std::this_thread::sleep_for(30ms);
      results.put("result " + std::to_string(i) + " from worker pid " + std::to_string(getpid()));
    }
  }};
  mp::Process client{[&] {
    asio::io_context own;
    udp::socket out(own, udp::v4());
    for (int i = 0; i < messages; ++i) {
      std::this_thread::sleep_for(45ms);
      const std::string text = "request " + std::to_string(i);
      out.send_to(asio::buffer(text), address);
    }
  }};
  worker.start();
  client.start();

  int from_queue = 0;
  int from_socket = 0;
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed_ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  };

  // Asio owns (and closes) what it watches: give it a duplicate of the queue's fd.
  asio::posix::stream_descriptor queue_ready(loop, ::dup(results.ready_fd()));
  std::function<void()> watch_queue = [&] {
    queue_ready.async_wait(asio::posix::stream_descriptor::wait_read, [&](const boost::system::error_code& error) {
      if (error) return;
      while (auto result = results.try_get()) {  // take until empty: that also clears the fd
        std::printf("%5lld ms  queue : %s\n", static_cast<long long>(elapsed_ms()), result->c_str());
        ++from_queue;
      }
      if (from_queue < messages) watch_queue();
    });
  };

  char datagram[256];
  udp::endpoint sender;
  std::function<void()> watch_socket = [&] {
    socket.async_receive_from(asio::buffer(datagram), sender, [&](const boost::system::error_code& error, std::size_t n) {
      if (error) return;
      std::printf("%5lld ms  socket: %.*s\n", static_cast<long long>(elapsed_ms()), static_cast<int>(n), datagram);
      if (++from_socket < messages) watch_socket();
    });
  };

  watch_queue();
  watch_socket();
  std::fflush(stdout);
  loop.run();  // returns when neither watch is re-armed: everything arrived
  worker.join();
  client.join();
  std::printf("one thread, one loop: %d from the queue, %d from the socket\n", from_queue, from_socket);
  return from_queue == messages && from_socket == messages ? 0 : 1;
}
