// The HTTPS server of the maintenance interface (Boost.Beast over Asio, on the
// daemon's I/O thread). HTTPS only: there is no plain-HTTP listener, not even
// a redirect. It enforces what no route should have to (NET-4): at most
// kMaxConnections at once and kMaxConnectionsPerAddress from one client
// address (more are closed at accept: one host cannot take every slot), a TLS handshake within
// 10 s, request line + headers ≤ 8 KiB, target ≤ 2 KiB, body ≤ the route's
// limit (16 KiB forms; an upload route streams its body to a sink, bounded
// by its own limit) before a byte of it is kept, GET and POST only, a
// whole request within 30 s (slow-loris), keep-alive idle 60 s. It parses the
// cookie, the query and the form, and hands the route a web::Request; the
// answer gets the security headers of every page (CSP without inline script,
// HSTS, X-Frame-Options DENY, nosniff, no referrer, no-store).
// REQ: NET-4, AUTH-6
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <functional>
#include <memory>

#include "web/http.hpp"

namespace cg::web {

inline constexpr int kMaxConnections = 64;
inline constexpr int kMaxConnectionsPerAddress = 16;  // a browser opens about 6 per site

class Server {
 public:
  using Reply = std::function<void(Response)>;
  // The handler answers exactly once, now or later (the authentication worker).
  using Handler = std::function<void(Request, Reply)>;
  // Asked for every POST once its head arrived: nullopt = an ordinary route
  // (the body is read whole, ≤ 16 KiB); otherwise the upload route's answer or sink.
  using Streamer = std::function<std::optional<StreamStart>(const Request& head)>;

  Server(boost::asio::io_context& io, boost::asio::ssl::context& tls, const boost::asio::ip::tcp::endpoint& where,
         Handler handler, Streamer streamer = {});
  ~Server();
  void start();
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// The headers every answer carries (exposed for the route-table test).
std::vector<std::pair<std::string, std::string>> security_headers(bool cacheable);

}  // namespace cg::web
