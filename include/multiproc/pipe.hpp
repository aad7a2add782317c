#pragma once
// Pipe<T>: two connected ends, as Python's multiprocessing.Pipe.
//
//   auto [parent_end, child_end] = multiproc::Pipe<std::string>();     // duplex: both send and recv
//   multiproc::Process child{[&] { child_end.send("hello"); }};
//   child.start();
//   std::string s = parent_end.recv();
//   auto [reader, writer] = multiproc::Pipe<long>(false);   // one way: reader only recv, writer only send
//
// Each direction is a Queue<T> (so any codec type travels, and a full direction blocks the sender).
// An end is held by the process that made the pipe and by every child forked while the end was
// open; using it (send, recv, poll) confirms the hold, close() or destruction gives it up. A recv or
// send that has to wait checks, every 20 ms, whether anyone is left at the other end; when every
// process holding it has exited or closed it, the waiting side gets Closed instead of hanging
// (recv first delivers what was sent before). Unlike Python, the process's own unused copy of the
// other end does not keep it waiting. Several processes may share one end; guard it with a Lock if
// they must not interleave.
#include <chrono>
#include <memory>
#include <stdexcept>
#include <utility>

#include <multiproc/detail/os/deadline.hpp>
#include <multiproc/detail/channel/pipe_ends.hpp>
#include <multiproc/error.hpp>
#include <multiproc/queue.hpp>
#include <multiproc/segment.hpp>

namespace multiproc {

template <class T>
class Connection {
 public:
  Connection(Connection&& other) noexcept
      : shared_(std::move(other.shared_)), end_(other.end_), can_send_(other.can_send_), can_recv_(other.can_recv_) {}
  Connection& operator=(Connection&& other) noexcept {
    if (this != &other) {
      close();
      shared_ = std::move(other.shared_);
      end_ = other.end_;
      can_send_ = other.can_send_;
      can_recv_ = other.can_recv_;
    }
    return *this;
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { close(); }

  // Blocks while the other side's direction is full. Throws Closed if this end is closed or nobody
  // is left at the other end.
  void send(const T& value) {
    use(can_send_, "send");
    Queue<T>& out = shared_->to[1 - end_];
    while (!out.put_until(value, detail::deadline_after(check_interval))) {
      if (peer_gone()) {
        throw Closed("multiproc::Pipe::send: nobody is left at the other end");
      }
    }
  }

  // Blocks until a message arrives. Throws Closed if this end is closed, or once nobody is left at
  // the other end and everything it sent has been received.
  T recv() {
    use(can_recv_, "recv");
    Queue<T>& in = shared_->to[end_];
    for (;;) {
      if (auto value = in.get_until(detail::deadline_after(check_interval))) {
        return std::move(*value);
      }
      if (peer_gone()) {
        if (auto value = in.get_until(detail::Deadline::min())) {  // sent just before it went
          return std::move(*value);
        }
        throw Closed("multiproc::Pipe::recv: nobody is left at the other end, and nothing is left to read");
      }
    }
  }

  // True if recv() would return (or throw Closed) without waiting, within `timeout`.
  template <class Rep, class Period>
  [[nodiscard]] bool poll(std::chrono::duration<Rep, Period> timeout) {
    use(can_recv_, "poll");
    Queue<T>& in = shared_->to[end_];
    const detail::Deadline deadline = detail::deadline_after(timeout);
    for (;;) {
      if (in.wait_nonempty_until(std::min(deadline, detail::deadline_after(check_interval))) || peer_gone()) {
        return true;
      }
      if (detail::Clock::now() >= deadline) {
        if (in.ready_) {
          in.ready_->rearm();  // found nothing: the ready fd may fire again
        }
        return false;
      }
    }
  }
  [[nodiscard]] bool poll() { return poll(std::chrono::seconds(0)); }

  // A file descriptor for epoll/poll or Boost.Asio that polls readable while recv() would not
  // wait: a message is in, or nobody is left at the other end; as Queue::ready_fd(), it stays
  // readable until this end next finds nothing to receive (poll() returning false). So: recv
  // while poll() says so. Shared by the copies of this end in one process; it belongs to the
  // pipe (do not close it).
  [[nodiscard]] int ready_fd() {
    use(can_recv_, "ready_fd");
    Queue<T>& in = shared_->to[end_];
    if (!in.ready_) {
      in.ready_ = detail::make_ready_bridge(in.signals(), in.backend_.size_probe(),
                                            [peer = &shared_->end(1 - end_)] { return detail::end_abandoned(*peer); });
    }
    return in.ready_->fd();
  }

  // Gives up this process's hold of the end; the other side sees Closed once no one holds it.
  // Later calls on this object throw Closed. Also done by the destructor.
  void close() noexcept {
    if (shared_) {
      detail::untrack_end(shared_->end(end_));
      detail::release_end(shared_->end(end_));
      shared_.reset();
    }
  }
  [[nodiscard]] bool closed() const noexcept { return !shared_; }
  [[nodiscard]] bool readable() const noexcept { return can_recv_; }
  [[nodiscard]] bool writable() const noexcept { return can_send_; }

 private:
  template <class U>
  friend std::pair<Connection<U>, Connection<U>> Pipe(bool duplex, std::size_t capacity);

  // What both ends share: one queue per direction (channel i carries messages to end i) and the
  // holder tables. Process-local ownership; the memory itself is anonymous shared memory.
  struct Shared : detail::PipeHolders {
    explicit Shared(std::size_t capacity)
        : detail::PipeHolders{Segment({ObjectKind::pipe, fingerprint_of<detail::PipeEnds>()}, [](Segment&) {})},
          to{Queue<T>(capacity), Queue<T>(capacity)} {}
    Queue<T> to[2];
  };

  // How often a waiting end asks whether anyone is left at the other end.
  static constexpr auto check_interval = std::chrono::milliseconds(20);

  Connection(std::shared_ptr<Shared> shared, int end, bool can_send, bool can_recv)
      : shared_(std::move(shared)), end_(end), can_send_(can_send), can_recv_(can_recv) {
    detail::hold_end(shared_->end(end_), false);
    detail::track_end(shared_->end(end_));
  }

  // Checks that this end may do `operation` and confirms this process as its holder.
  void use(bool allowed, const char* operation) {
    if (!shared_) {
      throw Closed(std::string("multiproc::Pipe::") + operation + ": this end is closed");
    }
    if (!allowed) {
      throw ValueError(std::string("multiproc::Pipe::") + operation + ": this end of a one-way pipe cannot " +
                             operation);
    }
    detail::hold_end(shared_->end(end_), true);
  }
  [[nodiscard]] bool peer_gone() const { return detail::end_abandoned(shared_->end(1 - end_)); }

  std::shared_ptr<Shared> shared_;
  int end_;
  bool can_send_;
  bool can_recv_;
};

// Returns the two ends. duplex: both ends send and receive. Not duplex: the first end only
// receives and the second only sends, as in Python. `capacity` is each direction's.
template <class T>
std::pair<Connection<T>, Connection<T>> Pipe(bool duplex = true, std::size_t capacity = Queue<T>::default_capacity) {
  auto shared = std::make_shared<typename Connection<T>::Shared>(capacity);
  return {Connection<T>(shared, 0, duplex, true), Connection<T>(shared, 1, true, duplex)};
}

}  // namespace multiproc
