// pipe_workers: a master feeds ten workers through one Pipe; the workers share its reading end
// and take turns under a Lock. -1 tells a worker to stop.
//
//   ./pipe_workers [items]      (default 30)
//
// The twin of the classic Python lesson:
//     def worker(conn, lock):
//         while True:
//             with lock:
//                 item = conn.recv()
//             if item == -1: break
//             ...
#include <unistd.h>

#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;

int main(int argc, char** argv) {
  const int items = argc > 1 ? std::stoi(argv[1]) : 30;
  constexpr int workers = 10;
  auto [reader, writer] = mp::Pipe<int>(false);  // one way: workers read, the master writes
  mp::Lock turn;                                 // one worker at a time at the reading end
  mp::Value<long> total{0};

  std::vector<mp::Process> team;
  for (int w = 0; w < workers; ++w) {
    team.emplace_back([&, w] {
      for (;;) {
        int item = 0;
        {
          std::scoped_lock my_turn(turn);
          item = reader.recv();
        }
        if (item == -1) return;
        std::printf("worker %d (pid %d) squares %d\n", w, ::getpid(), item);
        std::fflush(stdout);
        std::scoped_lock guard(total.get_lock());
        total.value() += static_cast<long>(item) * item;
      }
    });
  }
  for (auto& worker : team) worker.start();

  for (int i = 1; i <= items; ++i) writer.send(i);
  for (int w = 0; w < workers; ++w) writer.send(-1);  // one stop value per worker
  for (auto& worker : team) worker.join();

  const long expected = static_cast<long>(items) * (items + 1) * (2 * items + 1) / 6;
  std::printf("sum of squares: %ld (expected %ld)\n", total.load(), expected);
  return total.load() == expected ? 0 : 1;
}
