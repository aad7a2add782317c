// service_consumer: one half of a service pair. Two unrelated programs, started separately (in two
// terminals, by systemd, ...), find each other through named shared objects; nothing is inherited.
//
//   ./service_consumer [name]          (default "demo-orders")   then, anywhere:
//   ./service_producer [name] [count]
//
// The consumer waits for orders on the named Queue "<name>", handles each, and stops at the
// producer's end-of-stream order (or after 30 s without any). Whichever program starts first
// creates the queue (open_or_create); the consumer, its owner, removes the name when it leaves.
#include <chrono>
#include <cstdio>
#include <string>

#include <multiproc/multiproc.hpp>

#include "service_order.hpp"

namespace mp = multiproc;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  const std::string name = argc > 1 ? argv[1] : "demo-orders";
  mp::Queue<Order> orders(mp::open_or_create, name, 256);
  const mp::ScopedUnlink owner{name};  // the name goes when we do; a producer still attached keeps its mapping
  std::printf("consumer pid %d: waiting for orders on \"%s\" (/dev/shm/%s)\n", static_cast<int>(::getpid()),
              name.c_str(), mp::shm_file_name(name).c_str());
  std::fflush(stdout);

  long handled = 0;
  double revenue = 0;
  for (;;) {
    Order order{};
    try {
      order = orders.get(30s);
    } catch (const mp::Empty&) {
      std::printf("consumer: no order for 30 s, leaving\n");
      break;
    }
    if (order.is_end_of_stream()) {
      std::printf("consumer: end of stream from producer pid %d\n", order.producer_pid);
      break;
    }
    ++handled;
    revenue += order.quantity * order.unit_price;
    std::printf("consumer: order %ld from pid %d: %d x %s at %.2f\n", order.id, order.producer_pid, order.quantity,
                order.item, order.unit_price);
  }
  std::printf("consumer: %ld orders handled, revenue %.2f\n", handled, revenue);
  return 0;
}
