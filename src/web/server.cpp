#include "web/server.hpp"

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <limits>
#include <map>

#include "core/log.hpp"

namespace cg::web {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
constexpr auto kRequestTimeout = std::chrono::seconds(30);
constexpr auto kIdleTimeout = std::chrono::seconds(60);

// The client's address as the routes see it (an IPv4-mapped IPv6 address as IPv4).
std::string peer_address(const tcp::endpoint& ep) {
  auto a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  return a.to_string();
}

std::string plain_error(unsigned status, std::string_view what) {
  return "<!doctype html><meta charset=utf-8><title>" + std::to_string(status) + "</title><p>" + html(what) + "</p>\n";
}
}  // namespace

std::vector<std::pair<std::string, std::string>> security_headers(bool cacheable) {
  return {
      {"Content-Security-Policy",
       "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"},
      {"Strict-Transport-Security", "max-age=31536000"},
      {"X-Frame-Options", "DENY"},
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"},
      {"Cross-Origin-Opener-Policy", "same-origin"},
      {"Cross-Origin-Resource-Policy", "same-origin"},
      {"Permissions-Policy", "camera=(), microphone=(), geolocation=()"},
      {"Cache-Control", cacheable ? "private, max-age=3600" : "no-store"},
  };
}

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  asio::io_context& io;
  ssl::context& tls;
  tcp::acceptor acceptor;
  Handler handler;
  Streamer streamer;
  int open = 0;
  std::map<std::string, int> open_by_address;
  bool stopped = false;

  Impl(asio::io_context& i, ssl::context& t, const tcp::endpoint& where, Handler h, Streamer st)
      : io(i), tls(t), acceptor(i), handler(std::move(h)), streamer(std::move(st)) {
    acceptor.open(where.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    if (where.address().is_v6()) acceptor.set_option(asio::ip::v6_only(true));
    acceptor.bind(where);
    acceptor.listen(asio::socket_base::max_listen_connections);
  }

  void accept();
};

namespace {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<Server::Impl> server, tcp::socket sock)
      : server_(std::move(server)), stream_(std::move(sock), server_->tls) {
    boost::system::error_code ec;
    const auto ep = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    if (!ec) peer_ = peer_address(ep);
    ++server_->open;
    ++server_->open_by_address[peer_];
  }
  ~Connection() {
    --server_->open;
    if (auto it = server_->open_by_address.find(peer_); it != server_->open_by_address.end() && --it->second <= 0)
      server_->open_by_address.erase(it);
    // A client that went away in the middle of an upload: the sink cleans up.
    if (sink_) sink_->finish(false, "the connection ended during the upload", [](Response) {});
  }

  void start() {
    beast::get_lowest_layer(stream_).expires_after(kHandshakeTimeout);
    stream_.async_handshake(ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return;  // scanners and wrong protocols end here, silently
      self->read();
    });
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    // The route decides the body's limit once the head is known (checked below).
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    beast::get_lowest_layer(stream_).expires_after(first_ ? kRequestTimeout : kIdleTimeout);
    http::async_read_header(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_header(ec);
    });
  }

  // Transport errors that end the exchange; true when handled.
  bool transport_error(beast::error_code ec) {
    if (!ec) return false;
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == ssl::error::stream_truncated ||
        ec == beast::error::timeout) {
      return true;  // nothing to answer
    }
    if (ec == http::error::header_limit) fail(431, "The request headers are larger than 8 KiB.");
    else if (ec == http::error::body_limit) fail(413, "The request body is larger than this page accepts.");
    else fail(400, "Malformed HTTP request.");
    return true;
  }

  void on_header(beast::error_code ec) {
    if (transport_error(ec)) return;
    first_ = false;
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    if (req.method() != http::verb::get && req.method() != http::verb::post)
      return fail(405, "Only GET and POST are served here.");
    const std::string_view target(req.target().data(), req.target().size());
    if (target.size() > kMaxTargetBytes) return fail(414, "The address is longer than 2 KiB.");
    if (target.empty() || target.front() != '/') return fail(400, "Malformed request target.");
    Request r;
    r.method = std::string(req.method_string());
    r.peer = peer_;
    const auto q = target.find('?');
    auto path = decode_path(target.substr(0, q));
    if (!path) return fail(400, "Malformed characters in the address.");
    r.path = std::move(*path);
    std::string error;
    if (q != std::string_view::npos) {
      auto query = parse_urlencoded(target.substr(q + 1), error);
      if (!query) return fail(400, "The query: " + error + ".");
      r.query = std::move(*query);
    }
    if (auto it = req.find(http::field::cookie); it != req.end())
      r.session_cookie = cookie_value(std::string_view(it->value().data(), it->value().size()), kSessionCookie);
    if (auto it = req.find("Sec-Fetch-Site"); it != req.end())
      r.cross_site = it->value() == "cross-site" || it->value() == "same-site";
    r.content_type = std::string(req[http::field::content_type].substr(0, 200));
    if (parser_->content_length()) r.content_length = *parser_->content_length();
    if (req.method() == http::verb::post && server_->streamer) {
      if (auto st = server_->streamer(r)) return start_stream(std::move(*st));
    }
    if (r.content_length && *r.content_length > kMaxFormBytes)
      return fail(413, "The request body is larger than this page accepts.");
    parser_->body_limit(kMaxFormBytes);  // also for a chunked body
    head_ = std::move(r);
    beast::get_lowest_layer(stream_).expires_after(kRequestTimeout);
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code e, std::size_t) {
      self->on_body(e);
    });
  }

  void on_body(beast::error_code ec) {
    if (transport_error(ec)) return;
    Request r = std::move(head_);
    auto& req = parser_->get();
    if (req.method() == http::verb::post) {
      if (!r.content_type.starts_with("application/x-www-form-urlencoded"))
        return fail(415, "Forms are sent as application/x-www-form-urlencoded.");
      std::string error;
      auto form = parse_urlencoded(req.body(), error);
      if (!form) return fail(400, "The form: " + error + ".");
      r.form = std::move(*form);
    }
    beast::get_lowest_layer(stream_).expires_after(kRequestTimeout);
    server_->handler(std::move(r), reply_fn());
  }

  // ---- uploads: the body in pieces to the route's sink

  void start_stream(StreamStart st) {
    if (st.answer) {
      keep_alive_ = false;  // the unread body makes the connection unusable
      return write(std::move(*st.answer));
    }
    if (parser_->content_length() && *parser_->content_length() > st.max_bytes) {
      keep_alive_ = false;
      st.sink->finish(false, "the upload is larger than the station accepts", [](Response) {});
      return fail(413, "The upload is larger than the station accepts.");
    }
    sink_ = std::move(st.sink);
    sparser_.emplace(std::move(*parser_));
    sparser_->body_limit(st.max_bytes);
    chunk_.resize(kUploadChunk);
    read_chunk();
  }

  void read_chunk() {
    if (sparser_->is_done()) return end_stream(stream_error_.empty(), stream_error_);
    auto& body = sparser_->get().body();
    body.data = chunk_.data();
    body.size = chunk_.size();
    beast::get_lowest_layer(stream_).expires_after(kRequestTimeout);  // per piece: a slow link is fine, a stalled one not
    http::async_read_some(stream_, buffer_, *sparser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec == http::error::need_buffer) ec = {};
      if (ec == http::error::body_limit) return self->end_stream(false, "the upload is larger than the station accepts");
      if (ec) return self->end_stream(false, "the upload stopped: " + ec.message());
      const std::size_t n = self->chunk_.size() - self->sparser_->get().body().size;
      // After a refusal the rest of the body is read and dropped (bounded by the
      // limit), so that the browser, still sending, gets the answer.
      if (n && self->stream_error_.empty()) {
        if (auto r = self->sink_->data({self->chunk_.data(), n}); !r) self->stream_error_ = r.error().message;
      }
      self->read_chunk();
    });
  }

  void end_stream(bool complete, const std::string& error) {
    auto sink = std::move(sink_);
    if (!complete) keep_alive_ = false;
    sink->finish(complete, error, reply_fn());
  }

  Server::Reply reply_fn() {
    return [self = shared_from_this()](Response resp) {
      // The answer may come from another thread (the authentication worker).
      asio::post(self->server_->io, [self, resp = std::move(resp)]() mutable { self->write(std::move(resp)); });
    };
  }

  void fail(unsigned status, std::string_view why) {
    keep_alive_ = false;
    Response r;
    r.status = status;
    r.body = plain_error(status, why);
    write(std::move(r));
  }

  void write(Response r) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), 11);
    res->set(http::field::content_type, r.content_type);
    for (const auto& [k, v] : security_headers(r.cacheable)) res->set(k, v);
    for (const auto& [k, v] : r.headers) res->insert(k, v);
    res->keep_alive(keep_alive_);
    res->body() = std::move(r.body);
    res->prepare_payload();
    beast::get_lowest_layer(stream_).expires_after(kRequestTimeout);
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec) return;
      if (!self->keep_alive_ || self->server_->stopped) return self->shutdown();
      self->read();
    });
  }

  void shutdown() {
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) {});
  }

  static constexpr std::size_t kUploadChunk = 256 * 1024;

  std::shared_ptr<Server::Impl> server_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_{kMaxHeaderBytes};
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::request_parser<http::buffer_body>> sparser_;
  std::vector<std::uint8_t> chunk_;
  std::unique_ptr<BodySink> sink_;
  Request head_;
  std::string stream_error_;
  std::string peer_;
  bool first_ = true, keep_alive_ = false;
};

}  // namespace

void Server::Impl::accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket sock) {
    if (self->stopped) return;
    if (!ec) {
      boost::system::error_code ec2;
      const auto ep = sock.remote_endpoint(ec2);
      const auto by = ec2 ? self->open_by_address.end() : self->open_by_address.find(peer_address(ep));
      if (ec2 || self->open >= kMaxConnections ||
          (by != self->open_by_address.end() && by->second >= kMaxConnectionsPerAddress)) {
        boost::system::error_code ignore;
        sock.close(ignore);  // NET-4: a connection flood costs one accept each
      } else {
        std::make_shared<Connection>(self, std::move(sock))->start();
      }
    }
    self->accept();
  });
}

Server::Server(asio::io_context& io, ssl::context& tls, const tcp::endpoint& where, Handler handler,
               Streamer streamer)
    : impl_(std::make_shared<Impl>(io, tls, where, std::move(handler), std::move(streamer))) {}
Server::~Server() { stop(); }
void Server::start() { impl_->accept(); }
void Server::stop() {
  impl_->stopped = true;
  boost::system::error_code ignore;
  impl_->acceptor.close(ignore);
}

}  // namespace cg::web
