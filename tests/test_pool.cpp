// Pool: every call, ordering of imap vs imap_unordered, chunksize, initializer, maxtasksperchild,
// exceptions, workers that die mid-task, terminate, and many small tasks.
#define BOOST_TEST_MODULE pool
#include <signal.h>

#include <fstream>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <atomic>
#include <chrono>
#include <numeric>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;
using namespace std::chrono_literals;

namespace {

int square(int x) { return x * x; }
long long wide_square(int x) { return static_cast<long long>(x) * x; }  // for inputs past 46,340
long add(int a, long b) { return a + b; }
std::string shout(std::string s) { return s + "!"; }
int fails(int x) {
  if (x == 3) throw std::invalid_argument("three is not allowed");
  return x;
}
int dies_on_three(int x) {
  if (x == 3) ::raise(SIGKILL);
  return x;
}
int aborts(int) { std::abort(); }
int sleep_then_return(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
int my_pid(int) { return ::getpid(); }
std::string huge_result(int megabytes) { return std::string(static_cast<std::size_t>(megabytes) << 20, 'x'); }

// Counts worker starts in shared memory: the initializer of every new worker adds one.
mp::RawValue<int>* initializer_runs = nullptr;

}  // namespace

BOOST_AUTO_TEST_CASE(map_apply_starmap_and_their_async_forms) {
  mp::Pool pool{2};
  BOOST_CHECK_EQUAL(pool.processes(), 2);
  BOOST_CHECK(pool.map(square, std::vector<int>{1, 2, 3, 4}) == (std::vector<int>{1, 4, 9, 16}));
  BOOST_CHECK(pool.map(square, std::views::iota(0, 100), 7) ==
              [] {
                std::vector<int> v;
                for (int i = 0; i < 100; ++i) v.push_back(i * i);
                return v;
              }());
  BOOST_CHECK(pool.map(square, std::vector<int>{}).empty());
  BOOST_CHECK_EQUAL(pool.apply(square, 12), 144);
  BOOST_CHECK_EQUAL(pool.apply(shout, std::string("hi")), "hi!");  // codec arguments and results
  auto async = pool.apply_async(add, 40, 2L);
  BOOST_CHECK_EQUAL(async.get(10s), 42);
  BOOST_CHECK(async.ready());
  BOOST_CHECK(async.successful());
  BOOST_CHECK(pool.starmap(add, std::vector<std::tuple<int, long>>{{1, 2}, {3, 4}}) == (std::vector<long>{3, 7}));
  auto mapped = pool.map_async(square, std::vector<int>{5, 6});
  auto starmapped = pool.starmap_async(add, std::vector<std::tuple<int, long>>{{10, 20}});
  BOOST_CHECK(mapped.get() == (std::vector<int>{25, 36}));
  BOOST_CHECK(starmapped.get() == (std::vector<long>{30}));
}

BOOST_AUTO_TEST_CASE(a_result_too_large_to_travel_fails_its_task_only) {
  mp::Pool pool{1};
  try {
    (void)pool.apply(huge_result, 32);  // more than the 16 MiB the results ring holds
    BOOST_FAIL("expected RemoteError");
  } catch (const mp::RemoteError& e) {
    BOOST_CHECK_EQUAL(e.type_name(), "multiproc::MessageTooLarge");
  }
  BOOST_CHECK_EQUAL(pool.apply(huge_result, 1).size(), std::size_t{1} << 20);  // same worker, still fine
}

BOOST_AUTO_TEST_CASE(callbacks_and_timeouts) {
  mp::Pool pool{2};
  std::atomic<int> got{0};
  std::atomic<bool> error_seen{false};
  auto ok = pool.apply_async(square, std::tuple{9}, [&](int r) { got = r; }, [&](const mp::Error&) {});
  auto bad = pool.apply_async(fails, std::tuple{3}, [&](int) {}, [&](const mp::Error& e) {
    error_seen = std::string(e.what()).find("three is not allowed") != std::string::npos;
  });
  ok.wait();
  bad.wait();
  std::this_thread::sleep_for(50ms);  // the callbacks run on the pool's thread, just after completion
  BOOST_CHECK_EQUAL(got.load(), 81);
  BOOST_CHECK(error_seen.load());
  BOOST_CHECK(!bad.successful());

  auto slow = pool.apply_async(sleep_then_return, 500);
  BOOST_CHECK_THROW((void)slow.successful(), mp::ValueError);  // not ready yet
  BOOST_CHECK_THROW(slow.get(50ms), mp::Timeout);
  BOOST_CHECK(!slow.wait(10ms));
  BOOST_CHECK_EQUAL(slow.get(), 500);
}

BOOST_AUTO_TEST_CASE(an_exception_in_a_task_arrives_as_remote_error) {
  mp::Pool pool{2};
  try {
    pool.apply(fails, 3);
    BOOST_FAIL("expected RemoteError");
  } catch (const mp::RemoteError& e) {
    BOOST_CHECK_EQUAL(e.type_name(), "std::invalid_argument");
    BOOST_CHECK_EQUAL(e.message(), "three is not allowed");
  }
  BOOST_CHECK_THROW(pool.map(fails, std::views::iota(0, 10)), mp::RemoteError);
  BOOST_CHECK_EQUAL(pool.apply(fails, 4), 4);  // the pool goes on
}

BOOST_AUTO_TEST_CASE(imap_keeps_input_order_and_imap_unordered_yields_as_ready) {
  mp::Pool pool{4};
  // Tasks that take longer the earlier they come: 300, 200, 100, 0 ms.
  const std::vector<int> sleeps{300, 200, 100, 0};
  std::vector<int> in_order;
  for (int r : pool.imap(sleep_then_return, sleeps)) in_order.push_back(r);
  BOOST_CHECK(in_order == sleeps);
  std::vector<int> as_ready;
  for (int r : pool.imap_unordered(sleep_then_return, sleeps)) as_ready.push_back(r);
  BOOST_CHECK(as_ready == (std::vector<int>{0, 100, 200, 300}));
}

BOOST_AUTO_TEST_CASE(imap_streams_a_long_input_lazily) {
  mp::Pool pool{2};
  long long sum = 0;
  std::size_t count = 0;
  // An input too long to materialise at once would still stream: only a few chunks are ever out.
  for (int r : pool.imap_unordered(square, std::views::iota(0, 20000), 100)) {
    sum += r;
    ++count;
  }
  BOOST_CHECK_EQUAL(count, 20000u);
  long long expected = 0;
  for (long long i = 0; i < 20000; ++i) expected += i * i;
  BOOST_CHECK_EQUAL(sum, expected);
  std::vector<int> first;
  for (int r : pool.imap(square, std::views::iota(1))) {  // infinite input: stop whenever we like
    first.push_back(r);
    if (first.size() == 5) break;
  }
  BOOST_CHECK(first == (std::vector<int>{1, 4, 9, 16, 25}));
}

BOOST_AUTO_TEST_CASE(initializer_runs_once_per_worker_and_maxtasksperchild_replaces_workers) {
  mp::RawValue<int> runs;
  initializer_runs = &runs;
  {
    mp::Pool pool{2, [] { initializer_runs->atomic().fetch_add(1); }};
    (void)pool.map(square, std::views::iota(0, 50), 1);
    // One worker may finish all 50 tasks before the other is even up (slow under ASan): count after
    // both have started and left.
    pool.close();
    pool.join();
    BOOST_CHECK_EQUAL(runs.load(), 2);
  }
  runs.store(0);
  {
    mp::Pool pool{2, [] { initializer_runs->atomic().fetch_add(1); }, 3};
    const auto pids = pool.map(my_pid, std::views::iota(0, 30), 1);
    const std::set<int> distinct(pids.begin(), pids.end());
    BOOST_CHECK_GE(distinct.size(), 10u);  // 30 tasks, 3 per worker
    BOOST_CHECK_GE(runs.load(), 10);
  }
}

BOOST_AUTO_TEST_CASE(a_failing_initializer_breaks_the_pool_for_every_call) {
  mp::Pool pool{2, [] { throw std::runtime_error("no database"); }};
  try {
    // Refused at once if the pool already broke, or failed when it breaks.
    (void)pool.apply_async(square, 2).get(10s);
    BOOST_FAIL("expected BrokenPool");
  } catch (const mp::BrokenPool& e) {
    BOOST_TEST(std::string(e.what()).find("no database") != std::string::npos, e.what());
  }
  BOOST_CHECK_THROW(pool.apply(square, 3), mp::BrokenPool);  // later calls too
  BOOST_CHECK_THROW(pool.map(square, std::vector<int>{1}), mp::BrokenPool);
}

BOOST_AUTO_TEST_CASE(a_worker_that_dies_mid_task_fails_only_its_task_and_is_replaced) {
  mp::Pool pool{2};
  const auto start = std::chrono::steady_clock::now();
  auto lost = pool.apply_async(dies_on_three, 3);
  BOOST_CHECK_THROW((void)lost.get(10s), mp::WorkerLost);
  BOOST_CHECK(std::chrono::steady_clock::now() - start < 1s);  // reported within a second
  BOOST_CHECK_THROW((void)pool.apply(aborts, 0), mp::WorkerLost);
  // The others carry on, on replacement workers.
  BOOST_CHECK(pool.map(square, std::views::iota(0, 20)).size() == 20);
  auto results = pool.map_async(dies_on_three, std::views::iota(0, 6), 1);
  BOOST_CHECK_THROW((void)results.get(10s), mp::WorkerLost);
  BOOST_CHECK_EQUAL(pool.apply(square, 5), 25);
}

BOOST_AUTO_TEST_CASE(terminate_with_tasks_running_and_close_join) {
  mp::Pool pool{2};
  auto running = pool.apply_async(sleep_then_return, 5000);
  auto queued = pool.map_async(sleep_then_return, std::vector<int>(10, 1000), 1);
  std::this_thread::sleep_for(100ms);
  const auto start = std::chrono::steady_clock::now();
  pool.terminate();
  BOOST_CHECK(std::chrono::steady_clock::now() - start < 2s);
  BOOST_CHECK_THROW((void)running.get(1s), mp::BrokenPool);
  BOOST_CHECK_THROW((void)queued.get(1s), mp::BrokenPool);
  BOOST_CHECK_THROW(pool.apply(square, 1), mp::ValueError);  // refused at once: the pool was terminated

  mp::Pool closing{2};
  auto before = closing.map_async(sleep_then_return, std::vector<int>{50, 50, 50});
  closing.close();
  BOOST_CHECK_THROW(closing.apply(square, 1), mp::ValueError);  // no new work after close
  closing.join();
  BOOST_CHECK(before.get(1s) == (std::vector<int>{50, 50, 50}));  // queued work was finished
}

BOOST_AUTO_TEST_CASE(a_hundred_thousand_small_tasks) {
  mp::Pool pool{2};
  const auto squares = pool.map(wide_square, std::views::iota(0, 100000), 1);
  BOOST_REQUIRE_EQUAL(squares.size(), 100000u);
  for (int i = 0; i < 100000; i += 997) {
    BOOST_REQUIRE_EQUAL(squares[static_cast<std::size_t>(i)], static_cast<long long>(i) * i);
  }
  const auto chunked = pool.map(wide_square, std::views::iota(0, 100000));  // default chunksize
  BOOST_CHECK(chunked == squares);
}

BOOST_AUTO_TEST_CASE(executor_submit_result_callbacks_and_map) {
  mp::ProcessPoolExecutor executor{2};
  auto f = executor.submit(add, 1, 2L);
  BOOST_CHECK_EQUAL(f.result(10s), 3);
  BOOST_CHECK(f.done());
  BOOST_CHECK(!f.exception());
  auto bad = executor.submit(fails, 3);
  BOOST_CHECK(bad.exception(10s) != nullptr);
  BOOST_CHECK_THROW((void)bad.result(), mp::RemoteError);
  std::atomic<int> seen{0};
  auto later = executor.submit(sleep_then_return, 100);
  later.add_done_callback([&](mp::Future<int>& done) { seen = done.result(); });
  BOOST_CHECK_THROW((void)later.result(10ms), mp::Timeout);
  BOOST_CHECK_EQUAL(later.result(), 100);
  std::this_thread::sleep_for(50ms);
  BOOST_CHECK_EQUAL(seen.load(), 100);
  bool ran_at_once = false;
  later.add_done_callback([&](mp::Future<int>&) { ran_at_once = true; });  // already done
  BOOST_CHECK(ran_at_once);
  std::vector<int> mapped;
  for (int r : executor.map(square, std::vector<int>{3, 1, 2})) mapped.push_back(r);
  BOOST_CHECK(mapped == (std::vector<int>{9, 1, 4}));
}

BOOST_AUTO_TEST_CASE(executor_cancel_as_completed_and_wait) {
  mp::ProcessPoolExecutor executor{2};
  std::vector<mp::Future<int>> futures;
  for (int ms : {300, 0, 150}) futures.push_back(executor.submit(sleep_then_return, ms));
  std::vector<int> order;
  for (auto& done : mp::as_completed(futures, 10s)) order.push_back(done.result());
  BOOST_CHECK_EQUAL(order.size(), 3u);
  BOOST_CHECK_EQUAL(order.back(), 300);  // the longest finishes last

  // Keep both workers busy with more queued behind them: the last one is still queued and can be cancelled.
  std::vector<mp::Future<int>> busy;
  for (int i = 0; i < 4; ++i) busy.push_back(executor.submit(sleep_then_return, 300));
  auto queued = executor.submit(sleep_then_return, 300);
  std::this_thread::sleep_for(50ms);
  BOOST_CHECK(queued.cancel());
  BOOST_CHECK(queued.cancelled());
  BOOST_CHECK_THROW((void)queued.result(), mp::Cancelled);
  BOOST_CHECK(!busy[0].cancel());  // running: too late
  const auto first = mp::wait(busy, mp::ReturnWhen::first_completed, 10s);
  BOOST_CHECK_GE(first.done.size(), 1u);
  const auto all = mp::wait(busy, mp::ReturnWhen::all_completed, 10s);
  BOOST_CHECK_EQUAL(all.done.size(), 4u);
  BOOST_CHECK(all.not_done.empty());
  auto failing = executor.submit(fails, 3);
  auto slow = executor.submit(sleep_then_return, 2000);
  const auto on_error = mp::wait(std::vector{failing, slow}, mp::ReturnWhen::first_exception, 10s);
  BOOST_CHECK_EQUAL(on_error.done.size(), 1u);  // returned on the failure, not after the slow one
  auto never = executor.submit(sleep_then_return, 2000);
  const auto start = std::chrono::steady_clock::now();
  BOOST_CHECK_THROW(
      for (auto& done : mp::as_completed(std::vector{never}, 100ms)) (void)done, mp::Timeout);
  BOOST_CHECK(std::chrono::steady_clock::now() - start < 2s);
}

BOOST_AUTO_TEST_CASE(executor_shutdown_can_cancel_queued_calls) {
  mp::ProcessPoolExecutor executor{1};
  std::vector<mp::Future<int>> futures;
  for (int i = 0; i < 6; ++i) futures.push_back(executor.submit(sleep_then_return, 100));
  std::this_thread::sleep_for(30ms);
  executor.shutdown(true, true);
  int cancelled = 0;
  int finished = 0;
  for (auto& f : futures) {
    BOOST_CHECK(f.done());
    cancelled += f.cancelled();
    finished += !f.cancelled() && f.result() == 100;
  }
  BOOST_CHECK_EQUAL(cancelled + finished, 6);
  BOOST_CHECK_GE(cancelled, 1);  // one worker holds two at most; the rest were still queued
  BOOST_CHECK_THROW((void)executor.submit(square, 1), mp::ValueError);  // refused at once after shutdown
}

namespace {

// The live (not zombie) children of this process: the pool's workers.
std::vector<int> live_children() {
  std::vector<int> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const auto after = line.rfind(')');
    if (after == std::string::npos) continue;
    char state = 0;
    int parent = 0;
    std::sscanf(line.c_str() + after + 2, "%c %d", &state, &parent);
    if (parent == ::getpid() && state != 'Z') found.push_back(std::stoi(name));
  }
  return found;
}

int short_sleep(int x) {
  std::this_thread::sleep_for(200us);
  return x;
}

}  // namespace

BOOST_AUTO_TEST_CASE(workers_killed_at_random_never_hang_a_call) {
  // A second thread SIGKILLs a random worker every few milliseconds while a map runs. Each map
  // must end - with its results or with WorkerLost - and the pool must go on answering.
  for (unsigned round = 0; round < 5; ++round) {
    mp::Pool pool{3};
    std::atomic<bool> stop{false};
    std::thread killer([&] {
      std::mt19937 random(round);
      while (!stop) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5 + random() % 20));
        const auto workers = live_children();
        if (!workers.empty()) ::kill(workers[random() % workers.size()], SIGKILL);
      }
    });
    const auto start = std::chrono::steady_clock::now();
    try {
      BOOST_CHECK_EQUAL(pool.map(short_sleep, std::views::iota(0, 200), 1).size(), 200u);
    } catch (const mp::WorkerLost&) {
    }
    stop = true;
    killer.join();
    BOOST_CHECK(std::chrono::steady_clock::now() - start < 30s);
    BOOST_CHECK_EQUAL(pool.apply(short_sleep, 7), 7);  // tasks given to a worker killed before it took them are rerun
  }
}

BOOST_AUTO_TEST_CASE(only_the_task_a_dead_worker_took_fails) {
  mp::Pool pool{1};
  // The one worker takes `dies_on_three(3)` and dies; the task queued behind it never started
  // and runs on the replacement.
  auto dying = pool.apply_async(dies_on_three, 3);
  auto behind = pool.apply_async(square, 4);
  BOOST_CHECK_THROW((void)dying.get(10s), mp::WorkerLost);
  BOOST_CHECK_EQUAL(behind.get(10s), 16);
}

// Checks that the orphaned pool worker `worker` ends within 5 s (or is a zombie nobody reaps: an
// orphan's new parent may be a container's init that never waits); kills it if not, so that it
// does not hold the test's output open.
namespace {
void check_leaves_within_5s(pid_t worker) {
  const auto gone = [worker] {
    std::ifstream stat("/proc/" + std::to_string(worker) + "/stat");
    std::string pid_field, name, state;
    return !(stat >> pid_field >> name >> state) || state == "Z";
  };
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!gone() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  BOOST_CHECK_MESSAGE(gone(), "worker " << worker << " outlived its pool's process");
  if (!gone()) {
    ::kill(worker, SIGKILL);
  }
}
}  // namespace

// A process killed while it owns a pool leaves no worker behind: each notices that its parent is
// gone (at its next 50 ms look) and leaves, instead of waiting for tasks for ever.
BOOST_AUTO_TEST_CASE(workers_leave_when_the_pools_process_is_killed) {
  mp::RawValue<int> worker_pid;
  mp::Process owner{[&] {
    mp::Pool pool{2};
    worker_pid.store(pool.apply(my_pid, 0));
    ::raise(SIGKILL);
    return 0;
  }};
  owner.start();
  BOOST_REQUIRE(owner.join(10s));
  const pid_t worker = worker_pid.load();
  BOOST_REQUIRE(worker > 0);
  check_leaves_within_5s(worker);
}

// The same when the pool's process dies at once, before its workers have run an instruction of
// their own: a worker must not learn its pool's process from getppid(), which by then may already
// name its new parent (the hang this test caught: workers waiting for ever, holding the test's
// stdout open).
BOOST_AUTO_TEST_CASE(workers_leave_when_the_pools_process_dies_as_they_start) {
  constexpr int workers = 4;
  mp::RawArray<pid_t> worker_pids(workers);
  mp::Process owner{[&] {
    mp::Pool pool{workers};
    // This process's children are the pool's workers (the manager is a thread).
    std::ifstream children("/proc/self/task/" + std::to_string(::getpid()) + "/children");
    for (int i = 0; i < workers && children >> worker_pids[static_cast<std::size_t>(i)]; ++i) {
    }
    ::raise(SIGKILL);
    return 0;
  }};
  owner.start();
  BOOST_REQUIRE(owner.join(10s));
  for (const pid_t worker : worker_pids) {
    BOOST_REQUIRE(worker > 0);
    check_leaves_within_5s(worker);
  }
}

// A pool moved from takes no calls and says so (it used to dereference a null core).
BOOST_AUTO_TEST_CASE(a_moved_from_pool_refuses_calls_with_value_error) {
  mp::Pool from{1};
  mp::Pool to{std::move(from)};
  BOOST_CHECK_THROW(from.apply(square, 2), mp::ValueError);  // NOLINT(bugprone-use-after-move): the point
  BOOST_CHECK_THROW(from.close(), mp::ValueError);           // NOLINT(bugprone-use-after-move)
  BOOST_CHECK_EQUAL(from.processes(), 0);                    // NOLINT(bugprone-use-after-move)
  BOOST_CHECK_EQUAL(to.apply(square, 3), 9);
}
