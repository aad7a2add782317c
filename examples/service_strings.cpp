// service_strings: a service pair whose two halves may be written in C++ or in Python
// (examples/service_strings.py is this program's twin, line for line). They share a named
// Queue<std::string> of text orders and a SharedDict<std::string, std::string> tally, the types a
// Python multiproc.Queue and multiproc.SharedDict are, so any producer works with any consumer:
//
//   ./service_strings consume [name]              python3 examples/service_strings.py consume [name]
//   ./service_strings produce [name] [count]      python3 examples/service_strings.py produce [name] [count]
//
// The producer puts `count` orders ("order 7: 3 x gadget"), adds each quantity to the tally
// under the item's name, writes "sent" = count, and shuts the queue down (close(): the end of the
// stream). The consumer takes orders until the queue is shut down, counts them itself, checks
// its counts against the producer's tally, and removes both names (it owns them). Exit code 0
// when everything agrees.
#include <chrono>
#include <cstdio>
#include <map>
#include <string>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;
using namespace std::chrono_literals;

namespace {

const char* const items[] = {"widget", "gadget", "sprocket"};

int produce(const std::string& name, long count) {
  mp::Queue<std::string> orders(mp::open_or_create, name, 256);
  mp::SharedDict<std::string, std::string> tally(mp::open_or_create, name + ".tally");
  for (long i = 1; i <= count; ++i) {
    const std::string item = items[i % 3];
    const long quantity = i % 5 + 1;
    tally.update(item, [&](const std::string& sum) { return std::to_string(std::stol(sum) + quantity); }, "0");
    orders.put("order " + std::to_string(i) + ": " + std::to_string(quantity) + " x " + item, 10s);
  }
  tally.set("sent", std::to_string(count));
  orders.close();  // end of stream: the consumer takes what is left, then sees Closed
  std::printf("producer (C++): %ld orders sent\n", count);
  return 0;
}

int consume(const std::string& name) {
  mp::Queue<std::string> orders(mp::open_or_create, name, 256);
  mp::SharedDict<std::string, std::string> tally(mp::open_or_create, name + ".tally");
  const mp::ScopedUnlink own_queue{name};
  const mp::ScopedUnlink own_tally{name + ".tally"};
  std::map<std::string, long> counted;
  long handled = 0;
  for (;;) {
    std::string order;
    try {
      order = orders.get(30s);
    } catch (const mp::Closed&) {
      break;
    } catch (const mp::Empty&) {
      std::printf("consumer (C++): no order for 30 s, leaving\n");
      return 1;
    }
    long id = 0;
    long quantity = 0;
    char item[32] = {};
    if (std::sscanf(order.c_str(), "order %ld: %ld x %31s", &id, &quantity, item) != 3) {
      std::printf("consumer (C++): not an order: \"%s\"\n", order.c_str());
      return 1;
    }
    counted[item] += quantity;
    ++handled;
  }
  bool agrees = tally.get("sent") == std::to_string(handled);
  for (const auto& [item, quantity] : counted) {
    agrees = agrees && tally.get(item) == std::to_string(quantity);
  }
  std::printf("consumer (C++): %ld orders handled, tally %s\n", handled, agrees ? "agrees" : "DIFFERS");
  return agrees ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string role = argc > 1 ? argv[1] : "";
  const std::string name = argc > 2 ? argv[2] : "demo-strings";
  if (role == "produce") {
    return produce(name, argc > 3 ? std::stol(argv[3]) : 10);
  }
  if (role == "consume") {
    return consume(name);
  }
  std::fprintf(stderr, "usage: %s produce|consume [name] [count]\n", argv[0]);
  return 2;
}
