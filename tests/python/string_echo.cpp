// The C++ side of test_interop.py: shows what a C++ Queue<std::string> receives from Python, and
// sends it back as C++ sends any std::string.
//
//   string_echo NAME
//
// Takes every message of the named Queue<std::string> "NAME.requests" until it is shut down,
// records its bytes in hex under its index in SharedDict<std::string, std::string> "NAME.seen",
// and puts the same std::string on "NAME.replies". Exit code 0 once the requests end.
#include <chrono>
#include <cstdio>
#include <string>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s NAME\n", argv[0]);
    return 2;
  }
  const std::string name = argv[1];
  // The test made the queues (with sizes of its choosing); the record of what was seen is ours.
  mp::Queue<std::string> requests(mp::open, name + ".requests");
  mp::Queue<std::string> replies(mp::open, name + ".replies");
  mp::SharedDict<std::string, std::string> seen(mp::create, name + ".seen");
  for (long i = 0;; ++i) {
    std::string message;
    try {
      message = requests.get(30s);
    } catch (const mp::Closed&) {
      return 0;
    }
    std::string hex;
    for (const unsigned char c : message) {
      static const char digits[] = "0123456789abcdef";
      hex += digits[c >> 4];
      hex += digits[c & 15];
    }
    seen.set(std::to_string(i), hex);
    replies.put(message, 30s);
  }
}
