#include "ocpp/log_upload.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

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
constexpr std::size_t kMaxAnswerBody = 64 * 1024;
constexpr std::size_t kMaxAnswerHeader = 16 * 1024;
}  // namespace

namespace {

class HttpsPutImpl final : public HttpsPut {
 public:
  HttpsPutImpl(asio::io_context& io, Settings s, std::shared_ptr<const std::string> body, Callback cb)
      : io_(io), s_(std::move(s)), body_(std::move(body)), cb_(std::move(cb)), ctx_(ssl::context::tls_client),
        resolver_(io) {}

  void run() {
    // Only the operator's CA file, never the system bundle (COM-2).
    if (auto r = security::configure_tls_client(ctx_.native_handle(), s_.ca_file, s_.partial_chain); !r)
      return finish(false, r.error().message);
    auto self = std::static_pointer_cast<HttpsPutImpl>(shared_from_this());
    resolver_.async_resolve(s_.url.host, s_.url.port, [self](beast::error_code ec, tcp::resolver::results_type r) {
      if (self->done_) return;
      if (ec) return self->finish(false, "resolve " + self->s_.url.host + ": " + ec.message());
      self->endpoints_ = std::move(r);
      self->connect();
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
  // " (POST multipart)" once the PUT was refused: errors and statuses say which request they concern.
  const char* method() const { return post_ ? " (POST multipart)" : " (PUT)"; }

  // A fresh connection (and TLS session) for each request.
  void connect() {
    stream_.emplace(io_, ctx_);
    auto self = std::static_pointer_cast<HttpsPutImpl>(shared_from_this());
    auto& low = beast::get_lowest_layer(*stream_);
    low.expires_after(s_.connect_timeout);
    low.async_connect(endpoints_, [self](beast::error_code ec, const tcp::endpoint&) {
      if (self->done_) return;
      if (ec) return self->finish(false, "connect: " + ec.message() + self->method());
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
        const std::string msg = security::tls_error_text(self->stream_->native_handle(), ec.message());
        return self->finish(false, "TLS handshake: " + msg + self->method());
      }
      self->send();
    });
  }

  void send() {
    req_ = {};
    req_.method(post_ ? http::verb::post : http::verb::put);
    req_.target(s_.url.target);
    req_.version(11);
    req_.set(http::field::host, http_host(s_.url));
    req_.set(http::field::user_agent, "chargeguard/" CG_VERSION);
    req_.set(http::field::connection, "close");
    if (post_) {
      req_.set(http::field::content_type, form_->content_type);
      req_.body() = std::move(form_->body);
      form_.reset();
    } else {
      req_.set(http::field::content_type, s_.content_type);
      req_.body() = *body_;
    }
    req_.prepare_payload();
    auto self = std::static_pointer_cast<HttpsPutImpl>(shared_from_this());
    beast::get_lowest_layer(*stream_).expires_after(s_.transfer_timeout);
    http::async_write(*stream_, req_, [self](beast::error_code ec, std::size_t) {
      if (self->done_) return;
      if (ec) return self->finish(false, "sending: " + ec.message() + self->method());
      self->receive();
    });
  }

  void receive() {
    req_ = {};  // the body is sent: free it
    parser_.emplace();
    parser_->body_limit(kMaxAnswerBody);
    parser_->header_limit(kMaxAnswerHeader);
    buf_.clear();
    auto self = std::static_pointer_cast<HttpsPutImpl>(shared_from_this());
    http::async_read(*stream_, buf_, *parser_, [self](beast::error_code ec, std::size_t) {
      if (self->done_) return;
      if (ec) return self->finish(false, "reading the answer: " + ec.message() + self->method());
      const unsigned status = self->parser_->get().result_int();
      self->parser_.reset();
      if (!self->post_ && (status == 405 || status == 501)) return self->retry_with_post(status);
      const bool ok = status >= 200 && status < 300;
      self->finish(ok, "HTTP " + std::to_string(status) + self->method());
      // Polite close; errors do not matter any more.
      beast::get_lowest_layer(*self->stream_).expires_after(std::chrono::seconds(5));
      self->stream_->async_shutdown([self](beast::error_code) {
        beast::error_code ignored;
        beast::get_lowest_layer(*self->stream_).socket().close(ignored);
      });
    });
  }

  // The server does not take PUT: the same upload at once as POST multipart/form-data.
  void retry_with_post(unsigned put_status) {
    form_ = make_multipart_form(s_.filename.empty() ? "log" : s_.filename, s_.content_type, *body_);
    if (!form_) return finish(false, "HTTP " + std::to_string(put_status) + " (PUT); no multipart boundary (CSPRNG)");
    post_ = true;
    log::info("ocpp", "upload to ", s_.url.host, ": HTTP ", put_status, " to PUT, trying POST multipart");
    // This connection ends here (Connection: close); the POST gets a new one.
    beast::error_code ignored;
    beast::get_lowest_layer(*stream_).socket().close(ignored);
    auto self = std::static_pointer_cast<HttpsPutImpl>(shared_from_this());
    asio::post(io_, [self] {
      if (!self->done_) self->connect();
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
  tcp::resolver::results_type endpoints_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream_;
  http::request<http::string_body> req_;
  std::optional<http::response_parser<http::string_body>> parser_;
  beast::flat_buffer buf_;
  std::optional<MultipartForm> form_;  // the POST body, from the 405/501 answer until it is sent
  bool post_ = false;                  // the PUT was refused: this is the POST
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
