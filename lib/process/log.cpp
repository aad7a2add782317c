#include <multiproc/log.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <system_error>

#include <multiproc/process.hpp>

namespace multiproc {

Logger::Logger(int fd) noexcept : fd_(fd), owned_(false) {}

Logger::Logger(const std::string& path)
    : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)), owned_(true) {
  if (fd_ < 0) {
    throw std::system_error(errno, std::generic_category(), "multiproc::Logger: cannot open " + path);
  }
}

Logger::~Logger() {
  if (owned_) {
    ::close(fd_);
  }
}

void Logger::log(std::string_view message) const noexcept {
  try {
    const auto now = std::chrono::system_clock::now();
    const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm local{};
    ::localtime_r(&seconds, &local);
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "%02d:%02d:%02d.%03d ", local.tm_hour, local.tm_min, local.tm_sec,
                  static_cast<int>(millis));
    std::string record = stamp;
    record += current_process().name();
    record += '[' + std::to_string(::getpid()) + "] ";
    record += message;
    record += '\n';
    // One write: the whole point. A short write (a full disk) is not retried, so that the rest can
    // never land in the middle of another process's record.
    (void)!::write(fd_, record.data(), record.size());
  } catch (...) {  // out of memory while formatting: nothing sensible to log
  }
}

namespace {
const Logger to_stderr{STDERR_FILENO};  // made at load time: no lazy static reachable after fork
}  // namespace

void log(std::string_view message) noexcept { to_stderr.log(message); }

}  // namespace multiproc
