#pragma once
// Queue<T>: a bounded FIFO queue for any number of producer and consumer processes and threads, as
// Python's multiprocessing.Queue (SimpleQueue<T> and JoinableQueue<T> have headers of their own).
//
//   multiproc::Queue<long> q{1024};                    // or {multiproc::create, "jobs", 1024}
//   q.put(42);                     long x = q.get();
//   q.put(7, 100ms);  /* Full */   q.get(100ms);  /* Empty on timeout */   q.get_nowait();
//   q.close();                     // puts throw Closed; gets drain what is left, then throw Closed
//
// Messages of a trivially copyable T travel as their bytes through a lock-free ring of slots (see
// detail/ring/slot_ring.hpp); any other T (std::string, std::vector, user types with `serialize`) is
// serialised by the codec into a ring of variable-size records guarded by a robust Lock.
// A caller that must wait spins for a few microseconds, then sleeps on a futex; it is woken only
// when there is something for it. A put or get that does not wait makes no system call.
//
// Messages from one producer arrive in the order it put them. What a process killed in the middle
// of a call costs the others:
//   * killed inside put(): its half-written message is skipped (trivially copyable T) or never
//     becomes visible (other T). Nothing else is lost; the queue stays usable.
//   * killed inside get(): the message it was taking is either still in the queue for the next
//     consumer, or was already taken by it (and goes with it). Nothing else is lost or duplicated.
//
// Zero-copy for large messages (trivially copyable T): the producer builds the message in its slot,
// the consumer reads it there, so nothing is copied in or out and the cost does not grow with
// sizeof(T):
//   auto slot = q.loan();  new (&*slot) Frame{...};  slot.publish();  // or try_loan(), loan(timeout)
//   auto view = q.take();  use(*view);        // or try_take(), take(timeout); freed when dropped
// loan() waits for room and take() for a message as put() and get() do (Full / Empty on timeout,
// Closed as theirs). Each open Loan or View holds a slot of its own, and a handle may hold any
// number of them at once (each is a separate claim in the ring; none is kept in the handle), from
// any thread. Messages keep the order in which their slots were loaned: consumers wait at an open
// loan (publish it or drop it soon). An open loan counts in qsize() as a put under way does; a
// viewed message has left the queue (qsize() no longer counts it) but its slot stays held until the
// View is dropped. The Queue handle may be moved while loans and views are open, but must outlive
// them. A JoinableQueue counts a loan as a task when it is published; task_done() after a take, as
// after a get.
// Crash rules, as for put and get:
//   * killed holding a loan: nothing of it is ever visible (as inside put()); the slot is reclaimed.
//   * killed holding a view: the message was taken, and goes with it (as inside get()); the slot is
//     reclaimed for the producers. A stopped (SIGSTOP) process still holds its loans and views
//     until it runs on: only death releases a slot.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <multiproc/codec.hpp>
#include <multiproc/detail/channel/queue_backends.hpp>
#include <multiproc/detail/channel/queue_signals.hpp>
#include <multiproc/detail/os/deadline.hpp>
#include <multiproc/detail/os/ready_bridge.hpp>
#include <multiproc/error.hpp>
#include <multiproc/segment.hpp>

namespace multiproc {

template <class T>
class Connection;
class Waitable;

template <class T>
class Queue {
 public:
  static constexpr std::size_t default_capacity = 1024;

  // Holds at most `capacity` (>= 1, else ValueError) messages: full() after that many puts.
  explicit Queue(std::size_t capacity = default_capacity) : Queue(Where(), capacity, 0, false) {}
  // For a T that goes through the codec: at most `capacity` messages and `ring_bytes` bytes of them
  // (by default 256 bytes a message); a message over a quarter of ring_bytes travels on its own.
  Queue(std::size_t capacity, std::size_t ring_bytes)
    requires(!bitwise_message<T>)
      : Queue(Where(), capacity, detail::checked_ring_bytes(ring_bytes), false) {}
  Queue(create_t how, std::string_view name, std::size_t capacity = default_capacity)
      : Queue(Where(how, name), capacity, 0, false) {}
  Queue(open_t how, std::string_view name) : Queue(Where(how, name), 2, 0, false) {}
  Queue(open_or_create_t how, std::string_view name, std::size_t capacity = default_capacity)
      : Queue(Where(how, name), capacity, 0, false) {}
  // The named forms with room for `ring_bytes` bytes of messages, as the anonymous one above.
  Queue(create_t how, std::string_view name, std::size_t capacity, std::size_t ring_bytes)
    requires(!bitwise_message<T>)
      : Queue(Where(how, name), capacity, detail::checked_ring_bytes(ring_bytes), false) {}
  Queue(open_or_create_t how, std::string_view name, std::size_t capacity, std::size_t ring_bytes)
    requires(!bitwise_message<T>)
      : Queue(Where(how, name), capacity, detail::checked_ring_bytes(ring_bytes), false) {}

  // Blocks while full. Throws Closed after close(); a message of any size that fits in memory goes
  // (for a T that goes through the codec; see detail/channel/spilled_message.hpp).
  void put(const T& value) { (void)put_until(value, detail::Deadline::max()); }
  // Throws Full if there is still no room after `timeout`.
  template <class Rep, class Period>
  void put(const T& value, std::chrono::duration<Rep, Period> timeout) {
    if (!put_until(value, detail::deadline_after(timeout))) {
      throw Full("multiproc::Queue::put: still full after the timeout");
    }
  }
  // Throws Full at once if there is no room.
  void put_nowait(const T& value) {
    if (!try_put(value)) {
      throw Full("multiproc::Queue::put_nowait: full");
    }
  }
  // As put_nowait, but says "full" by returning false instead of throwing.
  [[nodiscard]] bool try_put(const T& value) { return put_until(value, detail::Deadline::min()); }

  // Blocks while empty. Throws Closed once the queue is closed and drained.
  T get() { return *get_until(detail::Deadline::max()); }
  // Throws Empty if nothing came within `timeout`.
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    auto value = get_until(detail::deadline_after(timeout));
    if (!value) {
      throw Empty("multiproc::Queue::get: still empty after the timeout");
    }
    return std::move(*value);
  }
  // Throws Empty at once if there is nothing.
  T get_nowait() {
    auto value = try_get();
    if (!value) {
      throw Empty("multiproc::Queue::get_nowait: empty");
    }
    return std::move(*value);
  }
  // As get_nowait, but says "empty" by returning nothing instead of throwing. Throws Closed once
  // the queue is closed and drained.
  [[nodiscard]] std::optional<T> try_get() { return get_until(detail::Deadline::min()); }

  class Loan;
  class View;

  // Zero-copy (see the header comment). A slot to build the next message in: waits while full.
  // Throws Closed after close().
  [[nodiscard]] Loan loan()
    requires(bitwise_message<T>)
  {
    return loan_until(detail::Deadline::max());
  }
  // Throws Full if there is still no room after `timeout`.
  template <class Rep, class Period>
  [[nodiscard]] Loan loan(std::chrono::duration<Rep, Period> timeout)
    requires(bitwise_message<T>)
  {
    Loan loan = loan_until(detail::deadline_after(timeout));
    if (!loan) {
      throw Full("multiproc::Queue::loan: still full after the timeout");
    }
    return loan;
  }
  // An empty Loan (false) at once if there is no room.
  [[nodiscard]] Loan try_loan()
    requires(bitwise_message<T>)
  {
    return loan_until(detail::Deadline::min());
  }

  // The next message, read in place: waits while empty. Throws Closed once the queue is closed
  // and drained.
  [[nodiscard]] View take()
    requires(bitwise_message<T>)
  {
    return view_until(detail::Deadline::max());
  }
  // Throws Empty if nothing came within `timeout`.
  template <class Rep, class Period>
  [[nodiscard]] View take(std::chrono::duration<Rep, Period> timeout)
    requires(bitwise_message<T>)
  {
    View view = view_until(detail::deadline_after(timeout));
    if (!view) {
      throw Empty("multiproc::Queue::take: still empty after the timeout");
    }
    return view;
  }
  // An empty View (false) at once if there is nothing; throws Closed once closed and drained.
  [[nodiscard]] View try_take()
    requires(bitwise_message<T>)
  {
    return view_until(detail::Deadline::min());
  }

  // Exact when no one is putting or getting; otherwise a value that was true a moment ago.
  [[nodiscard]] std::size_t qsize() const noexcept { return backend_.size(); }
  [[nodiscard]] bool empty() const noexcept { return qsize() == 0; }
  [[nodiscard]] bool full() const noexcept { return qsize() >= capacity(); }
  [[nodiscard]] std::size_t capacity() const noexcept { return backend_.capacity(); }
  // For every process: later puts throw Closed; gets take what is left, then throw Closed;
  // callers asleep in put or get wake up.
  void close() noexcept { detail::close(backend_.signals()); }
  [[nodiscard]] bool closed() const noexcept { return detail::is_closed(backend_.signals()); }
  // Empty for an anonymous queue.
  [[nodiscard]] const std::string& name() const noexcept { return backend_.name(); }
  // The name it travels by to another process (see codec.hpp); ValueError when anonymous.
  [[nodiscard]] const std::string& name_to_travel() const { return backend_.name_to_travel(); }

  // A file descriptor for epoll/poll/select or Boost.Asio that polls readable while a get would
  // find a message (or the queue is closed): from the moment a message arrives until this process
  // next finds the queue empty (a try_get that returns nothing, get_nowait's Empty, a get that
  // timed out). An open loan at the head holds back the messages behind it (qsize() counts them),
  // so the fd waits for its publish or drop, or its holder's death, rather than wake a poll loop
  // that would find nothing. So: when it is readable, take messages until try_get() says empty.
  // Reading the fd is not needed. The first call starts a helper thread that waits on the queue
  // for this process; other processes, and puts while the queue is not empty, pay nothing. The fd
  // belongs to the queue: do not close it. Do not call it from two threads at once.
  [[nodiscard]] int ready_fd() {
    if (!ready_) {
      ready_ = detail::make_ready_bridge(backend_.signals(), backend_.message_probe());
    }
    return ready_->fd();
  }

 protected:
  bool put_until(const T& value, detail::Deadline deadline) { return put_encoded_until(backend_.encoded(value), deadline); }

  // Takes the next message's bytes as they are, undecoded (a T that goes through the codec).
  bool get_bytes_until(std::vector<std::byte>& bytes, detail::Deadline deadline)
    requires(!bitwise_message<T>)
  {
    auto attempt = [&] { return backend_.try_get_bytes(bytes); };
    return take_until(attempt, deadline);
  }

  template <class Encoded>
  bool put_encoded_until(const Encoded& bytes, detail::Deadline deadline) {
    if (closed()) {
      throw Closed("multiproc::Queue::put: the queue is closed");
    }
    // A JoinableQueue counts the task just before each attempt to put the message, so task_done()
    // never outruns the count, and takes the count back at once when the attempt finds no room:
    // a producer waiting for room holds no count, and one killed while it waits leaves none.
    auto attempt = [&] {
      if (!counts_tasks_) {
        return backend_.try_put(bytes);
      }
      detail::add_task(backend_.signals());
      detail::Attempted result = detail::Attempted::blocked;
      try {
        result = backend_.try_put(bytes);
      } catch (...) {
        detail::finish_task(backend_.signals());
        throw;
      }
      if (result != detail::Attempted::done) {
        detail::finish_task(backend_.signals());
      }
      return result;
    };
    if (!attempt_until(attempt, detail::Side::producer, deadline)) {
      return false;
    }
    detail::ring_doorbell(backend_.signals(), detail::Side::consumer);
    return true;
  }

  std::optional<T> get_until(detail::Deadline deadline) {
    std::optional<typename Backend::Taken> taken;
    auto attempt = [&] { return backend_.try_get(taken); };
    if (!take_until(attempt, deadline)) {
      return std::nullopt;
    }
    return backend_.decoded(std::move(*taken));
  }

  // Repeats `attempt` (a take) until it is done (true) or `deadline` passes (false).
  template <class Attempt>
  bool take_until(Attempt& attempt, detail::Deadline deadline) {
    if (!attempt_until(attempt, detail::Side::consumer, deadline)) {
      return false;
    }
    detail::ring_doorbell(backend_.signals(), detail::Side::producer);
    return true;
  }

  // Repeats `attempt` (a put or loan: Side::producer; a take: Side::consumer) until it is done
  // (true) or `deadline` passes (false: a consumer then found the queue empty).
  template <class Attempt>
  bool attempt_until(Attempt& attempt, detail::Side side, detail::Deadline deadline) {
    if (attempt() == detail::Attempted::done ||
        detail::wait_until_done(backend_.signals(), side, detail::AttemptRef::to(attempt), deadline)) {
      return true;
    }
    if (side == detail::Side::consumer) {
      saw_empty();
    }
    return false;
  }

  // A slot claimed for a loan (a view) within `deadline`; an empty one if none came. Nothing is
  // rung here: the loan's publish (the view's release) rings the other side, as put (get) does.
  Loan loan_until(detail::Deadline deadline)
    requires(bitwise_message<T>)
  {
    if (closed()) {
      throw Closed("multiproc::Queue::loan: the queue is closed");
    }
    detail::SlotClaim<T> claim;
    auto attempt = [&] { return backend_.try_loan(claim); };
    return attempt_until(attempt, detail::Side::producer, deadline) ? Loan(claim, backend_.signals(), counts_tasks_)
                                                                    : Loan();
  }
  View view_until(detail::Deadline deadline)
    requires(bitwise_message<T>)
  {
    detail::SlotClaim<T> claim;
    auto attempt = [&] { return backend_.try_view(claim); };
    return attempt_until(attempt, detail::Side::consumer, deadline) ? View(claim, backend_.signals()) : View();
  }

  // This process found the queue empty: the ready fd may fire again.
  void saw_empty() noexcept {
    if (ready_) {
      ready_->rearm();
    }
  }

  // Waits until the queue holds a message, without taking it. False once `deadline` passes.
  bool wait_nonempty_until(detail::Deadline deadline) {
    return detail::wait_nonempty_until(backend_.signals(), [this] { return qsize(); }, deadline);
  }

  // Every constructor: `ring_bytes` 0 for the default (always 0 for a trivially copyable T); a
  // joinable queue counts tasks and is an object of its own kind.
  Queue(const Where& where, std::size_t capacity, std::size_t ring_bytes, bool joinable)
      : counts_tasks_(joinable), backend_(where, capacity, ring_bytes, joinable) {}

  [[nodiscard]] detail::QueueSignals& signals() const noexcept { return backend_.signals(); }

  bool counts_tasks_;  // a JoinableQueue

 private:
  using Backend = detail::QueueBackend<T>;

  // What Loan and View share: a move-only hold on a claimed slot (none when empty), ended by `End`
  // when it is dropped or overwritten, or by the owner's end(). It keeps only what lives in the
  // queue's shared memory, not the handle, so the handle may move while it is open.
  template <void (*End)(const detail::SlotClaim<T>&, detail::QueueSignals&) noexcept>
  class SlotHold {
   public:
    SlotHold(SlotHold&& other) noexcept : claim_(std::exchange(other.claim_, {})), signals_(other.signals_) {}
    SlotHold& operator=(SlotHold&& other) noexcept {
      if (this != &other) {
        end();
        claim_ = std::exchange(other.claim_, {});
        signals_ = other.signals_;
      }
      return *this;
    }
    SlotHold(const SlotHold&) = delete;
    SlotHold& operator=(const SlotHold&) = delete;
    ~SlotHold() { end(); }

    [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(claim_); }

   protected:
    SlotHold() noexcept = default;
    SlotHold(const detail::SlotClaim<T>& claim, detail::QueueSignals& signals) noexcept
        : claim_(claim), signals_(&signals) {}
    [[nodiscard]] T& slot() const noexcept { return claim_.slot->value; }
    void end() noexcept {
      if (claim_) {
        End(claim_, *signals_);
        claim_ = {};
      }
    }

    detail::SlotClaim<T> claim_;
    detail::QueueSignals* signals_ = nullptr;
  };
  // How a Loan dropped unpublished ends: its slot goes to the next lap, so producers may have room
  // again and consumers waiting at its position may move on: both sides are rung.
  static void drop_loan(const detail::SlotClaim<T>& claim, detail::QueueSignals& signals) noexcept {
    Backend::release(claim);
    detail::ring_doorbell(signals, detail::Side::producer);
    detail::ring_doorbell(signals, detail::Side::consumer);
  }
  // How a View ends: its slot goes to the next lap and producers are rung, as after a get.
  static void free_slot(const detail::SlotClaim<T>& claim, detail::QueueSignals& signals) noexcept {
    Backend::release(claim);
    detail::ring_doorbell(signals, detail::Side::producer);
  }

  Backend backend_;
  std::unique_ptr<detail::ReadyBridge> ready_;  // made by the first ready_fd()

  friend class Connection<T>;
  friend class Waitable;
};

// A slot lent to a producer: write the message through it, then publish() it. Dropped unpublished,
// it leaves nothing visible. Move-only; empty (false) when no room came.
template <class T>
class Queue<T>::Loan : public Queue<T>::template SlotHold<&Queue<T>::drop_loan> {
 public:
  Loan() noexcept = default;

  // The slot's storage (holding whatever was there before: construct or assign the message).
  [[nodiscard]] T& operator*() const noexcept { return this->slot(); }
  [[nodiscard]] T* operator->() const noexcept { return &**this; }

  // Makes the message visible to consumers and rings their doorbell, as put does (a JoinableQueue
  // counts the task first, so task_done() never outruns the count). Only on a non-empty Loan; it
  // is empty afterwards. A loan taken before close() may still be published, as a put under way.
  void publish() noexcept {
    if (counts_task_) {
      detail::add_task(*this->signals_);
    }
    Queue::Backend::publish(this->claim_);
    detail::ring_doorbell(*this->signals_, detail::Side::consumer);
    this->claim_ = {};
  }

 private:
  friend class Queue<T>;
  Loan(const detail::SlotClaim<T>& claim, detail::QueueSignals& signals, bool counts_task) noexcept
      : Loan::SlotHold(claim, signals), counts_task_(counts_task) {}

  bool counts_task_ = false;  // a JoinableQueue's
};

// A consumer's view of a message, read in place; dropping it frees the slot. Move-only; empty
// (false) when nothing came.
template <class T>
class Queue<T>::View : public Queue<T>::template SlotHold<&Queue<T>::free_slot> {
 public:
  View() noexcept = default;

  [[nodiscard]] const T& operator*() const noexcept { return this->slot(); }
  [[nodiscard]] const T* operator->() const noexcept { return &**this; }

  // Frees the slot for the producers now (the destructor does it otherwise); the View is empty afterwards.
  void release() noexcept { this->end(); }

 private:
  friend class Queue<T>;
  View(const detail::SlotClaim<T>& claim, detail::QueueSignals& signals) noexcept : View::SlotHold(claim, signals) {}
};

}  // namespace multiproc
