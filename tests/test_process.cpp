// Process: names, exit codes, join with timeouts, signals, stdio and atexit hygiene, reaping.
#define BOOST_TEST_MODULE process
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;
using namespace std::chrono_literals;

namespace {

// Everything written to the returned string by the child through `fd`, read until EOF.
std::string read_all(int fd) {
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(n));
  return text;
}

// Runs `body` in a child whose file descriptor `target_fd` is a pipe, and returns what it wrote.
template <class Body>
std::string captured(int target_fd, Body body) {
  int fds[2];
  BOOST_REQUIRE_EQUAL(::pipe(fds), 0);
  mp::Process child{[&] {
    ::close(fds[0]);
    ::dup2(fds[1], target_fd);
    ::close(fds[1]);
    return body();
  }};
  child.start();
  ::close(fds[1]);
  const std::string text = read_all(fds[0]);
  ::close(fds[0]);
  BOOST_REQUIRE(child.join(30s));
  return text;
}

int atexit_marker_fd = -1;
void write_atexit_marker() { (void)!::write(atexit_marker_fd, "A", 1); }

}  // namespace

BOOST_AUTO_TEST_CASE(names_follow_python) {
  BOOST_CHECK_EQUAL(mp::current_process().name(), "MainProcess");
  BOOST_CHECK_EQUAL(mp::current_process().pid(), ::getpid());
  mp::Process a{[] {}};
  mp::Process b{[] {}};
  const int na = std::stoi(a.name().substr(std::string("Process-").size()));
  BOOST_CHECK(a.name().starts_with("Process-"));
  BOOST_CHECK_EQUAL(b.name(), "Process-" + std::to_string(na + 1));
  mp::Process named{[] {}, "worker-1"};
  BOOST_CHECK_EQUAL(named.name(), "worker-1");

  mp::Array<char> seen(64);
  mp::Process parent{[&] {
    if (mp::current_process().pid() != ::getpid()) return 1;
    mp::Process grandchild{[&] {
      const std::string name = mp::current_process().name();
      std::copy(name.begin(), name.end(), seen.begin());
    }};
    grandchild.start();
    grandchild.join();
    return mp::current_process().name() == parent.name() ? 0 : 2;
  }};
  parent.start();
  parent.join();
  BOOST_CHECK_EQUAL(*parent.exitcode(), 0);
  BOOST_CHECK_EQUAL(std::string(seen.data()), parent.name() + ":1");
}

BOOST_AUTO_TEST_CASE(exit_codes_are_pythons) {
  BOOST_CHECK_EQUAL(test::in_child([] { return 0; }), 0);
  BOOST_CHECK_EQUAL(test::in_child([] { return 7; }), 7);
  BOOST_CHECK_EQUAL(test::in_child([]() -> int { throw std::runtime_error("boom"); }), 1);
  BOOST_CHECK_EQUAL(test::in_child([] { ::raise(SIGKILL); return 0; }), -SIGKILL);
  BOOST_CHECK_EQUAL(test::in_child([] { std::abort(); return 0; }), -SIGABRT);

  mp::Process plain{[] {}};
  BOOST_CHECK(!plain.exitcode());
  plain.start();
  plain.join();
  BOOST_CHECK_EQUAL(*plain.exitcode(), 0);
}

BOOST_AUTO_TEST_CASE(an_uncaught_exception_is_reported_with_the_process_name) {
  const std::string err = captured(STDERR_FILENO, []() -> int {
    throw std::invalid_argument("bad input 42");
  });
  BOOST_TEST(err.find("Process Process-") != std::string::npos, err);
  BOOST_TEST(err.find("std::invalid_argument: bad input 42") != std::string::npos, err);
}

BOOST_AUTO_TEST_CASE(join_with_timeout_terminate_and_kill) {
  mp::Process sleeper{[] { ::pause(); }};
  BOOST_CHECK(!sleeper.is_alive());
  sleeper.start();
  BOOST_CHECK_GT(sleeper.pid(), 0);
  BOOST_CHECK(sleeper.is_alive());
  const auto start = std::chrono::steady_clock::now();
  BOOST_CHECK(!sleeper.join(200ms));
  BOOST_CHECK(std::chrono::steady_clock::now() - start >= 200ms);
  BOOST_CHECK(!sleeper.exitcode());
  sleeper.terminate();
  BOOST_CHECK(sleeper.join(30s));
  BOOST_CHECK(!sleeper.is_alive());
  BOOST_CHECK_EQUAL(*sleeper.exitcode(), -SIGTERM);
  BOOST_CHECK_NO_THROW(sleeper.terminate());  // ended: nothing to do, as in Python

  mp::Process stubborn{[] {
    ::signal(SIGTERM, SIG_IGN);
    ::pause();
  }};
  stubborn.start();
  stubborn.kill();
  stubborn.join();
  BOOST_CHECK_EQUAL(*stubborn.exitcode(), -SIGKILL);
}

BOOST_AUTO_TEST_CASE(join_wakes_as_soon_as_the_child_ends) {
  mp::Process quick{[] { std::this_thread::sleep_for(50ms); }};
  quick.start();
  BOOST_CHECK(quick.join(30s));
  BOOST_CHECK_EQUAL(*quick.exitcode(), 0);
  BOOST_CHECK_EQUAL(quick.sentinel(), -1);
}

BOOST_AUTO_TEST_CASE(misuse_is_reported) {
  mp::Process p{[] {}};
  BOOST_CHECK_THROW(p.join(), mp::ValueError);
  p.start();
  BOOST_CHECK_THROW(p.start(), mp::ValueError);
  p.join();
  BOOST_CHECK_EQUAL(test::in_child([&] {
    try {
      mp::current_process().join();
    } catch (const mp::ValueError&) {
      return 0;  // a process cannot join itself
    }
    return 1;
  }), 0);
}

BOOST_AUTO_TEST_CASE(subclass_with_run) {
  struct Doubler : mp::Process {
    explicit Doubler(mp::Value<int>& v) : shared(v) {}
    void run() override { shared.store(shared.load() * 2); }
    mp::Value<int>& shared;
  };
  mp::Value<int> v{21};
  Doubler d{v};
  d.start();
  d.join();
  BOOST_CHECK_EQUAL(*d.exitcode(), 0);
  BOOST_CHECK_EQUAL(v.load(), 42);
}

BOOST_AUTO_TEST_CASE(processes_live_in_a_vector) {
  mp::Array<int> done(6);
  std::vector<mp::Process> workers;
  for (int i = 0; i < 6; ++i) workers.emplace_back([&done, i] { done[i] = i + 1; });
  for (auto& w : workers) w.start();
  for (auto& w : workers) w.join();
  for (int i = 0; i < 6; ++i) BOOST_CHECK_EQUAL(done[i], i + 1);
}

BOOST_AUTO_TEST_CASE(buffered_output_is_not_duplicated_by_fork) {
  // Written to a pipe, stdout is fully buffered: without a flush before fork the child would
  // inherit "before" in its buffer and print it a second time.
  const std::string out = captured(STDOUT_FILENO, [] {
    std::printf("before|");
    mp::Process child{[] { std::printf("child|"); }};
    child.start();
    child.join();
    std::printf("after|");
    return 0;
  });
  BOOST_CHECK_EQUAL(out, "before|child|after|");
}

BOOST_AUTO_TEST_CASE(children_do_not_run_the_parents_atexit_handlers) {
  const std::string marks = captured(STDOUT_FILENO, [] {
    atexit_marker_fd = STDOUT_FILENO;
    std::atexit(write_atexit_marker);
    mp::Process child{[] {}};
    child.start();
    child.join();
    mp::Process failing{[]() -> int { throw std::runtime_error("x"); }};
    failing.start();
    failing.join();
    return 0;  // this process leaves through _exit as well, so the handler never runs
  });
  BOOST_CHECK_EQUAL(marks, "");
}

BOOST_AUTO_TEST_CASE(an_abandoned_child_is_reaped_by_a_later_start) {
  pid_t abandoned = 0;
  {
    mp::Process p{[] {}};
    p.start();
    abandoned = p.pid();
  }  // destroyed unjoined: the child is not killed
  const std::string stat_path = "/proc/" + std::to_string(abandoned) + "/stat";
  // Wait until it has ended (a zombie, or already reaped by the destructor).
  for (int i = 0; i < 3000; ++i) {
    std::ifstream stat(stat_path);
    std::string pid, comm, state;
    if (!(stat >> pid >> comm >> state) || state == "Z") break;
    std::this_thread::sleep_for(10ms);
  }
  mp::Process next{[] {}};
  next.start();
  next.join();
  BOOST_CHECK(!std::ifstream(stat_path).good());  // no zombie left behind
}
