#include "hal/sim_socket.hpp"

#include <sys/stat.h>

#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <memory>
#include <sstream>
#include <vector>

#include "core/log.hpp"

namespace cg::hal {
namespace asio = boost::asio;
using local = asio::local::stream_protocol;

namespace {
constexpr std::size_t kMaxLine = 256;

bool to_int(const std::string& s, int& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(local::socket s, SimServer::Handler& h) : sock_(std::move(s)), handler_(h), buf_(kMaxLine + 2) {}
  void start() { read(); }

 private:
  void read() {
    auto self = shared_from_this();
    asio::async_read_until(sock_, buf_, '\n', [self](boost::system::error_code ec, std::size_t n) {
      if (ec) return;  // EOF, or a line longer than the limit: drop the client
      std::string line(asio::buffers_begin(self->buf_.data()), asio::buffers_begin(self->buf_.data()) + static_cast<long>(n));
      self->buf_.consume(n);
      while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
      std::string err;
      std::string answer;
      try {
        if (auto cmd = parse_sim_command(line, err)) answer = self->handler_(*cmd);
        else answer = "error: " + err;
      } catch (const std::exception& ex) {
        log::error("hal", "simulator command failed: ", ex.what());
        answer = "error: the station could not take the event (see its log)";
      }
      self->out_ = answer + "\n";
      asio::async_write(self->sock_, asio::buffer(self->out_), [self](boost::system::error_code wec, std::size_t) {
        if (!wec) self->read();
      });
    });
  }
  local::socket sock_;
  SimServer::Handler& handler_;
  asio::streambuf buf_;
  std::string out_;
};
}  // namespace

std::optional<SimCommand> parse_sim_command(std::string_view line, std::string& error) {
  std::istringstream in{std::string(line)};
  std::vector<std::string> w;
  for (std::string t; in >> t;) w.push_back(t);
  if (w.empty()) {
    error = "empty command";
    return std::nullopt;
  }
  const std::string& c = w[0];
  SimCommand cmd{SimCommand::Kind::Status};
  auto need = [&](std::size_t n, const char* usage) {
    if (w.size() != n) {
      error = std::string("usage: ") + usage;
      return false;
    }
    return true;
  };
  auto evse_arg = [&]() {
    if (!to_int(w[1], cmd.evse) || cmd.evse < 1) {
      error = "EVSE must be a positive integer";
      return false;
    }
    return true;
  };
  if (c == "plug" || c == "unplug" || c == "fault" || c == "clear-fault") {
    if (!need(2, (c + " EVSE").c_str()) || !evse_arg()) return std::nullopt;
    cmd.kind = c == "plug" ? SimCommand::Kind::Plug
             : c == "unplug" ? SimCommand::Kind::Unplug
             : c == "fault" ? SimCommand::Kind::Fault
                            : SimCommand::Kind::ClearFault;
    return cmd;
  }
  if (c == "badge") {
    if ((w.size() != 3 && w.size() != 4) || !evse_arg()) {
      if (error.empty()) error = "usage: badge EVSE TOKEN [TYPE]";
      return std::nullopt;
    }
    cmd.kind = SimCommand::Kind::Badge;
    cmd.token = w[2];
    if (w.size() == 4) cmd.token_type = w[3];
    if (cmd.token.empty() || cmd.token.size() > 36) {
      error = "TOKEN must be 1-36 characters";
      return std::nullopt;
    }
    static const char* kTypes[] = {"Central", "eMAID", "ISO14443", "ISO15693", "KeyCode", "Local", "MacAddress"};
    bool ok = false;
    for (auto* t : kTypes) ok = ok || cmd.token_type == t;
    if (!ok) {
      error = "TYPE must be one of Central, eMAID, ISO14443, ISO15693, KeyCode, Local, MacAddress";
      return std::nullopt;
    }
    return cmd;
  }
  if (c == "draw") {
    if (!need(3, "draw EVSE AMPS") || !evse_arg()) return std::nullopt;
    try {
      std::size_t pos = 0;
      cmd.amps = std::stod(w[2], &pos);
      if (pos != w[2].size() || !(cmd.amps >= 0 && cmd.amps <= 1000)) throw std::invalid_argument("range");
    } catch (...) {
      error = "AMPS must be a number between 0 and 1000";
      return std::nullopt;
    }
    cmd.kind = SimCommand::Kind::Draw;
    return cmd;
  }
  if (c == "case") {
    if (!need(2, "case open|close")) return std::nullopt;
    if (w[1] == "open") cmd.kind = SimCommand::Kind::CaseOpen;
    else if (w[1] == "close") cmd.kind = SimCommand::Kind::CaseClose;
    else {
      error = "usage: case open|close";
      return std::nullopt;
    }
    return cmd;
  }
  if (c == "moved" && need(1, "moved")) return SimCommand{SimCommand::Kind::Moved};
  if (c == "reset-button" && need(1, "reset-button")) return SimCommand{SimCommand::Kind::ResetButton};
  if (c == "status" && need(1, "status")) return SimCommand{SimCommand::Kind::Status};
  if (error.empty())
    error = "unknown command '" + c.substr(0, 32) +
            "'; commands: plug EVSE | unplug EVSE | badge EVSE TOKEN [TYPE] | draw EVSE AMPS | fault EVSE | "
            "clear-fault EVSE | case open|close | moved | reset-button | status";
  return std::nullopt;
}

SimServer::SimServer(asio::io_context& io, const std::filesystem::path& socket_path, Handler h)
    : acceptor_(io), path_(socket_path), handler_(std::move(h)) {
  std::error_code ec;
  std::filesystem::remove(path_, ec);
  const mode_t old = ::umask(0177);  // the socket is created 0600 (owner only)
  acceptor_.open(local());
  acceptor_.bind(local::endpoint(path_.string()));
  ::umask(old);
  ::chmod(path_.c_str(), 0600);
  acceptor_.listen(8);
  accept();
}

SimServer::~SimServer() {
  boost::system::error_code ec;
  acceptor_.close(ec);
  std::error_code fec;
  std::filesystem::remove(path_, fec);
}

void SimServer::accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, local::socket s) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;  // shutting down
    if (ec) {
      log::warn("hal", "simulator socket: accept failed: ", ec.message());  // e.g. EMFILE: try again
    } else {
      std::make_shared<Session>(std::move(s), handler_)->start();
    }
    accept();
  });
}

}  // namespace cg::hal
