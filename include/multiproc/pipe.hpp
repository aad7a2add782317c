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
#include <cstddef>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

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
    // Encoded once (and a big message written to its own segment once), however long the wait.
    const auto& message = out.backend_.encoded(value);
    while (!out.put_encoded_until(message, detail::deadline_after(check_interval))) {
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

  // Python's send_bytes: sends `size` bytes of `buffer` from `offset` (by default all that follow
  // it) as one message, as they are. recv_bytes() on the other end gets them back; recv() decodes
  // them as a T (DecodeError if they are not one). Offsets outside the buffer throw ValueError.
  // Only for a T that goes through the codec (Pipe<std::string>, Pipe<std::vector<std::byte>>, ...).
  void send_bytes(std::span<const std::byte> buffer, std::size_t offset = 0, std::size_t size = whole)
    requires(!bitwise_message<T>)
  {
    if (offset > buffer.size() || (size != whole && size > buffer.size() - offset)) {
      throw ValueError("multiproc::Pipe::send_bytes: " + std::to_string(size == whole ? 0 : size) + " bytes from offset " +
                       std::to_string(offset) + " lie outside the " + std::to_string(buffer.size()) + "-byte buffer");
    }
    const auto bytes = buffer.subspan(offset, size == whole ? buffer.size() - offset : size);
    use(can_send_, "send_bytes");
    Queue<T>& out = shared_->to[1 - end_];
    const detail::OutgoingMessage message(bytes);  // as in send(): one spill however long the wait
    while (!out.put_encoded_until(message, detail::deadline_after(check_interval))) {
      if (peer_gone()) {
        throw Closed("multiproc::Pipe::send_bytes: nobody is left at the other end");
      }
    }
  }

  // Python's recv_bytes: the next message's bytes, as they were sent (by send_bytes, or the
  // codec's bytes of what send() sent). Blocks and throws Closed as recv().
  std::vector<std::byte> recv_bytes()
    requires(!bitwise_message<T>)
  {
    std::vector<std::byte> bytes;
    receive_bytes(bytes, "recv_bytes");
    return bytes;
  }

  // Python's recv_bytes_into: writes the next message into `buffer` from `offset` and returns its
  // size. A message longer than the room there throws BufferTooShort, which carries the whole
  // message (it is taken from the pipe, not lost); the buffer is left untouched. An offset
  // beyond the buffer throws ValueError before anything is taken.
  std::size_t recv_bytes_into(std::span<std::byte> buffer, std::size_t offset = 0)
    requires(!bitwise_message<T>)
  {
    if (offset > buffer.size()) {
      throw ValueError("multiproc::Pipe::recv_bytes_into: offset " + std::to_string(offset) + " is beyond the " +
                       std::to_string(buffer.size()) + "-byte buffer");
    }
    thread_local std::vector<std::byte> bytes;  // kept, with its capacity, for the next call
    receive_bytes(bytes, "recv_bytes_into");
    if (bytes.size() > buffer.size() - offset) {
      throw BufferTooShort("multiproc::Pipe::recv_bytes_into: a message of " + std::to_string(bytes.size()) +
                               " bytes does not fit the " + std::to_string(buffer.size() - offset) +
                               " bytes after the offset; the exception carries it",
                           bytes);
    }
    if (!bytes.empty()) {
      std::memcpy(buffer.data() + offset, bytes.data(), bytes.size());
    }
    return bytes.size();
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
        in.saw_empty();  // found nothing: the ready fd may fire again
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
      in.ready_ = detail::make_ready_bridge(in.signals(), in.backend_.message_probe(),
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
  template <class U>
  friend std::pair<Connection<U>, Connection<U>> Pipe(bool duplex, std::size_t capacity, std::size_t ring_bytes)
    requires(!bitwise_message<U>);
  friend class Waitable;

  // What both ends share: one queue per direction (channel i carries messages to end i) and the
  // holder tables. Process-local ownership; the memory itself is anonymous shared memory.
  struct Shared : detail::PipeHolders {
    // `ring_bytes` 0: the queue's default.
    Shared(std::size_t capacity, std::size_t ring_bytes)
        : detail::PipeHolders{Segment({ObjectKind::pipe, fingerprint_of<detail::PipeEnds>()}, [](Segment&) {})},
          to{direction(capacity, ring_bytes), direction(capacity, ring_bytes)} {}
    static Queue<T> direction(std::size_t capacity, std::size_t ring_bytes) {
      if constexpr (bitwise_message<T>) {
        return Queue<T>(capacity);
      } else {
        return ring_bytes == 0 ? Queue<T>(capacity) : Queue<T>(capacity, ring_bytes);
      }
    }
    Queue<T> to[2];
  };

  // How often a waiting end asks whether anyone is left at the other end.
  static constexpr auto check_interval = std::chrono::milliseconds(20);

  Connection(std::shared_ptr<Shared> shared, int end, bool can_send, bool can_recv)
      : shared_(std::move(shared)), end_(end), can_send_(can_send), can_recv_(can_recv) {
    detail::hold_end(shared_->end(end_), false);
    detail::track_end(shared_->end(end_));
  }

  static constexpr std::size_t whole = std::numeric_limits<std::size_t>::max();

  // recv(), undecoded.
  void receive_bytes(std::vector<std::byte>& bytes, const char* operation)
    requires(!bitwise_message<T>)
  {
    use(can_recv_, operation);
    Queue<T>& in = shared_->to[end_];
    for (;;) {
      if (in.get_bytes_until(bytes, detail::deadline_after(check_interval))) {
        return;
      }
      if (peer_gone()) {
        if (in.get_bytes_until(bytes, detail::Deadline::min())) {  // sent just before it went
          return;
        }
        throw Closed(std::string("multiproc::Pipe::") + operation +
                     ": nobody is left at the other end, and nothing is left to read");
      }
    }
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
  auto shared = std::make_shared<typename Connection<T>::Shared>(capacity, 0);
  return {Connection<T>(shared, 0, duplex, true), Connection<T>(shared, 1, true, duplex)};
}

// The same with `ring_bytes` bytes of room in each direction for a T that goes through the codec
// (by default 256 a message): a message over a quarter of it travels in a segment of its own (see
// Queue), so any size goes. A ring_bytes too small for any message, or too large to be real,
// throws ValueError.
template <class T>
std::pair<Connection<T>, Connection<T>> Pipe(bool duplex, std::size_t capacity, std::size_t ring_bytes)
  requires(!bitwise_message<T>)
{
  auto shared = std::make_shared<typename Connection<T>::Shared>(capacity, detail::checked_ring_bytes(ring_bytes));
  return {Connection<T>(shared, 0, duplex, true), Connection<T>(shared, 1, true, duplex)};
}

}  // namespace multiproc
