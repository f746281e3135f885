#include "ocpp/log_upload.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <fstream>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>

#include "audit/audit_log.hpp"
#include "core/log.hpp"
#include "security/tls_client.hpp"

namespace cg::ocpp {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {
// The same TLS settings as the CSMS connection (connection.cpp).
constexpr std::size_t kMaxUrl = 512;          // GetLogRequest.log.remoteLocation
constexpr std::size_t kMaxAnswerBody = 64 * 1024;
constexpr std::size_t kMaxAnswerHeader = 16 * 1024;
}  // namespace

std::optional<UploadUrl> parse_upload_url(std::string_view url, std::string* why) {
  auto bad = [&](std::string w) -> std::optional<UploadUrl> {
    if (why) *why = std::move(w);
    return std::nullopt;
  };
  if (url.size() > kMaxUrl) return bad("URL longer than 512 characters");
  auto u = boost::urls::parse_uri(url);
  if (!u) return bad("not a valid URL");
  std::string scheme(u->scheme());
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "https") return bad("only https:// upload locations are accepted (COM-9)");
  if (!u->has_authority() || u->host_address().empty()) return bad("URL without a host");
  if (u->has_userinfo()) return bad("credentials in the URL are not supported");
  UploadUrl r;
  r.host = std::string(u->host_address());
  if (u->has_port()) {
    const auto n = u->port_number();
    if (n == 0) return bad("invalid port");
    r.port = std::to_string(n);
  } else {
    r.port = "443";
  }
  r.target = std::string(u->encoded_path());
  if (r.target.empty()) r.target = "/";
  if (u->has_query()) r.target += "?" + std::string(u->encoded_query());
  return r;
}

LogExport build_log_export(const std::filesystem::path& log_file, std::optional<clock::SysTime> oldest,
                           std::optional<clock::SysTime> latest, std::size_t max_bytes) {
  LogExport ex;
  audit::for_each_record(log_file, 1, [&](const audit::RecordView& r) {
    if (oldest || latest) {
      auto t = clock::parse_rfc3339(r.time);
      if (!t) return true;
      if (oldest && *t < *oldest) return true;
      if (latest && *t > *latest) return true;
    }
    if (ex.body.size() + r.line.size() + 1 > max_bytes) {
      ex.truncated = true;
      return false;
    }
    ex.body += r.line;
    ex.body += '\n';
    if (!ex.records) ex.first_seq = r.seq;
    ex.last_seq = r.seq;
    ++ex.records;
    return true;
  });
  return ex;
}

LogExport build_text_export(const std::vector<std::filesystem::path>& files, std::optional<clock::SysTime> oldest,
                            std::optional<clock::SysTime> latest, std::size_t max_bytes) {
  LogExport ex;
  bool keep = true;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::string line;
    while (std::getline(in, line)) {
      if (line.size() >= 24) {
        if (auto t = clock::parse_rfc3339(std::string_view(line).substr(0, 24))) {
          keep = !(oldest && *t < *oldest) && !(latest && *t > *latest);
        }
      }
      if (!keep) continue;
      if (ex.body.size() + line.size() + 1 > max_bytes) {
        ex.truncated = true;
        return ex;
      }
      ex.body += line;
      ex.body += '\n';
      ++ex.records;
    }
  }
  return ex;
}

namespace {

class HttpsPutImpl final : public HttpsPut {
 public:
  HttpsPutImpl(asio::io_context& io, Settings s, std::shared_ptr<const std::string> body, Callback cb)
      : io_(io), s_(std::move(s)), body_(std::move(body)), cb_(std::move(cb)), ctx_(ssl::context::tls_client),
        resolver_(io) {}

  void run() {
    // Only the operator's CA file, never the system bundle (COM-2).
    if (auto err = security::configure_tls_client(ctx_.native_handle(), s_.ca_file); !err.empty())
      return finish(false, err);
    stream_.emplace(io_, ctx_);
    auto self = std::static_pointer_cast<HttpsPutImpl>(shared_from_this());
    resolver_.async_resolve(s_.url.host, s_.url.port, [self](beast::error_code ec, tcp::resolver::results_type r) {
      if (self->done_) return;
      if (ec) return self->finish(false, "resolve " + self->s_.url.host + ": " + ec.message());
      self->on_resolved(r);
    });
  }

  void cancel() override {
    if (done_) return;
    done_ = true;
    cb_ = nullptr;
    resolver_.cancel();
    if (stream_) {
      beast::error_code ec;
      beast::get_lowest_layer(*stream_).socket().close(ec);
    }
  }

 private:
  void on_resolved(const tcp::resolver::results_type& r) {
    auto self = std::static_pointer_cast<HttpsPutImpl>(shared_from_this());
    auto& low = beast::get_lowest_layer(*stream_);
    low.expires_after(s_.connect_timeout);
    low.async_connect(r, [self](beast::error_code ec, const tcp::endpoint&) {
      if (self->done_) return;
      if (ec) return self->finish(false, "connect: " + ec.message());
      self->handshake();
    });
  }

  void handshake() {
    // SNI for names only; the host name (or IP) checked against the certificate.
    security::set_tls_peer_name(stream_->native_handle(), s_.url.host);
    auto self = std::static_pointer_cast<HttpsPutImpl>(shared_from_this());
    beast::get_lowest_layer(*stream_).expires_after(s_.connect_timeout);
    stream_->async_handshake(ssl::stream_base::client, [self](beast::error_code ec) {
      if (self->done_) return;
      if (ec) {
        std::string msg = ec.message();
        const long vr = SSL_get_verify_result(self->stream_->native_handle());
        if (vr != X509_V_OK) msg += " (certificate: " + std::string(X509_verify_cert_error_string(vr)) + ")";
        return self->finish(false, "TLS handshake: " + msg);
      }
      self->send();
    });
  }

  void send() {
    req_.method(http::verb::put);
    req_.target(s_.url.target);
    req_.version(11);
    const bool ipv6 = s_.url.host.find(':') != std::string::npos;
    std::string host = ipv6 ? "[" + s_.url.host + "]" : s_.url.host;
    if (s_.url.port != "443") host += ":" + s_.url.port;
    req_.set(http::field::host, host);
    req_.set(http::field::user_agent, "chargeguard/" CG_VERSION);
    req_.set(http::field::content_type, s_.content_type);
    req_.set(http::field::connection, "close");
    req_.body() = *body_;
    req_.prepare_payload();
    auto self = std::static_pointer_cast<HttpsPutImpl>(shared_from_this());
    beast::get_lowest_layer(*stream_).expires_after(s_.transfer_timeout);
    http::async_write(*stream_, req_, [self](beast::error_code ec, std::size_t) {
      if (self->done_) return;
      if (ec) return self->finish(false, "sending: " + ec.message());
      self->receive();
    });
  }

  void receive() {
    parser_.body_limit(kMaxAnswerBody);
    parser_.header_limit(kMaxAnswerHeader);
    auto self = std::static_pointer_cast<HttpsPutImpl>(shared_from_this());
    http::async_read(*stream_, buf_, parser_, [self](beast::error_code ec, std::size_t) {
      if (self->done_) return;
      if (ec) return self->finish(false, "reading the answer: " + ec.message());
      const unsigned status = self->parser_.get().result_int();
      const bool ok = status >= 200 && status < 300;
      self->finish(ok, "HTTP " + std::to_string(status));
      // Polite close; errors do not matter any more.
      beast::get_lowest_layer(*self->stream_).expires_after(std::chrono::seconds(5));
      self->stream_->async_shutdown([self](beast::error_code) {
        beast::error_code ignored;
        beast::get_lowest_layer(*self->stream_).socket().close(ignored);
      });
    });
  }

  void finish(bool ok, std::string detail) {
    if (done_) return;
    done_ = true;
    if (!ok && stream_) {
      beast::error_code ec;
      beast::get_lowest_layer(*stream_).socket().close(ec);
    }
    if (auto cb = std::move(cb_)) asio::post(io_, [cb = std::move(cb), ok, detail = std::move(detail)] { cb(ok, detail); });
  }

  asio::io_context& io_;
  Settings s_;
  std::shared_ptr<const std::string> body_;
  Callback cb_;
  ssl::context ctx_;
  tcp::resolver resolver_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream_;
  http::request<http::string_body> req_;
  http::response_parser<http::string_body> parser_;
  beast::flat_buffer buf_;
  bool done_ = false;
};

}  // namespace

std::shared_ptr<HttpsPut> HttpsPut::start(asio::io_context& io, Settings s, std::shared_ptr<const std::string> body,
                                          Callback cb) {
  auto p = std::make_shared<HttpsPutImpl>(io, std::move(s), std::move(body), std::move(cb));
  p->run();
  return p;
}

}  // namespace cg::ocpp
