// lock_print: ten workers each print one line, word by word, first without a lock, then with one.
//
//   ./lock_print [workers]      (default 10)
//
// The twin of the classic Python lesson:
//     def f(lock, i):
//         with lock:
//             print('hello world', i)
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;

// Writes "worker <id> (pid <pid>) says hello" one word at a time, pausing between words as if
// each took some work. Each word is its own write(2), so words of different processes can mix.
void say_hello(int id) {
  const std::string line = "worker " + std::to_string(id) + " (pid " + std::to_string(::getpid()) + ") says hello\n";
  std::size_t start = 0;
  while (start < line.size()) {
    const std::size_t end = line.find(' ', start);
    const std::size_t stop = end == std::string::npos ? line.size() : end + 1;
    (void)!::write(STDOUT_FILENO, line.data() + start, stop - start);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    start = stop;
  }
}

// Runs one worker process per id, all at once, and waits for them.
template <class Work>
void run_workers(int workers, Work work) {
  std::vector<mp::Process> children;
  for (int id = 0; id < workers; ++id) children.emplace_back([&work, id] { work(id); });
  for (auto& child : children) child.start();
  for (auto& child : children) child.join();
}

int main(int argc, char** argv) {
  const int workers = argc > 1 ? std::stoi(argv[1]) : 10;

  std::printf("Without a lock (words of different workers mix):\n");
  run_workers(workers, say_hello);

  std::printf("\nWith a Lock (one worker at a time prints its whole line):\n");
  mp::Lock lock;
  run_workers(workers, [&](int id) {
    std::scoped_lock guard(lock);
    say_hello(id);
  });
  return 0;
}
