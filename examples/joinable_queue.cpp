// joinable_queue: consumers mark each task done; the producer's join() returns once all are done.
// A poison pill (an empty string) tells each consumer to stop.
//
//   ./joinable_queue [tasks]      (default 12)
//
// The twin of the classic Python lesson with JoinableQueue, task_done() and join().
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;

int main(int argc, char** argv) {
  const int tasks = argc > 1 ? std::stoi(argv[1]) : 12;
  constexpr int consumers = 3;
  mp::JoinableQueue<std::string> queue;
  mp::RawValue<int> finished{0};

  std::vector<mp::Process> team;
  for (int c = 0; c < consumers; ++c) {
    team.emplace_back([&, c] {
      for (;;) {
        const std::string task = queue.get();
        if (task.empty()) {  // poison pill
          queue.task_done();
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // the work
        std::printf("consumer %d (pid %d) did %s\n", c, ::getpid(), task.c_str());
        std::fflush(stdout);
        finished.atomic().fetch_add(1);
        queue.task_done();
      }
    });
  }
  for (auto& consumer : team) consumer.start();

  for (int t = 0; t < tasks; ++t) queue.put("task " + std::to_string(t));
  for (int c = 0; c < consumers; ++c) queue.put("");
  queue.join();  // returns only when every put has been matched by task_done()
  std::printf("join() returned: %d of %d tasks finished\n", finished.load(), tasks);
  for (auto& consumer : team) consumer.join();
  return finished.load() == tasks ? 0 : 1;
}
