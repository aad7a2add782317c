// Named shared objects as task arguments, task results and messages (issue 14, "shared objects as
// task arguments and messages"): they travel by name and the receiver opens the same object, as
// Python passes them through pickling or a manager. Anonymous objects, and objects whose meaning
// lives in their process, are refused at the send with ValueError, and nothing is lost.
#define BOOST_TEST_MODULE travel
#include <algorithm>
#include <list>
#include <mutex>
#include <ranges>
#include <string>
#include <tuple>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;
using namespace std::chrono_literals;

namespace {

void add_under_lock(mp::RawValue<long> counter, mp::Lock lock, int times) {
  for (int i = 0; i < times; ++i) {
    std::scoped_lock guard(lock);
    counter.value() += 1;
  }
}

bool set_event(mp::Event event) {
  event.set();
  return event.is_set();
}

int record_pid(mp::SharedDict<std::string, int> results, std::string key) {
  results.set(key, static_cast<int>(::getpid()));
  return static_cast<int>(::getpid());
}

mp::Event make_event(std::string name) {
  mp::Event made{mp::create, name};
  made.set();
  return made;  // the handle ends here; the named event lives on until unlinked
}

int wait_for_it(mp::Event event) { return event.wait(10s) ? 1 : 0; }

int square(int x) { return x * x; }

// Python's classic: workers put their results into a queue passed to them.
void put_square(mp::Queue<int> results, int x) { results.put(x * x); }

long drain(mp::JoinableQueue<long> jobs) {
  long sum = 0;
  for (;;) {
    const long job = jobs.get(10s);
    jobs.task_done();
    if (job < 0) return sum;
    sum += job;
  }
}

}  // namespace

// CPython _TestPool (passing a manager's proxies to apply_async): the task's Value and Lock are
// the caller's own, so 4 tasks of 2,000 increments under the lock leave exactly 8,000.
BOOST_AUTO_TEST_CASE(pool_tasks_use_the_callers_named_value_and_lock) {
  const std::string counter_name = test::unique_name("counter");
  const std::string lock_name = test::unique_name("lock");
  mp::ScopedUnlink drop_counter{counter_name};
  mp::ScopedUnlink drop_lock{lock_name};
  mp::RawValue<long> counter{mp::create, counter_name, 0};
  mp::Lock lock{mp::create, lock_name};
  mp::Pool pool{2};
  std::vector<mp::AsyncResult<void>> calls;
  for (int task = 0; task < 4; ++task) {
    calls.push_back(pool.apply_async(add_under_lock, counter, lock, 2000));
  }
  for (auto& call : calls) call.get(30s);
  BOOST_CHECK_EQUAL(counter.value(), 8000);
}

BOOST_AUTO_TEST_CASE(an_executor_task_sets_the_callers_event_and_writes_its_dict) {
  const std::string event_name = test::unique_name("event");
  const std::string dict_name = test::unique_name("dict");
  mp::ScopedUnlink drop_event{event_name};
  mp::ScopedUnlink drop_dict{dict_name};
  mp::Event event{mp::create, event_name};
  mp::SharedDict<std::string, int> results{mp::create, dict_name};
  mp::ProcessPoolExecutor executor{1};
  BOOST_CHECK(executor.submit(set_event, event).result(30s));
  BOOST_CHECK(event.is_set());
  const int worker = executor.submit(record_pid, results, std::string("who")).result(30s);
  BOOST_CHECK_NE(worker, ::getpid());
  BOOST_CHECK_EQUAL(results.get("who", 0), worker);
}

BOOST_AUTO_TEST_CASE(pool_tasks_put_into_the_callers_named_queue_and_drain_its_joinable_queue) {
  const std::string results_name = test::unique_name("results");
  const std::string jobs_name = test::unique_name("jobs");
  mp::ScopedUnlink drop_results{results_name};
  mp::ScopedUnlink drop_jobs{jobs_name};
  mp::Queue<int> results{mp::create, results_name, 16};
  mp::JoinableQueue<long> jobs{mp::create, jobs_name, 16};
  mp::Pool pool{2};
  std::vector<mp::AsyncResult<void>> calls;
  for (int x = 1; x <= 4; ++x) calls.push_back(pool.apply_async(put_square, results, x));
  for (auto& call : calls) call.get(30s);
  int sum = 0;
  for (int i = 0; i < 4; ++i) sum += results.get(10s);
  BOOST_CHECK_EQUAL(sum, 1 + 4 + 9 + 16);
  auto drained = pool.apply_async(drain, jobs);
  for (long job : {5L, 6L, 7L, -1L}) jobs.put(job);
  jobs.join();  // the worker's task_done() calls count in the caller's queue
  BOOST_CHECK_EQUAL(drained.get(30s), 18);
  mp::Queue<int> anonymous{4};
  BOOST_CHECK_THROW((void)pool.apply_async(put_square, anonymous, 1), mp::ValueError);
}

// Python's pool.map over managed objects: each input is opened by name in the worker.
BOOST_AUTO_TEST_CASE(map_and_imap_take_shared_objects_as_inputs) {
  std::vector<std::string> names;
  std::list<mp::ScopedUnlink> drops;  // not movable: a list never moves them
  std::vector<mp::Event> events;
  for (int i = 0; i < 5; ++i) {
    names.push_back(test::unique_name("input"));
    drops.emplace_back(names.back());
    events.emplace_back(mp::create, names.back());
  }
  mp::Pool pool{2};
  const std::vector<bool> set = pool.map(set_event, events, 2);  // chunks of 2: vectors of events
  BOOST_CHECK_EQUAL(std::count(set.begin(), set.end(), true), 5);
  for (auto& event : events) {
    BOOST_CHECK(event.is_set());
    event.clear();
  }
  int seen = 0;
  for (bool done : pool.imap(set_event, std::views::all(events), 3)) seen += done ? 1 : 0;  // a view: imap keeps it
  BOOST_CHECK_EQUAL(seen, 5);
  BOOST_CHECK(std::all_of(events.begin(), events.end(), [](const mp::Event& e) { return e.is_set(); }));
}

// A task's result may be a shared object: the caller opens the one the worker made.
BOOST_AUTO_TEST_CASE(a_task_returns_a_shared_object_by_name) {
  const std::string name = test::unique_name("made");
  mp::ScopedUnlink drop{name};
  mp::Pool pool{1};
  mp::Event made = pool.apply(make_event, name);
  BOOST_CHECK_EQUAL(made.name(), name);
  BOOST_CHECK(made.is_set());
}

// A named object through a Queue and, inside a tuple, through a Pipe, to a forked child that uses it.
BOOST_AUTO_TEST_CASE(shared_objects_travel_through_queues_and_pipes) {
  const std::string go_name = test::unique_name("go");
  const std::string done_name = test::unique_name("done");
  mp::ScopedUnlink drop_go{go_name};
  mp::ScopedUnlink drop_done{done_name};
  mp::Queue<mp::Event> events{4};
  auto [here, there] = mp::Pipe<std::tuple<std::string, mp::Event>>();
  const int code = [&] {
    mp::Process child{[&] {
      mp::Event go = events.get(10s);
      auto [label, done] = there.recv();
      if (label != "done" || !go.wait(10s)) return 2;
      done.set();
      return 0;
    }};
    child.start();
    mp::Event go{mp::create, go_name};
    mp::Event done{mp::create, done_name};
    events.put(go);
    here.send(std::tuple<std::string, mp::Event>("done", mp::Event{mp::open, done_name}));
    go.set();
    BOOST_CHECK(done.wait(10s));
    child.join(30s);
    return child.exitcode().value_or(-1);
  }();
  BOOST_CHECK_EQUAL(code, 0);
}

// Python: "Lock objects should only be shared between processes through inheritance". Refused at
// the call, naming the object; the queue keeps nothing half-sent.
BOOST_AUTO_TEST_CASE(anonymous_objects_are_refused_at_the_send) {
  mp::Event anonymous;
  mp::Pool pool{1};
  try {
    (void)pool.apply_async(wait_for_it, anonymous);
    BOOST_ERROR("an anonymous Event was sent");
  } catch (const mp::ValueError& e) {
    BOOST_CHECK(std::string(e.what()).find("anonymous Event") != std::string::npos);
  }
  mp::Queue<mp::Event> events{2};
  BOOST_CHECK_THROW(events.put(anonymous), mp::ValueError);
  BOOST_CHECK(events.empty());
  BOOST_CHECK_EQUAL(pool.apply(square, 3), 9);  // the pool is none the worse
}

// What a name alone cannot carry is refused too: a Value over a Lock passed in (the receiver
// would open it with its own lock) and a Barrier with an action (a function of this process).
BOOST_AUTO_TEST_CASE(objects_whose_meaning_lives_in_their_process_are_refused) {
  const std::string value_name = test::unique_name("guarded");
  const std::string barrier_name = test::unique_name("barrier");
  mp::ScopedUnlink drop_value{value_name};
  mp::ScopedUnlink drop_barrier{barrier_name};
  mp::Lock shared_lock;
  mp::Value<int> guarded{mp::create, value_name, 0, shared_lock};
  mp::Barrier with_action{mp::create, barrier_name, 2, [] {}};
  mp::Queue<mp::Value<int>> values{2};
  BOOST_CHECK_THROW(values.put(guarded), mp::ValueError);
  mp::Queue<mp::Barrier> barriers{2};
  BOOST_CHECK_THROW(barriers.put(with_action), mp::ValueError);
  mp::Value<int> plain{mp::open, value_name};  // opened with its own lock: travels
  values.put(plain);
  BOOST_CHECK_EQUAL(values.get(1s).name(), value_name);
}

// An object unlinked before the receiver opens it: the task fails with NotFound, naming it.
BOOST_AUTO_TEST_CASE(an_object_gone_before_the_receiver_opens_it_fails_that_task_only) {
  const std::string name = test::unique_name("gone");
  mp::Pool pool{1};
  auto call = [&] {
    mp::Event soon_gone{mp::create, name};
    mp::unlink(name);
    return pool.apply_async(wait_for_it, soon_gone);
  }();
  try {
    (void)call.get(30s);
    BOOST_ERROR("the task ran with an object that no longer exists");
  } catch (const mp::RemoteError& e) {
    BOOST_CHECK_EQUAL(e.type_name(), "multiproc::NotFound");
  }
  BOOST_CHECK_EQUAL(pool.apply(square, 4), 16);
}
