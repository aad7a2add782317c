#pragma once
// Logger: log lines from many processes that never tear.
//
//   multiproc::log("started");                        // to stderr
//   multiproc::Logger file{"run.log"};                 // or a file shared by every process
//   file.log("worker " + std::to_string(n) + " done");
//   // 12:03:04.512 Process-2[4711] worker 3 done
//
// Each record is written with a single write(2): to a file opened with O_APPEND, or to a pipe or
// terminal for records up to PIPE_BUF (4096) bytes, the kernel never interleaves two writes, so
// lines from different processes arrive whole. A Logger made before fork is used by the children
// as it is: the descriptor is inherited and the process name is read at each call.
#include <string>
#include <string_view>

#include <multiproc/export.hpp>

namespace multiproc {

class MULTIPROC_API Logger {
 public:
  // Writes to an open descriptor (not closed by the Logger), e.g. STDERR_FILENO.
  explicit Logger(int fd) noexcept;
  // Appends to `path`, created 0644 if absent. Throws std::system_error if it cannot be opened.
  explicit Logger(const std::string& path);
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;
  ~Logger();

  // Writes "<HH:MM:SS.mmm> <process name>[<pid>] <message>\n" in one write.
  void log(std::string_view message) const noexcept;

 private:
  int fd_;
  bool owned_;
};

// The process-wide logger to stderr.
MULTIPROC_API void log(std::string_view message) noexcept;

}  // namespace multiproc
