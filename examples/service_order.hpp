#pragma once
// The message of the service pair: a fixed-size, trivially copyable struct, so the Queue carries
// it through its lock-free ring without any encoding. Both programs include this one definition
// (the queue checks, on open, that the type it was created for is this one).
#include <unistd.h>

#include <cstdio>

struct Order {
  long id;
  int producer_pid;
  int quantity;
  double unit_price;
  char item[32];

  static Order make(long id, const char* item, int quantity, double unit_price) {
    Order order{id, static_cast<int>(::getpid()), quantity, unit_price, {}};
    std::snprintf(order.item, sizeof order.item, "%s", item);
    return order;
  }
  static Order end_of_stream() { return Order{-1, static_cast<int>(::getpid()), 0, 0, {}}; }
  [[nodiscard]] bool is_end_of_stream() const { return id == -1; }
};
