// Logger: records from many processes arrive whole, each with time, process name and pid.
#define BOOST_TEST_MODULE log
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;

BOOST_AUTO_TEST_CASE(records_from_many_processes_never_tear) {
  int fds[2];
  BOOST_REQUIRE_EQUAL(::pipe(fds), 0);
  constexpr int writers = 6;
  constexpr int records = 300;
  {
    const mp::Logger logger{fds[1]};  // made once, inherited by every child
    std::vector<mp::Process> team;
    for (int w = 0; w < writers; ++w) {
      team.emplace_back([&logger, w] {
        const std::string padding(200, static_cast<char>('a' + w));  // long records tear easily if split
        char record[256];
        for (int r = 0; r < records; ++r) {
          std::snprintf(record, sizeof record, "w%d r%d %s", w, r, padding.c_str());
          logger.log(record);
        }
      });
    }
    for (auto& p : team) p.start();
    ::close(fds[1]);  // the children hold their own copies
    std::string text;
    char buffer[65536];
    for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(n));
    for (auto& p : team) p.join();
    ::close(fds[0]);

    const std::regex whole(R"(\d\d:\d\d:\d\d\.\d{3} Process-[0-9:]+\[\d+\] w(\d) r\d+ ([a-f])\2{199})");
    std::size_t lines = 0;
    std::size_t good = 0;
    std::size_t start = 0;
    for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1, ++lines) {
      std::smatch m;
      const std::string line = text.substr(start, end - start);
      good += std::regex_match(line, m, whole) && m[2].str()[0] == static_cast<char>('a' + std::stoi(m[1].str()));
    }
    BOOST_CHECK_EQUAL(lines, std::size_t{writers * records});
    BOOST_CHECK_EQUAL(good, lines);
  }
}

BOOST_AUTO_TEST_CASE(a_file_logger_names_the_process) {
  const std::string path = "/tmp/multiproc-test-log-" + std::to_string(::getpid());
  {
    mp::Logger logger{path};
    logger.log("from the parent");
    BOOST_CHECK_EQUAL(test::in_child([&] {
      logger.log("from the child");
      return 0;
    }), 0);
  }
  std::ifstream file(path);
  std::string first, second;
  std::getline(file, first);
  std::getline(file, second);
  ::unlink(path.c_str());
  BOOST_TEST(first.find(" MainProcess[") != std::string::npos, first);
  BOOST_TEST(second.find(" Process-") != std::string::npos, second);
  BOOST_TEST(second.ends_with("] from the child"), second);
  BOOST_CHECK_THROW(mp::Logger("/nonexistent-dir/x.log"), std::system_error);
}
