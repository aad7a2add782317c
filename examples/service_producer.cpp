// service_producer: the other half of the service pair (see service_consumer.cpp).
//
//   ./service_producer [name] [count]   (defaults "demo-orders", 10)
//
// Opens the named Queue "<name>" (or creates it, if the consumer has not started yet), puts
// `count` orders at a steady pace, then an end-of-stream order. It never removes the name: the
// consumer owns it.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <multiproc/multiproc.hpp>

#include "service_order.hpp"

namespace mp = multiproc;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  const std::string name = argc > 1 ? argv[1] : "demo-orders";
  const long count = argc > 2 ? std::stol(argv[2]) : 10;
  mp::Queue<Order> orders(mp::open_or_create, name, 256);
  const char* items[] = {"widget", "gadget", "sprocket"};
  for (long i = 1; i <= count; ++i) {
    Order order = Order::make(i, items[i % 3], static_cast<int>(i % 5 + 1), 2.5 * static_cast<double>(i % 4 + 1));
    orders.put(order, 10s);  // Full after 10 s: the consumer is gone or stuck
    std::printf("producer pid %d: sent order %ld\n", static_cast<int>(::getpid()), i);
    std::fflush(stdout);
    std::this_thread::sleep_for(20ms);
  }
  orders.put(Order::end_of_stream(), 10s);
  return 0;
}
