#pragma once
// Shared by the test programs: unique segment names, children that report through exit codes,
// a check of how blocked waits behave, and a global check that a test program leaves nothing of
// its own in /dev/shm.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>

#include <multiproc/process.hpp>
#include <multiproc/segment.hpp>

namespace test {

// "mptest-<pid of the test program>-": fixed before any child is forked, so children use it too.
inline std::string& name_prefix() {
  static std::string prefix = "mptest-" + std::to_string(::getpid()) + "-";
  return prefix;
}

inline std::string unique_name(const std::string& tag) {
  static std::atomic<int> counter{0};
  return name_prefix() + tag + "-" + std::to_string(counter.fetch_add(1));
}

inline std::vector<std::string> leftover_segments() {
  std::vector<std::string> found;
  const std::string own = multiproc::shm_file_name(name_prefix());
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) {
    if (entry.path().filename().string().starts_with(own)) {
      found.push_back(entry.path().filename().string());
    }
  }
  return found;
}

// Runs `body` in a forked child and returns its exit code (the int `body` returns, 1 if it threw,
// -N if signal N ended it). A child that outlives `limit` is killed, so no test can hang.
inline int in_child(std::function<int()> body, std::chrono::seconds limit = std::chrono::seconds(60)) {
  multiproc::Process child{std::move(body)};
  child.start();
  if (!child.join(limit)) {
    child.kill();
    child.join();
    BOOST_ERROR("child " << child.name() << " was still running after " << limit.count() << " s");
  }
  return *child.exitcode();
}

// A one-shot notice from one process to another through a pipe: raise() in one, wait() in the
// other. Made before fork, so both sides hold the pipe.
struct Notice {
  Notice() { BOOST_REQUIRE_EQUAL(::pipe(fds), 0); }
  Notice(const Notice&) = delete;
  Notice& operator=(const Notice&) = delete;
  ~Notice() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  void raise() const { (void)!::write(fds[1], "x", 1); }
  void wait() const {
    char byte = 0;
    BOOST_REQUIRE_EQUAL(::read(fds[0], &byte, 1), 1);
  }
  int fds[2];
};

inline std::chrono::nanoseconds cpu_time_of_this_process() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return std::chrono::seconds(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         std::chrono::microseconds(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

// Checks a wait that nothing will satisfy: `timed_wait(timeout)` must return false (time out),
// no earlier than the timeout, while the waiting child uses under 5% of a core and is hit by a
// signal every 50 ms (its handler is installed without SA_RESTART, so every hit is an EINTR that
// the wait must absorb). Returns the child's exit code: 0 when all holds.
inline int check_blocked_wait(std::function<bool(std::chrono::milliseconds)> timed_wait) {
  using namespace std::chrono_literals;
  struct sigaction action{};
  action.sa_handler = [](int) {};
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGUSR1, &action, nullptr);  // inherited by the child, so no signal can kill it early
  constexpr auto timeout = 1000ms;
  multiproc::Process waiter{[&] {
    const auto cpu_before = cpu_time_of_this_process();
    const auto start = std::chrono::steady_clock::now();
    if (timed_wait(timeout)) return 2;                                   // nothing could satisfy it
    if (std::chrono::steady_clock::now() - start < timeout) return 3;     // returned early
    return cpu_time_of_this_process() - cpu_before < timeout / 20 ? 0 : 4;  // used CPU while blocked
  }};
  waiter.start();
  while (!waiter.join(50ms)) {
    ::kill(waiter.pid(), SIGUSR1);
  }
  return *waiter.exitcode();
}

// The first page of a named segment mapped read-write behind the library's back: to damage a
// header, or to put an object's shared state into a condition no public call can produce.
struct RawSegment {
  explicit RawSegment(const std::string& name) {
    const int fd = ::open(("/dev/shm/" + multiproc::shm_file_name(name)).c_str(), O_RDWR);
    BOOST_REQUIRE(fd >= 0);
    base = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    BOOST_REQUIRE(base != MAP_FAILED);
  }
  RawSegment(const RawSegment&) = delete;
  RawSegment& operator=(const RawSegment&) = delete;
  ~RawSegment() { ::munmap(base, page); }
  multiproc::SegmentHeader& header() const { return *static_cast<multiproc::SegmentHeader*>(base); }
  template <class T>
  T& element() const {
    return at<T>(header().elements_offset);
  }
  template <class T>
  T& prefix() const {
    return at<T>(header().prefix_offset);
  }
  template <class T>
  T& at(std::uint64_t offset) const {
    BOOST_REQUIRE(offset + sizeof(T) <= page);
    return *reinterpret_cast<T*>(static_cast<char*>(base) + offset);
  }
  static constexpr std::size_t page = 4096;
  void* base;
};

// Runs a shell command; its exit status (-1 if a signal ended it) and stdout+stderr together.
struct CommandRun {
  int status;
  std::string output;
};
inline CommandRun run_command(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  BOOST_REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) {
    output.append(buffer, n);
  }
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

struct NoLeftoverSegments {
  NoLeftoverSegments() { name_prefix(); }
  ~NoLeftoverSegments() {
    const auto left = leftover_segments();
    for (const auto& name : left) {
      BOOST_ERROR("test program left /dev/shm/" << name);
      multiproc::unlink(name.substr(multiproc::shm_file_name("").size()));
    }
  }
};

}  // namespace test

using test::NoLeftoverSegments;
BOOST_TEST_GLOBAL_FIXTURE(NoLeftoverSegments);
