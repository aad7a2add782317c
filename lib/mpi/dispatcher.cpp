// libmultiproc-mpi, on the client (rank 0), on the dispatcher thread: batches of tasks out to the
// serving ranks, batches of results back, and what a rank that says goodbye leaves unfinished.
#include "mpi/client.hpp"

namespace multiproc::mpi::detail {

using namespace std::chrono_literals;

std::size_t Client::target_of(const Server& server) {
  std::size_t depth = first_depth;
  if (server.seconds_per_task > 0) {
    depth = static_cast<std::size_t>(std::clamp(work_ahead.count() / server.seconds_per_task, 1.0,
                                                static_cast<double>(max_depth)));
  }
  return server.workers * depth;
}

void Client::dispatch() {
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

std::size_t Client::outstanding() const {
  std::size_t out = 0;
  for (const Server& server : servers_) {
    out += server.outstanding.size();
  }
  return out;
}

void Client::take(const Message& message) {
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

bool Client::top_up() {
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

void Client::fail_unfinished(const std::string& why) {
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

}  // namespace multiproc::mpi::detail
