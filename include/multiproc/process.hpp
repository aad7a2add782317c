#pragma once
// Process: run a function in a forked child, as Python's multiprocessing.Process does with the
// "fork" start method.
//
//   multiproc::Process p{[&] { work(shared_value); }};   // or Process{f, "worker-1"}
//   p.start();
//   p.join();            // or: bool finished = p.join(std::chrono::seconds(1));
//   p.exitcode();        // 0; 1 after an uncaught exception; -N after signal N; the int f returned
//
// The child is a copy of the parent at start(): it sees the objects the parent made before (shared
// ones such as Value or Lock really shared, everything else copied). stdio buffers are flushed before
// fork, so nothing printed earlier is printed twice; the child leaves with _exit, so it never runs
// the parent's atexit handlers or static destructors. Only the thread that calls start() exists in
// the child, as with any fork.
//
// A Process object is used from one thread at a time. Destroying a started, unjoined Process does
// not kill the child; the child is reaped by a later start() once it has finished, or by the system
// when this process exits.
//
// Daemons (set_daemon(true) before start(), as Python's `daemon = True`): when this process exits
// normally (returns from main or calls exit), each daemon child still running gets SIGTERM and is
// joined (SIGKILL after 1 s, so exit never hangs), as Python does. When this process dies any other
// way (killed -9, _exit, a crash), the kernel kills the daemon (SIGKILL through PR_SET_PDEATHSIG).
// The kernel's signal follows the thread that called start(): start daemons from a thread that
// lives as long as the process (the main thread, say), or they die with that thread. As in Python,
// a daemon may not start children of its own.
#include <sys/types.h>

#include <chrono>
#include <concepts>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <multiproc/export.hpp>

namespace multiproc {

class Process;
// The Process object of the calling process: "MainProcess" in the program's first process, the
// started Process object inside a child.
MULTIPROC_API Process& current_process();
// The children this process started whose Process objects still exist and that have not ended
// (ended ones are reaped on the way), as Python's active_children(). Call it from the thread that
// uses those objects.
MULTIPROC_API std::vector<Process*> active_children();
// Inside a child: the parent's Process object as it was at fork (its name() and pid(); is_alive()
// says whether the parent still runs). nullptr in the main process, as Python's None.
MULTIPROC_API Process* parent_process();
// The number of CPUs online, as Python's cpu_count() (not the ones this process may run on: see
// sched_getaffinity). Throws std::system_error if the system cannot tell.
MULTIPROC_API int cpu_count();

class MULTIPROC_API Process {
 public:
  using Clock = std::chrono::steady_clock;

  // For subclasses that override run(). Named "Process-N" (N counts this process's Processes).
  Process();
  // `target` runs in the child. If it returns an int, that is the child's exit code.
  template <class F>
    requires std::invocable<F&> &&
             (std::is_void_v<std::invoke_result_t<F&>> || std::convertible_to<std::invoke_result_t<F&>, int>)
  explicit Process(F target, std::string name = {}) : Process(wrap(std::move(target)), std::move(name)) {}

  Process(Process&& other) noexcept;
  // Assigning over a started, unjoined Process abandons its child as the destructor does.
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  virtual ~Process();

  void start();
  // Waits for the child to end and reaps it.
  void join();
  // Returns true if the child ended within `timeout`. Sleeps on a pidfd: no polling loop (see
  // sentinel() for kernels without pidfds).
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join_until(Clock::now() + std::chrono::ceil<Clock::duration>(timeout));
  }
  // In a child, for parent_process(): whether the parent still runs.
  [[nodiscard]] bool is_alive();
  // 0 before start().
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  // Empty until the child has ended; then 0, its exit code, or -N if signal N killed it.
  [[nodiscard]] std::optional<int> exitcode();
  // A pidfd that polls readable once the child has ended, for poll/epoll, like Python's
  // Process.sentinel. It stays open (and keeps polling readable) after join, until close() or
  // destruction. -1 before start and where the kernel has no pidfds (then join(timeout) polls the
  // child's state every few milliseconds instead of sleeping on it).
  [[nodiscard]] int sentinel() const;
  void terminate();  // SIGTERM
  void kill();       // SIGKILL
  // Python's daemon flag; set it before start() (ValueError after). See the top of this header.
  void set_daemon(bool daemon);
  [[nodiscard]] bool daemon() const noexcept { return daemon_; }
  // Releases the sentinel, as Python's close(). ValueError while the child still runs. Afterwards
  // start, join, is_alive, exitcode, sentinel, terminate and kill throw ValueError.
  void close();

 protected:
  // What the child runs. The default calls the target given to the constructor.
  virtual void run();

 private:
  using Target = std::function<int()>;
  struct main_process_t {};
  friend Process& current_process();

  template <class F>
  static Target wrap(F target) {
    if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
      return [target = std::move(target)]() mutable { target(); return 0; };
    } else {
      return [target = std::move(target)]() mutable { return static_cast<int>(target()); };
    }
  }
  Process(Target target, std::string name);
  explicit Process(main_process_t);
  static Process* const main_process_;  // "MainProcess"

  [[noreturn]] void run_in_child(pid_t parent);
  bool join_until(Clock::time_point deadline);
  bool try_reap();
  void record(int wait_status);
  void require_started(const char* operation) const;
  void require_open(const char* operation) const;
  void forget() noexcept;
  void take_place_of(Process& other) noexcept;
  void send(int signal);
  void abandon() noexcept;
  void close_pidfd() noexcept;

  Target target_;
  std::string identity_;  // Python's _identity, e.g. "1:2"; names the child's own children
  std::string name_;
  pid_t pid_ = 0;
  pid_t parent_pid_ = 0;  // the process that started this one: only it may join, signal or reap
  int pidfd_ = -1;
  int child_exit_code_ = 0;  // set in the child by run() from the target's result
  std::optional<int> exitcode_;
  bool daemon_ = false;
  bool closed_ = false;
};

}  // namespace multiproc
