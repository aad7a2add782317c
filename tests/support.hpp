#pragma once
// Shared by the test programs: unique segment names, children that report through exit codes,
// and a global check that a test program leaves nothing of its own in /dev/shm.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include <multiproc/process.hpp>
#include <multiproc/segment.hpp>

namespace test {

// "mptest-<pid of the test program>-": fixed before any child is forked, so children use it too.
inline std::string& name_prefix() {
  static std::string prefix = "mptest-" + std::to_string(::getpid()) + "-";
  return prefix;
}

inline std::string unique_name(const std::string& tag) {
  static std::atomic<int> counter{0};
  return name_prefix() + tag + "-" + std::to_string(counter.fetch_add(1));
}

inline std::vector<std::string> leftover_segments() {
  std::vector<std::string> found;
  const std::string own = multiproc::shm_file_name(name_prefix());
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) {
    if (entry.path().filename().string().starts_with(own)) {
      found.push_back(entry.path().filename().string());
    }
  }
  return found;
}

// Runs `body` in a forked child and returns its exit code (the int `body` returns, 1 if it threw,
// -N if signal N ended it). A child that outlives `limit` is killed, so no test can hang.
inline int in_child(std::function<int()> body, std::chrono::seconds limit = std::chrono::seconds(60)) {
  multiproc::Process child{std::move(body)};
  child.start();
  if (!child.join(limit)) {
    child.kill();
    child.join();
    BOOST_ERROR("child " << child.name() << " was still running after " << limit.count() << " s");
  }
  return *child.exitcode();
}

struct NoLeftoverSegments {
  NoLeftoverSegments() { name_prefix(); }
  ~NoLeftoverSegments() {
    const auto left = leftover_segments();
    for (const auto& name : left) {
      BOOST_ERROR("test program left /dev/shm/" << name);
      multiproc::unlink(name.substr(multiproc::shm_file_name("").size()));
    }
  }
};

}  // namespace test

using test::NoLeftoverSegments;
BOOST_TEST_GLOBAL_FIXTURE(NoLeftoverSegments);
