// The simulator's control socket: a Unix stream socket (mode 0600) in the state
// directory. One command per line, one answer line ("ok …" or "error: …").
// This is the simulated hardware: EV plug, RFID reader, EV demand, faults,
// case/motion sensors and the reset button.
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace cg::hal {

struct SimCommand {
  enum class Kind { Plug, Unplug, Badge, Draw, Fault, ClearFault, CaseOpen, CaseClose, Moved, ResetButton, Status } kind;
  int evse = 0;
  std::string token;  // Badge
  std::string token_type = "ISO14443";
  double amps = 0;  // Draw
};

// Parses one command line; on error returns nullopt and sets `error`.
std::optional<SimCommand> parse_sim_command(std::string_view line, std::string& error);

class SimServer {
 public:
  using Handler = std::function<std::string(const SimCommand&)>;  // returns the answer line
  SimServer(boost::asio::io_context& io, const std::filesystem::path& socket_path, Handler h);
  ~SimServer();

 private:
  void accept();
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::filesystem::path path_;
  Handler handler_;
};

}  // namespace cg::hal
