// pool_who_ran_what: map, map_async, imap and imap_unordered on a pool of 3, each result tagged
// with the pid of the worker that computed it.
//
//   ./pool_who_ran_what [inputs]      (default 6)
#include <unistd.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;

// The square of x, and who computed it.
std::pair<int, int> square_with_pid(int x) { return {x * x, static_cast<int>(::getpid())}; }

int main(int argc, char** argv) {
  const int count = argc > 1 ? std::stoi(argv[1]) : 6;
  std::vector<int> inputs;
  for (int i = 0; i < count; ++i) inputs.push_back(i);
  mp::Pool pool{3};
  int printed = 0;
  const auto show = [&](const char* how, const std::pair<int, int>& result) {
    std::printf("%-15s %4d  (worker pid %d)\n", how, result.first, result.second);
    ++printed;
  };

  for (const auto& r : pool.map(square_with_pid, inputs)) show("map", r);
  for (const auto& r : pool.map_async(square_with_pid, inputs).get()) show("map_async", r);
  for (const auto& r : pool.imap(square_with_pid, inputs)) show("imap", r);
  for (const auto& r : pool.imap_unordered(square_with_pid, inputs)) show("imap_unordered", r);
  return printed == 4 * count ? 0 : 1;
}
