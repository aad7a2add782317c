#include <multiproc/detail/mpi/cluster_core.hpp>

#include <mpi.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <multiproc/error.hpp>
#include <multiproc/mpi_world.hpp>

#include "mpi/loaded_code.hpp"
#include "mpi/mailbox.hpp"
#include "mpi/wire.hpp"

namespace multiproc::mpi::detail {

namespace {

using namespace std::chrono_literals;
using multiproc::detail::Call;
using multiproc::detail::PoolCore;
using Done = ClusterCore::Done;

constexpr int client_rank = 0;

// How much work the client keeps queued at each serving rank, per local worker, judged by the pace
// the rank's results come back at: many batch round trips' worth (a round trip between two ranks
// on one machine takes tens of microseconds), and little enough that the last tasks of a map do
// not wait long behind a slow rank.
constexpr std::chrono::duration<double> work_ahead = 2ms;
constexpr std::size_t first_depth = 2;    // tasks per worker while the pace is unknown
constexpr std::size_t max_depth = 1024;   // tasks per worker, however tiny
// A batch of tasks, or of results, stops growing past this many bytes (it always holds one).
constexpr std::size_t batch_bytes = std::size_t{4} << 20;
// The most a task's arguments may take: one MPI message carries at most INT_MAX bytes.
constexpr std::size_t max_task_bytes = static_cast<std::size_t>(INT_MAX) - sizeof(TaskHeader);
// A serving rank sends its finished results once they are half of what it holds, or once the
// oldest has waited this long: few messages for many tiny tasks, little delay for slow ones.
constexpr auto result_delay = 200us;

TaskOutcome broken_pool(std::string message) {
  return TaskOutcome{TaskOutcome::Kind::broken_pool, {}, {}, std::move(message)};
}

// Runs one outcome's callback (the typed layer's); a callback that throws is reported, not fatal.
void finish(Done& done, TaskOutcome&& outcome) {
  try {
    done(std::move(outcome));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "multiproc::mpi::Pool: a result callback raised: %s\n", e.what());
  }
}

// A rank that cannot go on takes the job down with a message, rather than leave the others
// waiting for messages that will never come.
[[noreturn]] void abort_job(const std::string& why) {
  std::fprintf(stderr, "multiproc::mpi: %s; ending the MPI job\n", why.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();  // MPI_Abort does not return
}

std::string host_name() {
  char name[MPI_MAX_PROCESSOR_NAME];
  int length = 0;
  MPI_Get_processor_name(name, &length);
  return {name, static_cast<std::size_t>(std::clamp(length, 0, MPI_MAX_PROCESSOR_NAME))};
}

int rank_in(MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  return rank;
}

// A serving rank's default share of its machine: the CPUs it may run on (its affinity, which the
// launcher may have narrowed), divided among the serving ranks on that machine. Collective.
int default_local_workers(MPI_Comm comm, bool serving) {
  MPI_Comm machine = MPI_COMM_NULL;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &machine);
  const int mine = serving ? 1 : 0;
  int serving_here = 0;
  MPI_Allreduce(&mine, &serving_here, 1, MPI_INT, MPI_SUM, machine);
  MPI_Comm_free(&machine);
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  const int usable = ::sched_getaffinity(0, sizeof cpus, &cpus) == 0
                         ? CPU_COUNT(&cpus)
                         : static_cast<int>(std::thread::hardware_concurrency());
  return std::max(1, usable / std::max(1, serving_here));
}

// Sleeps for `pause` (or, if it is not positive, yields), or until `wake` is notified. Called with
// `lock` held.
void pause_idle(std::unique_lock<std::mutex>& lock, std::condition_variable& wake, Clock::duration pause) {
  if (pause <= Clock::duration::zero()) {
    lock.unlock();
    std::this_thread::yield();
    lock.lock();
  } else {
    (void)wake.wait_for(lock, pause);
  }
}

// The same with nothing to wake for, eager (see idle_pause).
void nap(Clock::duration idle_for) {
  const Clock::duration pause = idle_pause(idle_for, true);
  if (pause <= Clock::duration::zero()) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(pause);
  }
}

// A serving rank: runs the client's tasks on a local pool until the client says stop.
class Server {
 public:
  Server(MPI_Comm comm, int local_workers, int maxtasksperchild)
      : where_("rank " + std::to_string(rank_in(comm)) + " (host " + host_name() + ")"),
        mailbox_(comm),
        pool_(local_workers, {}, maxtasksperchild) {
    mailbox_.send(client_rank, hello_tag,
                  Hello{static_cast<std::uint32_t>(local_workers), host_name(), code_.fingerprints()}.encode());
  }

  void serve() {
    const PreciseSleeps precise;
    Message message;
    auto last_busy = Clock::now();
    bool stopping = false;
    for (;;) {
      bool busy = false;
      while (!stopping && mailbox_.receive(client_rank, message)) {
        busy = true;
        if (message.tag == tasks_tag) {
          start_tasks(message.bytes);
        } else if (message.tag == stop_tag) {
          stopping = true;
          if (WireReader(message.bytes).take<std::uint32_t>() != 0) {
            pool_.terminate();  // its tasks fail with broken_pool, delivered to the batch
          } else {
            pool_.close();
          }
        } else {
          throw DecodeError("a message with unknown tag " + std::to_string(message.tag) + " from the client");
        }
      }
      busy = send_due_results(stopping) || busy;
      (void)mailbox_.sending();  // lets go of the sends that completed
      std::unique_lock lock(results_.mutex);
      if (stopping && results_.held == 0) {
        break;
      }
      const auto now = Clock::now();
      if (busy) {
        last_busy = now;
        continue;
      }
      // Eager only while it holds nothing: then the client's next task is what it waits for; while
      // tasks run, their results wake it (`ready`), and the client tops it up before it runs dry.
      Clock::duration pause = idle_pause(now - last_busy, results_.held == 0);
      if (results_.count > 0) {
        pause = std::min<Clock::duration>(pause, results_.oldest + result_delay - now);
      }
      pause_idle(lock, results_.ready, pause);
    }
    // The last word: nothing follows it, so the client may let the communicator go.
    mailbox_.send(client_rank, bye_tag, {});
    for (auto idle_since = Clock::now(); mailbox_.sending();) {
      nap(Clock::now() - idle_since);
    }
    pool_.join();
  }

 private:
  // Results the local pool's manager thread has finished, waiting to go to the client in one batch.
  struct Results {
    std::mutex mutex;
    std::condition_variable ready;  // notified when a batch is due
    std::vector<std::byte> batch;
    std::size_t count = 0;  // results in `batch`
    std::size_t held = 0;   // tasks received and not yet sent back (running, queued, or in `batch`)
    Clock::time_point oldest;

    [[nodiscard]] bool due(Clock::time_point now) const {
      return count > 0 && (2 * count >= held || now - oldest >= result_delay || batch.size() >= batch_bytes);
    }
  };

  void start_tasks(std::span<const std::byte> batch) {
    std::vector<std::pair<Call, Done>> calls;
    std::vector<std::pair<std::uint64_t, TaskOutcome>> refused;
    for_each_task(batch, [&](const TaskHeader& task, std::span<const std::byte> args) {
      const auto invoker = code_.address_of(task.invoker);
      const auto function = code_.address_of(task.function);
      if (!invoker || !function) {
        refused.emplace_back(task.id, TaskOutcome{TaskOutcome::Kind::remote_error, {}, "multiproc::mpi::UnsharedFunction",
                                                  "multiproc::mpi: " + where_ + " has no code where the task's function lies"});
        return;
      }
      // The address is this rank's own code: found in an executable segment of the object the
      // client named, by its build-id (see loaded_code.hpp).
      // NOLINTNEXTLINE(performance-no-int-to-ptr)
      calls.emplace_back(Call{reinterpret_cast<multiproc::detail::Invoker>(*invoker), *function, {args.begin(), args.end()}},
                         [this, id = task.id](TaskOutcome&& outcome) { deliver(id, std::move(outcome)); });
    });
    {
      std::scoped_lock lock(results_.mutex);
      results_.held += calls.size() + refused.size();
    }
    for (auto& [id, outcome] : refused) {
      deliver(id, std::move(outcome));
    }
    if (!calls.empty()) {
      pool_.submit_all(std::move(calls));
    }
  }

  // On the local pool's manager thread (or this one, for refusals and a terminated pool).
  void deliver(std::uint64_t id, TaskOutcome&& outcome) {
    if (outcome.kind == TaskOutcome::Kind::worker_lost || outcome.kind == TaskOutcome::Kind::broken_pool) {
      outcome.message = "multiproc::mpi: on " + where_ + ": " + outcome.message;
    }
    std::scoped_lock lock(results_.mutex);
    if (results_.count == 0) {
      results_.oldest = Clock::now();
    }
    append_result(results_.batch, id, outcome);
    ++results_.count;
    if (results_.due(Clock::now())) {
      results_.ready.notify_one();
    }
  }

  bool send_due_results(bool stopping) {
    std::vector<std::byte> batch;
    {
      std::scoped_lock lock(results_.mutex);
      if (!results_.due(Clock::now()) && !(stopping && results_.count > 0)) {
        return false;
      }
      batch.swap(results_.batch);
      results_.held -= results_.count;
      results_.count = 0;
    }
    mailbox_.send(client_rank, results_tag, std::move(batch));
    return true;
  }

  std::string where_;
  LoadedCode code_ = LoadedCode::of_this_process();
  Mailbox mailbox_;
  Results results_;  // declared before the pool: its manager thread delivers here until it is gone
  PoolCore pool_;
};

}  // namespace

// The client's side: rank 0's queue of tasks and the dispatcher thread that serves it.
class ClusterCore::Client {
 public:
  Client(MPI_Comm comm, const std::vector<Hello>& hellos) : comm_(comm), mailbox_(comm) {
    for (std::size_t i = 0; i < hellos.size(); ++i) {
      Server& server = servers_.emplace_back();
      server.rank = static_cast<int>(i) + 1;
      server.host = hellos[i].host;
      server.workers = std::max<std::size_t>(1, hellos[i].local_workers);
      server.objects.insert(hellos[i].objects.begin(), hellos[i].objects.end());
      processes_ += static_cast<int>(server.workers);
    }
    dispatcher_ = std::thread([this] {
      try {
        dispatch();
      } catch (const std::exception& e) {
        abort_job("the client (rank 0) failed: " + std::string(e.what()));
      }
    });
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  // A destructor may not throw: terminate() throws only if the dispatcher cannot be joined.
  ~Client() {
    try {
      terminate();
    } catch (...) {
    }
    MPI_Comm_free(&comm_);
  }

  [[nodiscard]] int processes() const noexcept { return processes_; }

  std::uint64_t submit_all(std::vector<std::pair<Call, Done>>&& calls) {
    std::vector<Task> tasks;
    tasks.reserve(calls.size());
    for (auto& [call, done] : calls) {  // names them all first: a refused function queues nothing
      const auto [invoker, function] = names_of(call);
      tasks.push_back(Task{0, invoker, function, std::move(call.args), std::move(done)});
    }
    std::uint64_t first_id = 0;
    bool was_empty = false;
    std::string refused;
    {
      std::scoped_lock lock(mutex_);
      if (closed_ || terminated_) {
        refused = terminated_ ? "the pool was terminated" : "the pool is closed";
      } else {
        was_empty = pending_.empty();
        first_id = next_id_;
        for (Task& task : tasks) {
          task.id = next_id_++;
          pending_.push_back(std::move(task));
        }
      }
    }
    if (!refused.empty()) {
      for (Task& task : tasks) {
        finish(task.done, broken_pool("multiproc::mpi::Pool: " + refused));
      }
    } else if (was_empty) {
      wake_.notify_one();
    }
    return first_id;
  }

  std::pair<CodeName, CodeName> names_of(const Call& call) {
    std::scoped_lock lock(names_mutex_);
    return {name_of(reinterpret_cast<std::uintptr_t>(call.invoker)), name_of(call.function)};
  }

  bool cancel(std::uint64_t id) {
    Task task;
    {
      std::scoped_lock lock(mutex_);
      const auto found = std::find_if(pending_.begin(), pending_.end(), [id](const Task& t) { return t.id == id; });
      if (found == pending_.end()) {
        return false;
      }
      task = std::move(*found);
      pending_.erase(found);
    }
    finish(task.done, cancelled());
    return true;
  }

  void cancel_all_pending() {
    std::deque<Task> queued;
    {
      std::scoped_lock lock(mutex_);
      queued.swap(pending_);
    }
    for (Task& task : queued) {
      finish(task.done, cancelled());
    }
  }

  void close() {
    {
      std::scoped_lock lock(mutex_);
      closed_ = true;
    }
    wake_.notify_one();
  }

  void join() {
    {
      std::scoped_lock lock(mutex_);
      if (!closed_ && !terminated_) {
        throw ValueError("multiproc::mpi::Pool::join: call close() or terminate() first");
      }
    }
    if (dispatcher_.joinable()) {
      dispatcher_.join();
    }
  }

  void terminate() {
    {
      std::scoped_lock lock(mutex_);
      terminated_ = true;
    }
    wake_.notify_one();
    if (dispatcher_.joinable()) {
      dispatcher_.join();
    }
  }

 private:
  struct Task {
    std::uint64_t id = 0;
    CodeName invoker{};
    CodeName function{};
    std::vector<std::byte> args;
    Done done;
  };
  struct Server {
    int rank = 0;
    std::string host;
    std::size_t workers = 1;
    std::unordered_set<std::uint64_t> objects;  // fingerprints of what it loaded
    std::unordered_map<std::uint64_t, Done> outstanding;  // sent, result not back yet
    double seconds_per_task = 0;  // per worker, by the pace of its results; 0: not known yet
    Clock::time_point last_heard;  // its last results, or when it was last given work while idle
    bool said_bye = false;
  };

  static TaskOutcome cancelled() {
    return TaskOutcome{TaskOutcome::Kind::cancelled, {}, {}, "multiproc::mpi: the task was cancelled before it started"};
  }

  // How `address` (code of this process) is named on every rank. Called with names_mutex_ held.
  CodeName name_of(std::uintptr_t address) {
    if (const auto known = names_.find(address); known != names_.end()) {
      return known->second;
    }
    const LoadedCode code = LoadedCode::of_this_process();  // anew: a library may have been opened since
    const LoadedObject* object = code.containing(address);
    std::ostringstream why;
    if (object == nullptr) {
      why << "multiproc::mpi: a task's code at 0x" << std::hex << address << " lies in no program or library";
      throw UnsharedFunction(why.str());
    }
    if (object->fingerprint == 0) {
      throw UnsharedFunction("multiproc::mpi: a task's code lies in " + object->path +
                             ", which has no ELF build-id, so no rank can tell whether it loaded the same build "
                             "(link it with -Wl,--build-id)");
    }
    std::string missing;
    for (const Server& server : servers_) {
      if (!server.objects.contains(object->fingerprint)) {
        missing += (missing.empty() ? "" : ", ") + std::to_string(server.rank) + " (host " + server.host + ")";
      }
    }
    if (!missing.empty()) {
      throw UnsharedFunction("multiproc::mpi: a task's function lies in " + object->path + " (build-id " +
                             object->build_id + "), which serving rank(s) " + missing +
                             " did not load: every rank must run the same build of the program and its libraries");
    }
    const CodeName name{object->fingerprint, address - object->base};
    names_.emplace(address, name);
    return name;
  }

  // Tasks a rank should hold: its workers times as many as cover `work_ahead` at its pace.
  static std::size_t target_of(const Server& server) {
    std::size_t depth = first_depth;
    if (server.seconds_per_task > 0) {
      depth = static_cast<std::size_t>(std::clamp(work_ahead.count() / server.seconds_per_task, 1.0,
                                                  static_cast<double>(max_depth)));
    }
    return server.workers * depth;
  }

  void dispatch() {
    const PreciseSleeps precise;
    Message message;
    auto last_busy = Clock::now();
    bool stop_sent = false;
    for (;;) {
      bool busy = false;
      while (mailbox_.receive(MPI_ANY_SOURCE, message)) {
        busy = true;
        take(message);
      }
      bool terminate_now = false;
      bool close_now = false;
      {
        std::scoped_lock lock(mutex_);
        terminate_now = terminated_ && !stop_sent;
        close_now = closed_ && !stop_sent && pending_.empty() && nothing_outstanding();
      }
      if (terminate_now) {
        fail_unfinished("multiproc::mpi::Pool: the pool was terminated");
      }
      if (terminate_now || close_now) {
        for (const Server& server : servers_) {
          std::vector<std::byte> stop;
          append_value(stop, static_cast<std::uint32_t>(terminate_now ? 1 : 0));
          mailbox_.send(server.rank, stop_tag, std::move(stop));
        }
        stop_sent = true;
        busy = true;
      } else if (!stop_sent) {
        busy = top_up() || busy;
      }
      const bool sending = mailbox_.sending();
      const bool all_gone = std::all_of(servers_.begin(), servers_.end(), [](const Server& s) { return s.said_bye; });
      if (stop_sent && all_gone && !sending) {
        return;
      }
      const auto now = Clock::now();
      if (busy) {
        last_busy = now;
        continue;
      }
      std::unique_lock lock(mutex_);
      if (!stop_sent && !sending && nothing_outstanding()) {
        // Nothing can arrive: sleep until there is something to send, or to stop.
        wake_.wait(lock, [&] { return !pending_.empty() || closed_ || terminated_; });
        last_busy = Clock::now();
        continue;
      }
      // Eager while a few tasks are out: a caller is likely waiting on one of them. A map's many
      // tasks come back in batches, and the ranks hold work enough not to notice a pause.
      const std::size_t out = outstanding();
      pause_idle(lock, wake_, idle_pause(now - last_busy, out > 0 && out <= static_cast<std::size_t>(processes_)));
    }
  }

  [[nodiscard]] bool nothing_outstanding() const { return outstanding() == 0; }
  [[nodiscard]] std::size_t outstanding() const {
    std::size_t out = 0;
    for (const Server& server : servers_) {
      out += server.outstanding.size();
    }
    return out;
  }

  void take(const Message& message) {
    if (message.source <= client_rank || static_cast<std::size_t>(message.source) > servers_.size()) {
      throw DecodeError("a message from rank " + std::to_string(message.source) + ", which is not a serving rank");
    }
    Server& server = servers_[static_cast<std::size_t>(message.source) - 1];
    if (message.tag == bye_tag) {
      server.said_bye = true;
      return;
    }
    if (message.tag != results_tag) {
      throw DecodeError("a message with unknown tag " + std::to_string(message.tag) + " from rank " +
                        std::to_string(server.rank));
    }
    std::size_t count = 0;
    for_each_result(message.bytes, [&](std::uint64_t id, TaskOutcome&& outcome) {
      ++count;
      const auto found = server.outstanding.find(id);
      if (found == server.outstanding.end()) {
        return;  // failed already (the pool was terminated)
      }
      Done done = std::move(found->second);
      server.outstanding.erase(found);
      finish(done, std::move(outcome));
    });
    if (count > 0) {
      // Time since the rank was last heard from, over the results per worker: its pace, or slower
      // than it (a round trip included), which errs toward smaller batches.
      const auto now = Clock::now();
      const double sample = std::chrono::duration<double>(now - server.last_heard).count() *
                            static_cast<double>(server.workers) / static_cast<double>(count);
      server.seconds_per_task = server.seconds_per_task <= 0 ? sample : (server.seconds_per_task + sample) / 2;
      server.last_heard = now;
    }
  }

  // Sends queued tasks to the ranks that are down to half their target, a worker's worth to each
  // in turn so that every worker gets a task before any gets a second; one message per rank. The
  // least loaded rank comes first, and of equally loaded ones the one heard from last: a lone
  // call goes to the rank that is awake, not to one that has begun to sleep.
  bool top_up() {
    std::vector<std::size_t> room(servers_.size(), 0);
    std::size_t wanted = 0;
    for (std::size_t i = 0; i < servers_.size(); ++i) {
      const std::size_t target = target_of(servers_[i]);
      if (2 * servers_[i].outstanding.size() <= target) {
        room[i] = target - servers_[i].outstanding.size();
        wanted += room[i];
      }
    }
    if (wanted == 0) {
      return false;
    }
    std::deque<Task> batch;
    {
      std::scoped_lock lock(mutex_);
      const auto take = static_cast<std::ptrdiff_t>(std::min(wanted, pending_.size()));
      std::move(pending_.begin(), pending_.begin() + take, std::back_inserter(batch));
      pending_.erase(pending_.begin(), pending_.begin() + take);
    }
    if (batch.empty()) {
      return false;
    }
    const auto now = Clock::now();
    std::vector<std::vector<std::byte>> messages(servers_.size());
    const auto send = [&](std::size_t i) {
      if (!messages[i].empty()) {
        mailbox_.send(servers_[i].rank, tasks_tag, std::move(messages[i]));
        messages[i] = {};
      }
    };
    std::vector<std::size_t> order(servers_.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      const Server& x = servers_[a];
      const Server& y = servers_[b];
      const std::size_t x_load = x.outstanding.size() * y.workers;  // outstanding per worker, compared exactly
      const std::size_t y_load = y.outstanding.size() * x.workers;
      return x_load != y_load ? x_load < y_load : x.last_heard > y.last_heard;
    });
    while (!batch.empty()) {
      for (const std::size_t i : order) {
        if (batch.empty()) {
          break;
        }
        Server& server = servers_[i];
        if (server.outstanding.empty()) {
          server.last_heard = now;  // idle until now: its pace is measured from here
        }
        for (std::size_t n = std::min(room[i], server.workers); n > 0 && !batch.empty(); --n, --room[i]) {
          Task& task = batch.front();
          if (task.args.size() > max_task_bytes) {
            finish(task.done, TaskOutcome{TaskOutcome::Kind::remote_error, {}, "multiproc::MessageTooLarge",
                                          "multiproc::mpi: a task's arguments take " + std::to_string(task.args.size()) +
                                              " bytes encoded, past MPI's limit of 2 GiB per message"});
            batch.pop_front();
            continue;
          }
          append_task(messages[i], TaskHeader{task.id, task.invoker, task.function, task.args.size()}, task.args);
          server.outstanding.emplace(task.id, std::move(task.done));
          batch.pop_front();
          if (messages[i].size() >= batch_bytes) {
            send(i);
          }
        }
      }
    }
    for (std::size_t i = 0; i < servers_.size(); ++i) {
      send(i);
    }
    return true;
  }

  void fail_unfinished(const std::string& why) {
    std::deque<Task> queued;
    {
      std::scoped_lock lock(mutex_);
      queued.swap(pending_);
    }
    for (Task& task : queued) {
      finish(task.done, broken_pool(why));
    }
    for (Server& server : servers_) {
      for (auto& [id, done] : server.outstanding) {
        finish(done, broken_pool(why));
      }
      server.outstanding.clear();
    }
  }

  MPI_Comm comm_;
  Mailbox mailbox_;             // the dispatcher's, once started
  std::vector<Server> servers_;  // by rank - 1; the dispatcher's, but for the immutable objects
  int processes_ = 0;

  std::mutex names_mutex_;
  std::unordered_map<std::uintptr_t, CodeName> names_;

  std::mutex mutex_;  // guards the fields below, between user threads and the dispatcher
  std::condition_variable wake_;
  std::deque<Task> pending_;
  std::uint64_t next_id_ = 1;
  bool closed_ = false;
  bool terminated_ = false;

  std::thread dispatcher_;
};

ClusterCore::ClusterCore(const World& world, int local_workers, int maxtasksperchild) {
  if (local_workers < 0 || maxtasksperchild < 0) {
    throw ValueError("multiproc::mpi::Pool: local_workers and maxtasksperchild may not be negative");
  }
  if (world.size() < 2) {
    throw Error("multiproc::mpi::Pool: the job has 1 rank; it needs 2 or more (rank 0 is the client, the others "
                "serve): start it with mpirun -n N or srun -n N");
  }
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &comm);  // the pool's own: its messages never meet the program's
  const bool serving = world.rank() != client_rank;
  const int share = default_local_workers(comm, serving);
  if (serving) {
    try {
      Server(comm, local_workers > 0 ? local_workers : share, maxtasksperchild).serve();
    } catch (const std::exception& e) {
      abort_job("serving rank " + std::to_string(world.rank()) + " failed: " + e.what());
    }
    MPI_Comm_free(&comm);
    return;
  }
  std::vector<Hello> hellos(static_cast<std::size_t>(world.size() - 1));
  Mailbox mailbox(comm);
  Message message;
  for (int heard = 0; heard < world.size() - 1;) {
    const auto waiting_since = Clock::now();
    while (!mailbox.receive(MPI_ANY_SOURCE, message)) {
      nap(Clock::now() - waiting_since);
    }
    if (message.tag != hello_tag || message.source <= client_rank || message.source >= world.size()) {
      abort_job("the client (rank 0) got an unexpected message from rank " + std::to_string(message.source) +
                " while the pool started");
    }
    try {
      hellos[static_cast<std::size_t>(message.source) - 1] = Hello::decode(message.bytes);
    } catch (const std::exception& e) {
      abort_job("the client (rank 0) could not read rank " + std::to_string(message.source) + "'s hello: " + e.what());
    }
    ++heard;
  }
  client_ = std::make_unique<Client>(comm, hellos);
}

ClusterCore::~ClusterCore() = default;

ClusterCore::Client& ClusterCore::client() const {
  if (!client_) {
    throw ValueError("multiproc::mpi::Pool: only the client (rank 0) submits tasks or closes the pool");
  }
  return *client_;
}

int ClusterCore::processes() const noexcept { return client_ ? client_->processes() : 0; }

std::uint64_t ClusterCore::submit(Call call, Done done) {
  std::vector<std::pair<Call, Done>> one;
  one.emplace_back(std::move(call), std::move(done));
  return submit_all(std::move(one));
}

std::uint64_t ClusterCore::submit_all(std::vector<std::pair<Call, Done>>&& calls) {
  return client().submit_all(std::move(calls));
}

void ClusterCore::require_shared(const Call& call) { (void)client().names_of(call); }

bool ClusterCore::cancel(std::uint64_t id) { return client().cancel(id); }
void ClusterCore::cancel_all_pending() { client().cancel_all_pending(); }
void ClusterCore::close() { client().close(); }
void ClusterCore::join() { client().join(); }
void ClusterCore::terminate() { client().terminate(); }

}  // namespace multiproc::mpi::detail
