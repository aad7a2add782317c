// The environments users really run in: Docker's 64 MiB /dev/shm, creators killed mid-build,
// files any local user can drop into /dev/shm, `multiproc gc` run from another PID namespace, and
// a process that is PID 1. Cases that need root (mount and PID namespaces, another user) run for
// real where they can and say why they were skipped where they cannot.
#define BOOST_TEST_MODULE hostile
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <thread>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;
using namespace std::chrono_literals;

namespace {

// A child's exit code meaning "this machine cannot run the case" (no root, no namespaces).
constexpr int cannot_run_here = 77;

std::string shm_path(const std::string& file) { return "/dev/shm/" + file; }

bool exists(const std::string& file) { return ::access(shm_path(file).c_str(), F_OK) == 0; }

void report_skip(const char* what, const char* why) {
  BOOST_TEST_MESSAGE("skipped: " << what << ": " << why);
  std::fprintf(stderr, "SKIPPED %s: %s\n", what, why);
}

std::optional<mp::SegmentInfo> listed_file(const std::string& file) {
  for (auto& info : mp::list_segments()) {
    if (info.file == file) {
      return info;
    }
  }
  return std::nullopt;
}

using ToolRun = test::CommandRun;
using test::run_command;

std::string tool() {
  const char* path = std::getenv("MULTIPROC_TOOL");
  BOOST_REQUIRE_MESSAGE(path != nullptr, "MULTIPROC_TOOL must name the multiproc binary");
  return path;
}

// In this (forked) process: a private mount namespace with a fresh tmpfs of `size` on /dev/shm,
// as a Docker container has. False where that needs privileges this process lacks.
bool private_dev_shm(const char* size) {
  if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return false;
  }
  const std::string options = std::string("size=") + size;
  return ::mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) == 0;
}

bool dev_shm_is_empty() { return std::filesystem::is_empty("/dev/shm"); }

// The errno of a system_error thrown by `make`, 0 if it succeeded, -1 for any other exception.
template <class Make>
int error_of(Make&& make) {
  try {
    make();
    return 0;
  } catch (const std::system_error& e) {
    return e.code().value();
  } catch (...) {
    return -1;
  }
}

}  // namespace

// Issue 13.1: creating more than /dev/shm has used to succeed and then kill the process with
// SIGBUS at the first write past the free space (inside Array's constructor, or when a ring was
// filled). Now the space is taken at creation, and a shortage is an error naming the sizes.
BOOST_AUTO_TEST_CASE(a_docker_sized_dev_shm_refuses_what_does_not_fit_and_keeps_what_does) {
  const int code = test::in_child([] {
    if (!private_dev_shm("64m")) {
      return cannot_run_here;
    }
    constexpr std::size_t mib = 1024 * 1024;
    // One object bigger than all of /dev/shm: refused, with a message a user can act on.
    try {
      mp::Array<char> big{mp::create, "too-big", 128 * mib};
      return 10;
    } catch (const std::system_error& e) {
      const std::string why = e.what();
      if (e.code().value() != ENOSPC || why.find("128.0 MiB") == std::string::npos ||
          why.find("/dev/shm has") == std::string::npos || why.find("--shm-size") == std::string::npos) {
        std::fprintf(stderr, "unexpected refusal: %s\n", why.c_str());
        return 11;
      }
    }
    if (!dev_shm_is_empty()) return 12;  // no name, no temporary file left behind
    if (error_of([] { mp::SpscRing<std::array<char, 1024>> ring{mp::create, "ring", 128 * 1024}; }) != ENOSPC) return 13;
    if (error_of([] { mp::Queue<std::array<char, 4096>> queue{mp::create, "queue", 64 * 1024}; }) != ENOSPC) return 14;
    if (!dev_shm_is_empty()) return 15;
    // Two that each fit but not together: the second is refused, the first keeps every byte.
    mp::Array<char> first{mp::create, "first", 40 * mib};
    std::fill(first.begin(), first.end(), 'x');  // every page written: no SIGBUS
    if (error_of([] { mp::Array<char> second{mp::create, "second", 40 * mib}; }) != ENOSPC) return 16;
    if (exists("multiproc.second")) return 17;
    if (std::count(first.begin(), first.end(), 'x') != static_cast<long>(40 * mib)) return 18;
    // A ring that fits is filled to the brim without a fault.
    mp::SpscRing<std::array<char, 1024>> ring{mp::create, "ring", 16 * 1024};
    while (ring.try_push(std::array<char, 1024>{})) {
    }
    mp::unlink("first");
    mp::unlink("ring");
    return dev_shm_is_empty() ? 0 : 19;
  });
  if (code == cannot_run_here) {
    report_skip("64 MiB /dev/shm", "needs root to mount a private tmpfs (unshare -m)");
    return;
  }
  BOOST_TEST(code == 0);
}

// Issue 13.1 and 13.9: anonymous objects are shmem too; one beyond the machine's memory is a
// std::system_error, never a foreign exception or the OOM killer.
BOOST_AUTO_TEST_CASE(an_anonymous_object_beyond_memory_is_a_system_error) {
  constexpr std::size_t tebibyte = std::size_t{1} << 40;
  try {
    mp::Array<char> huge(16 * tebibyte);
    BOOST_FAIL("a 16 TiB anonymous array was made");
  } catch (const std::system_error& e) {
    BOOST_TEST(e.code().value() == ENOMEM);
    BOOST_TEST(std::string(e.what()).find("16777216.0 MiB") != std::string::npos, e.what());
  }
}

// Issue 13.5: a creator killed while building used to leave its name behind, half made: create
// said AlreadyExists and open_or_create gave up after 2 s. Now the name appears only once the
// object is complete, and the temporary file it was built in is what gc finds.
BOOST_AUTO_TEST_CASE(a_creator_killed_while_building_leaves_no_name_behind) {
  const auto name = test::unique_name("killed-mid-build");
  mp::ScopedUnlink cleanup{name};
  const mp::Segment::Layout layout{mp::ObjectKind::value, mp::fingerprint_of<long>(), 0, 1, 1};
  mp::Process builder{[&] {
    mp::Segment segment(mp::create, name, layout, [](mp::Segment&) { ::raise(SIGKILL); });
    return 1;
  }};
  builder.start();
  builder.join();
  BOOST_REQUIRE(builder.exitcode() == -SIGKILL);
  BOOST_TEST(!exists(mp::shm_file_name(name)));
  BOOST_CHECK_THROW(mp::Value<long>(mp::open, name), mp::NotFound);
  mp::Value<long> made{mp::create, name, 7};  // the next create just works
  BOOST_TEST(made.load() == 7);

  // What the dead builder left: its temporary file, held by nobody, which gc may remove.
  const auto leaked = mp::find_leaked_segments("multiproc~building-" + std::to_string(builder.pid()) + "-");
  BOOST_REQUIRE_EQUAL(leaked.size(), 1u);
  BOOST_TEST((leaked[0].health == mp::SegmentInfo::Health::being_built));
  BOOST_TEST(leaked[0].name.empty());
  BOOST_TEST(!leaked[0].in_use);
  BOOST_TEST(mp::remove_if_unused(leaked[0]));
  BOOST_TEST(!exists(leaked[0].file));
}

// Issue 13.5 for leftovers of older versions, which built under the name itself: an empty file, or
// a header whose magic was never published, is taken over by the next create or open_or_create.
BOOST_AUTO_TEST_CASE(a_leftover_that_never_became_an_object_is_taken_over) {
  const auto empty = test::unique_name("empty-leftover");
  const auto unpublished = test::unique_name("unpublished-leftover");
  mp::ScopedUnlink cleanup1{empty};
  mp::ScopedUnlink cleanup2{unpublished};
  const int fd = ::open(shm_path(mp::shm_file_name(empty)).c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  BOOST_REQUIRE(fd >= 0);
  ::close(fd);
  {
    mp::Value<long> v{mp::create, unpublished, 1};
  }
  test::RawSegment(unpublished).header().magic = 0;

  const auto start = std::chrono::steady_clock::now();
  BOOST_CHECK_THROW(mp::Value<long>(mp::open, empty), mp::NotFound);
  BOOST_CHECK_THROW(mp::Value<long>(mp::open, unpublished), mp::NotFound);
  mp::Value<long> taken{mp::create, empty, 5};
  mp::Value<long> reopened{mp::open_or_create, unpublished, 6};
  BOOST_TEST(taken.load() == 5);
  BOOST_TEST(reopened.load() == 6);
  BOOST_TEST((std::chrono::steady_clock::now() - start < 2s));  // no waiting on a creator that is gone

  // A foreign file is never taken over: it may be someone else's.
  const auto foreign = test::unique_name("foreign");
  mp::ScopedUnlink cleanup3{foreign};
  {
    std::FILE* f = std::fopen(shm_path(mp::shm_file_name(foreign)).c_str(), "w");
    BOOST_REQUIRE(f != nullptr);
    std::fputs(std::string(4096, 'z').c_str(), f);
    std::fclose(f);
  }
  BOOST_CHECK_THROW(mp::Value<long>(mp::create, foreign, 1), mp::AlreadyExists);
  BOOST_CHECK_THROW(mp::Value<long>(mp::open_or_create, foreign, 1), mp::LayoutMismatch);
}

// Issue 13.3: a FIFO made `ls`, `gc` and `inspect` hang forever; a symlink made them exit 1; so
// did a non-root user as soon as another user owned an object. One bad entry never stops a
// listing: it is listed as unreadable, with the reason, and the tool exits 0.
BOOST_AUTO_TEST_CASE(files_any_user_can_drop_in_dev_shm_never_stop_a_listing) {
  const auto fifo = mp::shm_file_name(test::unique_name("fifo"));
  const auto link = mp::shm_file_name(test::unique_name("link"));
  const auto theirs = mp::shm_file_name(test::unique_name("theirs"));
  const auto held = test::unique_name("held");
  mp::ScopedUnlink cleanup1{fifo.substr(10)};
  mp::ScopedUnlink cleanup2{link.substr(10)};
  mp::ScopedUnlink cleanup3{theirs.substr(10)};
  mp::ScopedUnlink cleanup4{held};
  BOOST_REQUIRE_EQUAL(::mkfifo(shm_path(fifo).c_str(), 0666), 0);
  BOOST_REQUIRE_EQUAL(::symlink("/etc/passwd", shm_path(link).c_str()), 0);
  mp::Event mine{mp::create, held};
  // An object of another user, 0600: root makes it for nobody; others cannot make one.
  const bool as_root = ::geteuid() == 0;
  if (as_root) {
    mp::Value<int> v{mp::create.with_mode(0600), theirs.substr(10), 1};
    BOOST_REQUIRE_EQUAL(::chown(shm_path(theirs).c_str(), 0, 0), 0);
  }

  // The whole listing runs in a child: on a regression it hangs there, and in_child kills it.
  const int code = test::in_child(
      [&] {
        if (as_root && ::setuid(65534) != 0) {  // nobody: cannot read root's 0600 objects
          return 2;
        }
        const auto fifo_info = listed_file(fifo);
        const auto link_info = listed_file(link);
        if (!fifo_info || fifo_info->health != mp::SegmentInfo::Health::unreadable ||
            fifo_info->problem != "a FIFO, not a regular file")
          return 3;
        if (!link_info || link_info->health != mp::SegmentInfo::Health::unreadable ||
            link_info->problem != "a symbolic link, not a regular file")
          return 4;
        if (as_root) {
          const auto their_info = listed_file(theirs);
          if (!their_info || their_info->health != mp::SegmentInfo::Health::unreadable ||
              their_info->problem != "Permission denied")
            return 5;
        }
        for (const auto& leaked : mp::find_leaked_segments(test::name_prefix())) {
          if (leaked.file == fifo || leaked.file == link || leaked.file == theirs) return 6;
        }
        if (run_command(tool() + " ls").status != 0) return 7;
        if (run_command(tool() + " ls --json").status != 0) return 8;
        if (run_command(tool() + " gc --force " + test::name_prefix()).status != 0) return 9;
        const ToolRun inspect = run_command(tool() + " inspect " + fifo.substr(10));
        if (inspect.status != 1 || inspect.output.find("FIFO") == std::string::npos) {
          std::fprintf(stderr, "inspect of a FIFO: %d %s\n", inspect.status, inspect.output.c_str());
          return 10;
        }
        return 0;
      },
      20s);
  BOOST_TEST(code == 0);
  BOOST_TEST(exists(fifo));  // gc never removes what may not be ours
  BOOST_TEST(exists(link));
  BOOST_TEST(exists(mp::shm_file_name(held)));
  if (!as_root) {
    report_skip("another user's object", "needs root to make an object owned by another user");
  }
}

// Issue 13.4: from another PID namespace (a container) gc could not see the processes using an
// object, took its creator for dead and its mappers for gone, and removed it. The kernel's own
// record (the shared flock every holder keeps) is what counts now.
BOOST_AUTO_TEST_CASE(gc_from_another_pid_namespace_keeps_what_any_process_holds) {
  const auto held = test::unique_name("held-across-namespaces");
  const auto leaked = test::unique_name("leaked");
  mp::ScopedUnlink cleanup1{held};
  mp::ScopedUnlink cleanup2{leaked};
  for (const auto& name : {held, leaked}) {
    BOOST_REQUIRE_EQUAL(test::in_child([&] {
                          mp::Semaphore made{mp::create, name, 1};
                          return 0;
                        }),
                        0);
  }
  mp::Semaphore still_used{mp::open, held};  // creator dead, held only by this process

  if (const ToolRun probe = run_command("unshare --pid --fork --mount-proc true"); probe.status != 0) {
    report_skip("gc in another PID namespace", ("needs root for unshare --pid: " + probe.output).c_str());
    return;
  }
  const ToolRun gc = run_command("unshare --pid --fork --mount-proc " + tool() + " gc --force " + test::name_prefix());
  BOOST_TEST(gc.status == 0, gc.output);
  BOOST_TEST(!exists(mp::shm_file_name(leaked)), gc.output);  // it did run, and collect
  BOOST_TEST(exists(mp::shm_file_name(held)), gc.output);     // but not what this process holds
  still_used.release();
  BOOST_TEST(mp::Semaphore(mp::open, held).get_value() == 2);
}

// Issue 13.8: a process that is PID 1 (a container's entrypoint) believed its membarrier
// registration refused, because the "refused" sentinel was 1: as a waiter it then skipped the
// barrier its peers rely on (a lost wake-up shows only as a stall until the timeout, so the
// decision itself is checked). A blocking ping-pong between PID 1 and its child runs to the end.
BOOST_AUTO_TEST_CASE(a_blocking_ping_pong_runs_as_pid_1) {
  const int code = test::in_child(
      [] {
        if (::unshare(CLONE_NEWPID) != 0) {
          return cannot_run_here;
        }
        const pid_t init = ::fork();  // the first child in the new namespace is its PID 1
        if (init < 0) return 2;
        if (init == 0) {
          if (::getpid() != 1) ::_exit(3);
          // Registered once, it must stay registered: the peers skip their fence on that promise.
          if (mp::detail::light_barriers() != mp::detail::light_barriers()) ::_exit(7);
          mp::Queue<long> ping{4};
          mp::Queue<long> pong{4};
          mp::Process peer{[&] {
            for (long i = 0; i < 20000; ++i) {
              if (ping.get(10s) != i) return 4;
              pong.put(i);
            }
            return 0;
          }};
          peer.start();
          for (long i = 0; i < 20000; ++i) {
            ping.put(i);
            if (pong.get(10s) != i) ::_exit(5);
          }
          peer.join();
          ::_exit(peer.exitcode().value_or(6));
        }
        int status = 0;
        ::waitpid(init, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
      },
      120s);
  if (code == cannot_run_here) {
    report_skip("PID 1 ping-pong", "needs root for a PID namespace (unshare --pid)");
    return;
  }
  BOOST_TEST(code == 0);
}

// Issue 13.9: unlinking another user's object used to return false ("did not exist").
BOOST_AUTO_TEST_CASE(unlinking_another_users_object_is_a_permission_error) {
  if (::geteuid() != 0) {
    report_skip("unlink of another user's object", "needs root to make an object owned by another user");
    return;
  }
  const auto name = test::unique_name("not-yours");
  mp::ScopedUnlink cleanup{name};
  mp::Event event{mp::create.with_mode(0644), name};
  const int code = test::in_child([&] {
    if (::setuid(65534) != 0) return 2;
    const int err = error_of([&] { (void)mp::unlink(name); });
    return err == EPERM || err == EACCES ? 0 : 3;
  });
  BOOST_TEST(code == 0);
  BOOST_TEST(exists(mp::shm_file_name(name)));
}

// Issue 13.9: capacities no ring can have used to pass silently (SpscRing{SIZE_MAX} got capacity
// 1) or with a misleading reason (Queue<long>{SIZE_MAX}: "not a power of two").
BOOST_AUTO_TEST_CASE(capacities_no_ring_can_have_are_value_errors_and_leave_no_name) {
  constexpr std::size_t too_many[] = {std::numeric_limits<std::size_t>::max(),
                                      std::numeric_limits<std::size_t>::max() / 2 + 1,
                                      std::size_t{1} << 62};
  for (const std::size_t capacity : too_many) {
    BOOST_TEST_CONTEXT("capacity " << capacity) {
      const auto name = test::unique_name("too-many");
      BOOST_CHECK_THROW(mp::SpscRing<long>{capacity}, mp::ValueError);
      BOOST_CHECK_THROW((mp::SpscRing<long>{mp::create, name, capacity}), mp::ValueError);
      BOOST_CHECK_THROW(mp::MpmcRing<long>{capacity}, mp::ValueError);
      BOOST_CHECK_THROW((mp::MpmcRing<long>{mp::create, name, capacity}), mp::ValueError);
      BOOST_CHECK_THROW(mp::Queue<long>{capacity}, mp::ValueError);
      BOOST_CHECK_THROW((mp::Queue<long>{mp::create, name, capacity}), mp::ValueError);
      BOOST_CHECK_THROW(mp::JoinableQueue<long>{capacity}, mp::ValueError);
      BOOST_TEST(!exists(mp::shm_file_name(name)));
    }
  }
}

namespace {

// A message of two pages. The stopped producer protects the second page of its copy before some
// puts, so the put's copy into the slot it has claimed faults half way; the fault handler stops the
// producer with SIGSTOP right there and, once continued, unprotects the page and lets the copy
// finish. A stop exactly inside the claim window, every time.
constexpr std::size_t page_bytes = 4096;
struct Frame {
  long producer;
  long seq;
  std::array<unsigned char, 2 * page_bytes - 2 * sizeof(long)> payload;
};
static_assert(sizeof(Frame) == 2 * page_bytes);

unsigned char stamp(long producer, long seq) { return static_cast<unsigned char>(producer * 31 + seq); }

void* trapped_page = nullptr;  // in the stopped producer: the page its next put faults on

void stop_inside_the_copy(int /*signal*/) {
  ::raise(SIGSTOP);
  ::mprotect(trapped_page, page_bytes, PROT_READ | PROT_WRITE);
}

// Shared by the test and its two producers (an anonymous shared mapping, made before the forks).
struct ProducerTally {
  std::array<std::atomic<long>, 2> puts_done;  // producer i's completed puts; written by it, read by the test
  std::atomic<bool> finish;                    // set by the test; producers stop putting
};

}  // namespace

// Issue 13.10: a producer stopped (not killed) after claiming a slot of a slot queue holds the
// consumers back once they reach that slot, and only until it runs again: every get(timeout)
// keeps its timeout meanwhile, and when the producer is continued every message arrives, once, in
// each producer's order. Producer 0 stops itself inside its copy on three of its puts; producer 1
// keeps putting, so a get that times out while one of producer 1's messages was already in the
// queue shows the hold.
BOOST_AUTO_TEST_CASE(a_stopped_producer_holds_consumers_back_only_until_it_runs_again) {
  void* shared = ::mmap(nullptr, sizeof(ProducerTally), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  BOOST_REQUIRE(shared != MAP_FAILED);
  auto* tally = new (shared) ProducerTally{};
  constexpr std::array<long, 3> stopping_puts{20, 60, 100};
  mp::Queue<Frame> queue{4};
  const auto produce = [&](long id, std::chrono::microseconds pause) {
    void* memory = ::mmap(nullptr, sizeof(Frame), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) return 2;
    auto* frame = new (memory) Frame{};
    trapped_page = static_cast<char*>(memory) + page_bytes;
    for (long seq = 0;; ++seq) {
      frame->producer = id;
      frame->seq = seq;
      frame->payload.front() = frame->payload.back() = stamp(id, seq);
      if (id == 0 && std::ranges::find(stopping_puts, seq) != stopping_puts.end()) {
        ::mprotect(trapped_page, page_bytes, PROT_NONE);
      }
      while (true) {
        if (tally->finish.load()) return 0;
        try {
          queue.put(*frame, 50ms);
          break;
        } catch (const mp::Full&) {
        }
      }
      tally->puts_done[id].store(seq + 1);
      std::this_thread::sleep_for(pause);
    }
  };
  mp::Process stopped{[&] {
    struct sigaction action{};
    action.sa_handler = stop_inside_the_copy;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGSEGV, &action, nullptr);
    return produce(0, 100us);
  }};
  mp::Process steady{[&] { return produce(1, 2ms); }};
  stopped.set_daemon(true);  // a failed check ends the test early: the producers must not outlive it
  steady.set_daemon(true);
  stopped.start();
  steady.start();

  ::alarm(120);  // a get that ignored its timeout would hang here: end the test instead
  Frame frame{};
  std::array<long, 2> next_seq{0, 0};
  const auto take = [&](std::chrono::milliseconds timeout) {
    try {
      frame = queue.get(timeout);
    } catch (const mp::Empty&) {
      return false;
    }
    BOOST_REQUIRE(frame.producer == 0 || frame.producer == 1);
    BOOST_REQUIRE_EQUAL(frame.seq, next_seq[frame.producer]);
    BOOST_REQUIRE(frame.payload.front() == stamp(frame.producer, frame.seq));
    BOOST_REQUIRE(frame.payload.back() == stamp(frame.producer, frame.seq));
    ++next_seq[frame.producer];
    return true;
  };
  int holds = 0;
  for (std::size_t stop = 0; stop < stopping_puts.size(); ++stop) {
    siginfo_t info{};
    do {  // take messages until the producer has stopped itself
      (void)take(1ms);
      BOOST_REQUIRE_EQUAL(::waitid(P_PID, static_cast<id_t>(stopped.pid()), &info, WSTOPPED | WNOHANG), 0);
    } while (info.si_pid == 0);
    for (int i = 0; i < 200; ++i) {
      const long steady_put = tally->puts_done[1].load();  // read before the get begins
      if (!take(20ms) && steady_put > next_seq[1]) {
        ++holds;  // that message was in the queue all along, behind the stopped producer's slot
        break;
      }
    }
    BOOST_REQUIRE_EQUAL(::kill(stopped.pid(), SIGCONT), 0);
  }
  tally->finish.store(true);
  BOOST_REQUIRE(stopped.join(30s));
  BOOST_REQUIRE(steady.join(30s));
  while (take(100ms)) {
  }
  ::alarm(0);
  BOOST_TEST(stopped.exitcode().value_or(-1) == 0);
  BOOST_TEST(steady.exitcode().value_or(-1) == 0);
  BOOST_TEST(holds == static_cast<int>(stopping_puts.size()));
  BOOST_TEST(next_seq[0] > stopping_puts.back());
  BOOST_TEST(next_seq[0] == tally->puts_done[0].load());
  BOOST_TEST(next_seq[1] == tally->puts_done[1].load());
  ::munmap(shared, sizeof(ProducerTally));
}
