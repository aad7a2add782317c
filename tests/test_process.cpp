// Process: names, exit codes, join with timeouts, signals, stdio and atexit hygiene, reaping.
#define BOOST_TEST_MODULE process
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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
  const int sentinel = quick.sentinel();
  BOOST_CHECK(quick.join(30s));
  BOOST_CHECK_EQUAL(*quick.exitcode(), 0);
  BOOST_CHECK_EQUAL(quick.sentinel(), sentinel);  // valid until close()
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

namespace {

// Whether `pid` has ended: gone, or a zombie nobody reaped yet.
bool has_ended(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const auto after_name = line.rfind(')');
  return after_name != std::string::npos && line.compare(after_name + 2, 1, "Z") == 0;
}

// Waits (at most 30 s, so nothing hangs) until `pid` has ended; false if it has not.
bool ends_soon(pid_t pid) {
  for (int i = 0; i < 3000 && !has_ended(pid); ++i) std::this_thread::sleep_for(10ms);
  return has_ended(pid);
}

}  // namespace

// Python's daemon flag: a daemon child still running when its parent exits normally gets SIGTERM
// (and is joined); a plain child is left alone.
BOOST_AUTO_TEST_CASE(a_daemon_is_terminated_when_its_parent_exits) {
  mp::RawValue<pid_t> daemon_pid, plain_pid;
  mp::RawValue<int> daemon_got_sigterm;
  test::Notice handler_installed;
  BOOST_CHECK_EQUAL(test::in_child([&] {
    mp::Process daemon{[&] {
      static mp::RawValue<int>* flag = &daemon_got_sigterm;
      ::signal(SIGTERM, [](int) {
        flag->atomic().store(1);
        ::_exit(0);
      });
      handler_installed.raise();
      for (;;) ::pause();
    }};
    daemon.set_daemon(true);
    daemon.start();
    try {
      daemon.set_daemon(false);
      return 1;
    } catch (const mp::ValueError&) {  // too late: already started
    }
    if (!daemon.daemon()) return 2;
    mp::Process plain{[] { std::this_thread::sleep_for(60s); }};
    plain.start();
    daemon_pid.value() = daemon.pid();
    plain_pid.value() = plain.pid();
    handler_installed.wait();
    return 0;  // leaves with both children running
  }), 0);
  BOOST_CHECK(has_ended(daemon_pid.value()));  // joined by its parent on the way out
  BOOST_CHECK_EQUAL(daemon_got_sigterm.atomic().load(), 1);
  BOOST_CHECK(!has_ended(plain_pid.value()));
  ::kill(plain_pid.value(), SIGKILL);
}

// A parent killed with SIGKILL runs no exit code: the kernel kills its daemon (PR_SET_PDEATHSIG).
BOOST_AUTO_TEST_CASE(a_daemon_dies_with_a_parent_killed_by_sigkill) {
  mp::RawValue<pid_t> daemon_pid, plain_pid;
  BOOST_CHECK_EQUAL(test::in_child([&] {
    mp::Process daemon{[] { for (;;) ::pause(); }};
    daemon.set_daemon(true);
    daemon.start();
    mp::Process plain{[] { std::this_thread::sleep_for(60s); }};
    plain.start();
    daemon_pid.value() = daemon.pid();
    plain_pid.value() = plain.pid();
    ::raise(SIGKILL);
    return 0;
  }), -SIGKILL);
  BOOST_CHECK(ends_soon(daemon_pid.value()));
  BOOST_CHECK(!has_ended(plain_pid.value()));  // only daemons are tied to their parent
  ::kill(plain_pid.value(), SIGKILL);
  if (!has_ended(daemon_pid.value())) ::kill(daemon_pid.value(), SIGKILL);  // leave nothing running
}

BOOST_AUTO_TEST_CASE(a_daemon_may_not_start_children) {
  mp::Process daemon{[] {
    mp::Process grandchild{[] {}};
    try {
      grandchild.start();
    } catch (const mp::ValueError&) {
      return 0;
    }
    return 1;
  }};
  daemon.set_daemon(true);
  daemon.start();
  BOOST_REQUIRE(daemon.join(30s));
  BOOST_CHECK_EQUAL(*daemon.exitcode(), 0);
}

// CPython _TestProcess.test_active_children: listed once started, gone once ended; moves follow.
BOOST_AUTO_TEST_CASE(test_active_children) {
  test::Notice finish;
  mp::Process p{[&] { finish.wait(); }};
  auto listed = [](const mp::Process& which) {
    const auto children = mp::active_children();
    return std::count(children.begin(), children.end(), &which);
  };
  BOOST_CHECK_EQUAL(listed(p), 0);
  p.start();
  BOOST_CHECK_EQUAL(listed(p), 1);
  mp::Process moved = std::move(p);
  BOOST_CHECK_EQUAL(listed(p), 0);
  BOOST_CHECK_EQUAL(listed(moved), 1);
  BOOST_CHECK_EQUAL(test::in_child([] { return static_cast<int>(mp::active_children().size()); }), 0);
  finish.raise();
  BOOST_REQUIRE(moved.join(30s));
  BOOST_CHECK_EQUAL(listed(moved), 0);
}

// CPython _TestProcess.test_parent_process and test_parent_process_attributes: nullptr in the
// main process; in a child, the parent's name and pid; a grandchild sees its parent end.
BOOST_AUTO_TEST_CASE(test_parent_process) {
  BOOST_CHECK(mp::parent_process() == nullptr);
  const pid_t me = ::getpid();
  BOOST_CHECK_EQUAL(test::in_child([me] {
    const mp::Process* parent = mp::parent_process();
    if (parent == nullptr || parent->pid() != me || parent->name() != "MainProcess") return 1;
    return mp::parent_process()->is_alive() ? 0 : 2;
  }), 0);
  mp::RawValue<int> grandchild_saw;  // 1: parent alive, then 2: parent ended
  mp::RawValue<pid_t> grandchild_pid;
  test::Notice parent_gone;
  BOOST_CHECK_EQUAL(test::in_child([&] {
    mp::Process grandchild{[&] {
      mp::Process* parent = mp::parent_process();
      if (parent == nullptr || parent->pid() != ::getppid() || !parent->is_alive()) return 1;
      grandchild_saw.atomic().store(1);
      parent_gone.wait();
      for (int i = 0; i < 3000 && parent->is_alive(); ++i) std::this_thread::sleep_for(10ms);
      grandchild_saw.atomic().store(parent->is_alive() ? 3 : 2);
      return 0;
    }};
    grandchild.start();
    grandchild_pid.value() = grandchild.pid();
    while (grandchild_saw.atomic().load() == 0 && grandchild.is_alive()) std::this_thread::sleep_for(1ms);
    return 0;
  }), 0);
  parent_gone.raise();
  BOOST_CHECK(ends_soon(grandchild_pid.value()));
  BOOST_CHECK_EQUAL(grandchild_saw.atomic().load(), 2);
}

BOOST_AUTO_TEST_CASE(test_cpu_count) {
  const int n = mp::cpu_count();
  BOOST_CHECK_GE(n, 1);
  BOOST_CHECK_EQUAL(n, static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN)));
}

// CPython _TestProcess.test_close: refused while running; afterwards the object only answers
// name() and pid(); closing twice is harmless.
BOOST_AUTO_TEST_CASE(test_close) {
  test::Notice finish;
  mp::Process p{[&] { finish.wait(); }};
  p.start();
  BOOST_CHECK_THROW(p.close(), mp::ValueError);
  BOOST_CHECK(p.is_alive());  // the refused close changed nothing
  finish.raise();
  p.join();
  p.close();
  BOOST_CHECK_THROW((void)p.is_alive(), mp::ValueError);
  BOOST_CHECK_THROW(p.join(), mp::ValueError);
  BOOST_CHECK_THROW((void)p.exitcode(), mp::ValueError);
  BOOST_CHECK_THROW((void)p.sentinel(), mp::ValueError);
  BOOST_CHECK_THROW(p.terminate(), mp::ValueError);
  BOOST_CHECK_THROW(p.start(), mp::ValueError);
  BOOST_CHECK_NO_THROW(p.close());
  BOOST_CHECK(p.pid() > 0);
}

// CPython _TestProcess.test_sentinel: not readable while the child runs, readable once it ended,
// and the saved descriptor stays valid after join until close().
BOOST_AUTO_TEST_CASE(test_sentinel) {
  test::Notice finish;
  mp::Process p{[&] { finish.wait(); }};
  p.start();
  const int sentinel = p.sentinel();
  if (sentinel < 0) {  // no pidfds (an old kernel, valgrind): nothing to poll
    finish.raise();
    p.join();
    return;
  }
  pollfd ended{sentinel, POLLIN, 0};
  BOOST_CHECK_EQUAL(::poll(&ended, 1, 0), 0);
  finish.raise();
  p.join();
  BOOST_CHECK_EQUAL(::poll(&ended, 1, 0), 1);
  BOOST_CHECK_EQUAL(::fcntl(sentinel, F_GETFD), FD_CLOEXEC);  // still ours after join
  p.close();
  BOOST_CHECK_EQUAL(::fcntl(sentinel, F_GETFD), -1);
}
