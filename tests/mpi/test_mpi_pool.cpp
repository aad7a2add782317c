// The cluster pools across real MPI ranks: started by mpirun with 4 ranks (rank 0 the client, three
// serving ranks, each with a local pool). Every rank runs every test case in order, since each
// pool is collective: a serving rank serves inside the constructor, then leaves the test case.
#define BOOST_TEST_MODULE mpi_pool
#include <dlfcn.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <ranges>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <boost/test/unit_test.hpp>

#include <multiproc/mpi.hpp>

namespace mp = multiproc;
namespace mpi = multiproc::mpi;
using namespace std::chrono_literals;

namespace {

constexpr int tasks = 10000;

int square(int x) { return x * x; }
long add(int a, long b) { return a + b; }
std::string shout(std::string s) { return s + "!"; }
int fails_on_three(int x) {
  if (x == 3) throw std::invalid_argument("three is not allowed");
  return x;
}
int dies_on_seven(int x) {
  if (x == 7) ::raise(SIGKILL);
  return x;
}
int sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
int my_pid(int) { return ::getpid(); }

// "<rank's pid> <its CPU time in clock ticks>", read by a local worker about its parent, the rank.
std::string rank_cpu_ticks(int) {
  std::ifstream stat("/proc/" + std::to_string(::getppid()) + "/stat");
  std::string line;
  std::getline(stat, line);
  std::istringstream fields(line.substr(line.rfind(')') + 2));  // from field 3, the state, on
  std::string field;
  long long ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stoll(field);  // utime, stime
  }
  return std::to_string(::getppid()) + " " + std::to_string(ticks);
}

double process_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

std::vector<int> squares_of(int n) {
  std::vector<int> out;
  for (int i = 0; i < n; ++i) out.push_back(i * i);
  return out;
}

// MPI for the whole test program, on every rank.
std::unique_ptr<mpi::World>& world() {
  static std::unique_ptr<mpi::World> the_world;
  return the_world;
}
struct MpiWorld {
  MpiWorld() {
    auto& suite = boost::unit_test::framework::master_test_suite();
    world() = std::make_unique<mpi::World>(suite.argc, suite.argv);
  }
  ~MpiWorld() { world().reset(); }
};
BOOST_TEST_GLOBAL_FIXTURE(MpiWorld);

using CubeFunction = int (*)(int);
CubeFunction load_cube_module() {
  const char* path = std::getenv("MULTIPROC_TEST_UNSHARED_MODULE");
  BOOST_REQUIRE_MESSAGE(path != nullptr, "MULTIPROC_TEST_UNSHARED_MODULE names the test's task library");
  void* module = ::dlopen(path, RTLD_NOW);
  BOOST_REQUIRE_MESSAGE(module != nullptr, ::dlerror());
  return reinterpret_cast<CubeFunction>(::dlsym(module, "cube_from_module"));
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_job_has_four_ranks_and_rank_zero_is_the_client) {
  BOOST_REQUIRE_EQUAL(world()->size(), 4);
  mpi::Pool pool{*world()};
  BOOST_CHECK_EQUAL(pool.is_client(), world()->rank() == 0);
  if (!pool.is_client()) return;
  BOOST_CHECK_GE(pool.processes(), 3);  // at least one local worker per serving rank
  // Tasks run in processes other than the client's, spread over several of them.
  const auto pids = pool.map(my_pid, std::views::iota(0, 300), 1);
  const std::set<int> distinct(pids.begin(), pids.end());
  BOOST_CHECK(!distinct.contains(::getpid()));
  BOOST_CHECK_GE(distinct.size(), 2u);
}

BOOST_AUTO_TEST_CASE(map_imap_imap_unordered_starmap_apply_are_exact_over_ten_thousand_tasks) {
  mpi::Pool pool{*world()};
  if (!pool.is_client()) return;
  const auto expected = squares_of(tasks);
  BOOST_CHECK(pool.map(square, std::views::iota(0, tasks)) == expected);     // default chunks
  BOOST_CHECK(pool.map(square, std::views::iota(0, tasks), 1) == expected);  // one task each
  BOOST_CHECK(pool.map(square, std::views::iota(0, tasks), 333) == expected);
  BOOST_CHECK(pool.map(square, std::vector<int>{}).empty());

  std::vector<int> in_order;
  for (int s : pool.imap(square, std::views::iota(0, tasks))) in_order.push_back(s);
  BOOST_CHECK(in_order == expected);
  std::vector<int> chunked;
  for (int s : pool.imap(square, std::views::iota(0, tasks), 7)) chunked.push_back(s);
  BOOST_CHECK(chunked == expected);

  std::multiset<int> unordered;
  for (int s : pool.imap_unordered(square, std::views::iota(0, tasks))) unordered.insert(s);
  BOOST_CHECK(unordered == std::multiset<int>(expected.begin(), expected.end()));

  std::vector<std::tuple<int, long>> pairs;
  std::vector<long> sums;
  for (int i = 0; i < tasks; ++i) {
    pairs.emplace_back(i, 3L * i);
    sums.push_back(4L * i);
  }
  BOOST_CHECK(pool.starmap(add, pairs) == sums);
  BOOST_CHECK(pool.starmap_async(add, pairs, 1).get(60s) == sums);

  // 64 arguments of 200 kB each: batches of tasks and of results split at 4 MiB.
  const std::vector<std::string> big(64, std::string(200000, 'x'));
  const auto shouted = pool.map(shout, big, 1);
  BOOST_REQUIRE_EQUAL(shouted.size(), big.size());
  for (const auto& s : shouted) BOOST_CHECK(s == big.front() + "!");

  auto mapped = pool.map_async(square, std::views::iota(0, tasks), 10);
  BOOST_CHECK_EQUAL(pool.apply(square, 12), 144);
  BOOST_CHECK_EQUAL(pool.apply(shout, std::string("hi")), "hi!");  // codec arguments and results
  auto async = pool.apply_async(add, 40, 2L);
  BOOST_CHECK_EQUAL(async.get(60s), 42);
  BOOST_CHECK(async.successful());
  BOOST_CHECK(mapped.get(60s) == expected);
  pool.close();
  pool.join();
}

BOOST_AUTO_TEST_CASE(executor_submit_map_as_completed_and_wait_use_the_local_future) {
  mpi::Executor ex{*world()};
  if (!ex.is_client()) return;
  std::vector<mp::Future<int>> futures;
  for (int i = 0; i < tasks; ++i) futures.push_back(ex.submit(square, i));
  long long from_futures = 0;
  for (auto& f : futures) from_futures += f.result(60s);
  long long from_as_completed = 0;
  int completed = 0;
  for (auto& done : mp::as_completed(futures, 60s)) {
    from_as_completed += done.result();
    ++completed;
  }
  long long expected = 0;
  for (int s : squares_of(tasks)) expected += s;
  BOOST_CHECK_EQUAL(from_futures, expected);
  BOOST_CHECK_EQUAL(from_as_completed, expected);
  BOOST_CHECK_EQUAL(completed, tasks);
  auto [done, not_done] = mp::wait(std::vector{ex.submit(sleep_ms, 1), ex.submit(sleep_ms, 2)});
  BOOST_CHECK_EQUAL(done.size(), 2u);
  BOOST_CHECK(not_done.empty());
  std::vector<int> mapped;
  for (int s : ex.map(square, std::views::iota(0, tasks))) mapped.push_back(s);
  BOOST_CHECK(mapped == squares_of(tasks));
  int calls = 0;
  auto f = ex.submit(square, 9);
  f.add_done_callback([&calls](mp::Future<int>& done_future) { calls += done_future.result() == 81 ? 1 : 100; });
  BOOST_CHECK_EQUAL(f.result(60s), 81);
  ex.shutdown(true);
  BOOST_CHECK_EQUAL(calls, 1);
}

BOOST_AUTO_TEST_CASE(queued_futures_can_be_cancelled) {
  mpi::Executor ex{*world()};
  if (!ex.is_client()) return;
  // Many slow tasks: the last ones wait in rank 0's queue, where cancel() still reaches them.
  std::vector<mp::Future<int>> futures;
  for (int i = 0; i < 200; ++i) futures.push_back(ex.submit(sleep_ms, 20));
  BOOST_CHECK_EQUAL(futures.front().result(60s), 20);  // the dispatcher is at work
  BOOST_CHECK(futures.back().cancel());
  BOOST_CHECK(futures.back().cancelled());
  BOOST_CHECK_THROW(futures.back().result(), mp::Cancelled);
  ex.shutdown(true, /*cancel_futures=*/true);
  int finished = 0;
  int cancelled = 0;
  for (auto& f : futures) {
    BOOST_CHECK(f.done());
    (f.cancelled() ? cancelled : finished) += 1;
  }
  BOOST_CHECK_GE(cancelled, 1);
  BOOST_CHECK_GE(finished, 1);  // the ones already at a rank ran (the first one at least)
  for (auto& f : futures) {
    if (!f.cancelled()) BOOST_CHECK_EQUAL(f.result(), 20);
  }
}

BOOST_AUTO_TEST_CASE(exceptions_come_back_as_remote_error_and_the_pool_goes_on) {
  mpi::Pool pool{*world()};
  if (!pool.is_client()) return;
  try {
    pool.apply(fails_on_three, 3);
    BOOST_ERROR("the task's exception was lost");
  } catch (const mp::RemoteError& e) {
    BOOST_CHECK_EQUAL(e.type_name(), "std::invalid_argument");
    BOOST_CHECK_EQUAL(e.message(), "three is not allowed");
  }
  BOOST_CHECK_THROW(pool.map(fails_on_three, std::views::iota(0, tasks)), mp::RemoteError);
  std::vector<int> before_failure;
  try {
    for (int x : pool.imap(fails_on_three, std::views::iota(0, 10))) before_failure.push_back(x);
    BOOST_ERROR("imap went past the failing task");
  } catch (const mp::RemoteError&) {
  }
  BOOST_CHECK(before_failure == (std::vector<int>{0, 1, 2}));
  BOOST_CHECK(pool.map(square, std::views::iota(0, tasks)) == squares_of(tasks));
}

BOOST_AUTO_TEST_CASE(a_killed_local_worker_fails_its_task_with_worker_lost_and_the_pool_goes_on) {
  mpi::Pool pool{*world()};
  if (!pool.is_client()) return;
  try {
    pool.apply(dies_on_seven, 7);
    BOOST_ERROR("a task whose worker was killed did not fail");
  } catch (const mp::WorkerLost& e) {
    BOOST_TEST_MESSAGE(e.what());
    BOOST_CHECK(std::string(e.what()).find("on rank ") != std::string::npos);  // names the rank
    BOOST_CHECK(std::string(e.what()).find("signal 9") != std::string::npos);
  }
  BOOST_CHECK_THROW(pool.map(dies_on_seven, std::views::iota(0, 100), 1), mp::WorkerLost);
  BOOST_CHECK(pool.map(square, std::views::iota(0, tasks), 1) == squares_of(tasks));  // workers replaced
}

BOOST_AUTO_TEST_CASE(a_function_the_serving_ranks_did_not_load_is_refused) {
  mpi::Pool pool{*world()};
  if (!pool.is_client()) return;
  const CubeFunction cube = load_cube_module();  // on rank 0 only
  try {
    pool.apply_async(cube, 3);
    BOOST_ERROR("a function only rank 0 loaded was accepted");
  } catch (const mpi::UnsharedFunction& e) {
    const std::string what = e.what();
    BOOST_TEST_MESSAGE(what);
    BOOST_CHECK(what.find("unshared_task") != std::string::npos);  // names the library
    BOOST_CHECK(what.find("1 (host") != std::string::npos && what.find("3 (host") != std::string::npos);
  }
  BOOST_CHECK_THROW(pool.map(cube, std::vector<int>{1, 2}), mpi::UnsharedFunction);
  BOOST_CHECK_THROW(pool.imap(cube, std::vector<int>{1, 2}), mpi::UnsharedFunction);
  BOOST_CHECK(pool.map(square, std::vector<int>{1, 2, 3}) == (std::vector<int>{1, 4, 9}));  // nothing broken
}

BOOST_AUTO_TEST_CASE(a_library_every_rank_loaded_is_shared_wherever_it_was_mapped) {
  const CubeFunction cube = load_cube_module();  // on every rank, before the pool
  mpi::Pool pool{*world()};
  if (!pool.is_client()) return;
  BOOST_CHECK(pool.map(cube, std::vector<int>{1, 2, 3}, 1) == (std::vector<int>{1, 8, 27}));
}

BOOST_AUTO_TEST_CASE(terminate_fails_unfinished_tasks_and_a_closed_pool_refuses_work) {
  {
    mpi::Pool pool{*world()};
    if (pool.is_client()) {
      auto slow = pool.map_async(sleep_ms, std::vector<int>(60, 200), 1);
      std::this_thread::sleep_for(100ms);
      pool.terminate();
      BOOST_CHECK_THROW(slow.get(60s), mp::BrokenPool);
      BOOST_CHECK_THROW(pool.apply(square, 2), mp::BrokenPool);
      pool.join();
    }
  }
  mpi::Pool pool{*world()};
  if (!pool.is_client()) return;
  BOOST_CHECK_THROW(pool.join(), mp::ValueError);  // not closed yet
  BOOST_CHECK_EQUAL(pool.apply(square, 5), 25);
  pool.close();
  BOOST_CHECK_THROW(pool.apply(square, 2), mp::BrokenPool);
  pool.join();
}

BOOST_AUTO_TEST_CASE(local_workers_can_be_chosen) {
  mpi::Pool pool{*world(), mpi::PoolOptions{.local_workers = 2}};
  if (!pool.is_client()) return;
  BOOST_CHECK_EQUAL(pool.processes(), 6);
  BOOST_CHECK(pool.map(square, std::views::iota(0, tasks)) == squares_of(tasks));
  BOOST_CHECK_THROW(mpi::Pool(*world(), mpi::PoolOptions{.local_workers = -1}), mp::ValueError);
}

BOOST_AUTO_TEST_CASE(an_idle_pool_leaves_the_cpus_alone) {
  mpi::Pool pool{*world()};
  if (!pool.is_client()) return;
  // Each serving rank's CPU time, by pid (a map of many small tasks reaches every rank). The idle
  // interval runs from a rank's last sample of the first map to its first sample of the second, so
  // that the work of answering the samples themselves (slow under the sanitizers) stays outside it.
  enum class Keep { last, first };
  const auto cpu_by_rank = [&](Keep keep) {
    std::map<int, long long> ticks;
    for (const std::string& sample : pool.map(rank_cpu_ticks, std::views::iota(0, 600), 1)) {
      std::istringstream in(sample);
      int pid = 0;
      long long t = 0;
      in >> pid >> t;
      if (keep == Keep::last) ticks[pid] = t;
      else ticks.try_emplace(pid, t);
    }
    return ticks;
  };
  const auto before = cpu_by_rank(Keep::last);
  const double client_before = process_cpu_seconds();
  std::this_thread::sleep_for(2s);
  const double client_after = process_cpu_seconds();
  const auto after = cpu_by_rank(Keep::first);
  BOOST_CHECK_EQUAL(before.size(), 3u);
  const long long ticks_per_second = ::sysconf(_SC_CLK_TCK);
  for (const auto& [pid, ticks] : before) {
    BOOST_REQUIRE(after.contains(pid));
    // Under 10% of a core while idle (polling MPI a thousand times a second costs about 1%).
    BOOST_CHECK_LT(after.at(pid) - ticks, 2 * ticks_per_second / 10);
  }
  BOOST_CHECK_LT(client_after - client_before, 0.2);  // nothing out: the dispatcher sleeps
}

// Issue 14 bug 2, on a cluster: a stream read after its pool is destroyed fails cleanly with
// BrokenPool; it never reaches into the destroyed pool.
BOOST_AUTO_TEST_CASE(a_stream_read_after_its_pool_is_destroyed_fails_with_broken_pool) {
  std::optional<mp::ResultStream<int>> squares;
  {
    mpi::Pool pool{*world()};
    if (!pool.is_client()) return;
    squares.emplace(pool.imap(square, std::views::iota(0, 100)));
  }
  const auto read_all = [&] {
    std::vector<int> read;
    for (int s : *squares) read.push_back(s);
    return read;
  };
  BOOST_CHECK_THROW(read_all(), mp::BrokenPool);
}

// Issue 14 bug 2, on a cluster: futures and map results outlive their executor. Leaving the
// executor waits for its calls (shutdown(wait = true)), so their results are there to read.
BOOST_AUTO_TEST_CASE(futures_and_map_results_outlive_their_executor) {
  std::optional<mp::Future<int>> future;
  std::optional<mp::ResultStream<int>> mapped;
  {
    mpi::Executor ex{*world()};
    if (!ex.is_client()) return;
    future.emplace(ex.submit(square, 6));
    mapped.emplace(ex.map(square, std::views::iota(0, 100)));
  }
  BOOST_CHECK_EQUAL(future->result(60s), 36);
  BOOST_CHECK(!future->cancel());  // done, and its executor is gone
  BOOST_CHECK(!future->running());
  std::vector<int> read;
  for (int s : *mapped) read.push_back(s);
  BOOST_CHECK(read == squares_of(100));
}

// Issue 14 bug 3, on a cluster: Executor::map submits every call before it returns (as Python's
// does), so shutdown(wait = false) right after it still runs them all.
BOOST_AUTO_TEST_CASE(executor_map_submits_every_call_before_it_returns) {
  mpi::Executor ex{*world()};
  if (!ex.is_client()) return;
  auto results = ex.map(square, std::views::iota(0, 1000));
  ex.shutdown(/*wait=*/false);
  std::vector<int> read;
  for (int s : results) read.push_back(s);
  BOOST_CHECK(read == squares_of(1000));
}
