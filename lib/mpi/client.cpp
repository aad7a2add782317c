// libmultiproc-mpi, on the client (rank 0), on the user's threads: submitting, cancelling,
// closing; and start_cluster_pool, which starts a rank as client or server.
#include "mpi/client.hpp"

#include <optional>
#include <sstream>

namespace multiproc::mpi::detail {

Client::Client(MPI_Comm comm, const std::vector<Hello>& hellos) : comm_(comm), mailbox_(comm) {
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

Client::~Client() {
  try {
    terminate();
  } catch (...) {
  }
  MPI_Comm_free(&comm_);
}

std::uint64_t Client::submit_all(std::vector<std::pair<Call, Done>>&& calls) {
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

std::pair<CodeName, CodeName> Client::names_of(const Call& call) {
  std::scoped_lock lock(names_mutex_);
  return {name_of(reinterpret_cast<std::uintptr_t>(call.invoker)), name_of(call.function)};
}

// Calls on a closed or terminated cluster pool are taken and fail with BrokenPool, as they
// always have here (a local pool refuses them at once).
void Client::require_accepting(std::string_view /*caller*/) {}

void Client::require_runnable(const Call& call) { (void)names_of(call); }

bool Client::is_pending(std::uint64_t id) {
  std::scoped_lock lock(mutex_);
  return std::any_of(pending_.begin(), pending_.end(), [id](const Task& t) { return t.id == id; });
}

bool Client::cancel(std::uint64_t id) {
  std::optional<Task> task;
  {
    std::scoped_lock lock(mutex_);
    task = multiproc::detail::withdraw(pending_, id);
  }
  if (task) {
    finish(task->done, cancelled());
  }
  return task.has_value();
}

void Client::cancel_all_pending() {
  std::deque<Task> queued;
  {
    std::scoped_lock lock(mutex_);
    queued.swap(pending_);
  }
  for (Task& task : queued) {
    finish(task.done, cancelled());
  }
}

void Client::close() {
  {
    std::scoped_lock lock(mutex_);
    closed_ = true;
  }
  wake_.notify_one();
}

void Client::join() {
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

void Client::terminate() {
  {
    std::scoped_lock lock(mutex_);
    terminated_ = true;
  }
  wake_.notify_one();
  if (dispatcher_.joinable()) {
    dispatcher_.join();
  }
}

TaskOutcome Client::cancelled() {
  return TaskOutcome{TaskOutcome::Kind::cancelled, {}, {}, "multiproc::mpi: the task was cancelled before it started"};
}

CodeName Client::name_of(std::uintptr_t address) {
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

std::shared_ptr<multiproc::detail::TaskRunner> start_cluster_pool(const World& world, int local_workers,
                                                                   int maxtasksperchild) {
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
      serve(comm, local_workers > 0 ? local_workers : share, maxtasksperchild);
    } catch (const std::exception& e) {
      abort_job("serving rank " + std::to_string(world.rank()) + " failed: " + e.what());
    }
    MPI_Comm_free(&comm);
    return nullptr;
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
  return std::make_shared<Client>(comm, hellos);
}

}  // namespace multiproc::mpi::detail
