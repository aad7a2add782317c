// pipe_ping_pong: parent and child bat a message back and forth over one duplex Pipe.
//
//   ./pipe_ping_pong [rounds]      (default 5)
//
// The twin of the classic Python lesson:
//     parent_conn, child_conn = Pipe()
//     p = Process(target=player, args=(child_conn,)); p.start()
//     parent_conn.send('ping'); print(parent_conn.recv())
#include <cstdio>
#include <string>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::stoi(argv[1]) : 5;
  auto [parent_end, child_end] = mp::Pipe<std::string>();  // duplex: both ends send and receive

  mp::Process child{[&] {
    for (int i = 0; i < rounds; ++i) {
      const std::string ball = child_end.recv();
      std::printf("  child  got %-8s -> sends pong %d\n", ball.c_str(), i);
      std::fflush(stdout);
      child_end.send("pong " + std::to_string(i));
    }
  }};
  child.start();

  int returned = 0;
  for (int i = 0; i < rounds; ++i) {
    parent_end.send("ping " + std::to_string(i));
    const std::string ball = parent_end.recv();
    std::printf("parent   got %s\n", ball.c_str());
    std::fflush(stdout);
    returned += ball == "pong " + std::to_string(i);
  }
  child.join();
  return returned == rounds ? 0 : 1;
}
