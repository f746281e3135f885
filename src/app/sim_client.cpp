#include "app/sim_client.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

namespace cg::app {

int sim_command(const std::filesystem::path& state_dir, const std::string& line) {
  const std::string path = (state_dir / "sim.sock").string();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    std::cerr << "error: state directory path too long for a Unix socket: " << path << "\n";
    return 2;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::cerr << "error: no station is running with state directory " << state_dir.string() << " (" << path << ": "
              << std::strerror(errno) << ")\n";
    if (fd >= 0) ::close(fd);
    return 2;
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string msg = line + "\n";
  if (::write(fd, msg.data(), msg.size()) != static_cast<ssize_t>(msg.size())) {
    std::cerr << "error: cannot send to the station\n";
    ::close(fd);
    return 2;
  }
  std::string answer;
  char buf[4096];
  while (answer.find('\n') == std::string::npos) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    answer.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (answer.empty()) {
    std::cerr << "error: the station closed the connection without an answer\n";
    return 2;
  }
  answer.erase(answer.find('\n'));
  if (answer.rfind("ok", 0) == 0) {
    std::cout << answer << "\n";
    return 0;
  }
  std::cerr << answer << "\n";
  return 1;
}

}  // namespace cg::app
