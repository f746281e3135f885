// REQ: FW-2, FW-7, COM-9 — see https_get.hpp.
#include "ocpp/https_get.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>
#include <vector>

#include "security/tls_client.hpp"

namespace cg::ocpp {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {
constexpr std::size_t kMaxHeader = 16 * 1024;
// Two receive buffers of 1 MiB: fewer hand-overs to the hash and write threads
// than 256 KiB (the download benchmark: 1.04-1.08x curl instead of 1.14-1.30x
// on 2 cores); the memory stays constant.
constexpr std::size_t kChunk = 1024 * 1024;

class HttpsGetImpl final : public HttpsGet {
 public:
  HttpsGetImpl(asio::io_context& io, Settings s, Chunk chunk, Done done)
      : io_(io), s_(std::move(s)), chunk_(std::move(chunk)), done_cb_(std::move(done)),
        ctx_(ssl::context::tls_client), resolver_(io) {
    for (auto& b : bufs_) b.resize(kChunk);
  }

  void run() {
    if (auto r = security::configure_tls_client(ctx_.native_handle(), s_.ca_file, s_.partial_chain); !r)
      return finish(false, r.error().message);
    auto self = me();
    resolver_.async_resolve(s_.url.host, s_.url.port, [self](beast::error_code ec, tcp::resolver::results_type r) {
      if (self->done_) return;
      if (ec) return self->finish(false, "resolve " + self->s_.url.host + ": " + ec.message());
      self->connect(r);
    });
  }

  void cancel() override {
    if (done_) return;
    done_ = true;
    done_cb_ = nullptr;
    chunk_ = nullptr;
    resolver_.cancel();
    close();
  }

 private:
  std::shared_ptr<HttpsGetImpl> me() { return std::static_pointer_cast<HttpsGetImpl>(shared_from_this()); }

  void close() {
    if (stream_) {
      beast::error_code ec;
      beast::get_lowest_layer(*stream_).socket().close(ec);
    }
  }

  void connect(const tcp::resolver::results_type& endpoints) {
    stream_.emplace(io_, ctx_);
    auto self = me();
    auto& low = beast::get_lowest_layer(*stream_);
    low.expires_after(s_.connect_timeout);
    low.async_connect(endpoints, [self](beast::error_code ec, const tcp::endpoint&) {
      if (self->done_) return;
      if (ec) return self->finish(false, "connect: " + ec.message());
      self->handshake();
    });
  }

  void handshake() {
    security::set_tls_peer_name(stream_->native_handle(), s_.url.host);
    auto self = me();
    beast::get_lowest_layer(*stream_).expires_after(s_.connect_timeout);
    stream_->async_handshake(ssl::stream_base::client, [self](beast::error_code ec) {
      if (self->done_) return;
      if (ec) {
        const std::string msg = security::tls_error_text(self->stream_->native_handle(), ec.message());
        return self->finish(false, "TLS handshake: " + msg);
      }
      self->send();
    });
  }

  void send() {
    req_.method(http::verb::get);
    req_.target(s_.url.target);
    req_.version(11);
    req_.set(http::field::host, http_host(s_.url));
    req_.set(http::field::user_agent, "chargeguard/" CG_VERSION);
    req_.set(http::field::connection, "close");
    auto self = me();
    beast::get_lowest_layer(*stream_).expires_after(s_.idle_timeout);
    http::async_write(*stream_, req_, [self](beast::error_code ec, std::size_t) {
      if (self->done_) return;
      if (ec) return self->finish(false, "sending the request: " + ec.message());
      self->read_header();
    });
  }

  void read_header() {
    buf_.reserve(64 * 1024);  // Beast reads at most what the buffer has room for
    parser_.emplace();
    parser_->header_limit(kMaxHeader);
    parser_->body_limit(s_.max_body);
    auto self = me();
    beast::get_lowest_layer(*stream_).expires_after(s_.idle_timeout);
    http::async_read_header(*stream_, buf_, *parser_, [self](beast::error_code ec, std::size_t) {
      if (self->done_) return;
      if (ec == http::error::body_limit) {
        // Beast refuses a Content-Length above the limit while it parses the header.
        return self->finish(false, "the image is larger than the " + std::to_string(self->s_.max_body) +
                                       " bytes allowed (firmware.max_image_mib)");
      }
      if (ec) return self->finish(false, "reading the answer: " + ec.message());
      const unsigned status = self->parser_->get().result_int();
      if (status != 200) return self->finish(false, "HTTP " + std::to_string(status));
      self->read_body();
    });
  }

  // The body fills one kChunk buffer across several reads (a TLS record is at
  // most 16 KiB) before it goes to the caller: one verifier/write step per
  // kChunk, not per record.
  void read_body() {
    auto& b = bufs_[turn_];
    parser_->get().body().data = b.data() + filled_;
    parser_->get().body().size = b.size() - filled_;
    auto self = me();
    beast::get_lowest_layer(*stream_).expires_after(s_.idle_timeout);
    http::async_read_some(*stream_, buf_, *parser_, [self](beast::error_code ec, std::size_t) {
      if (self->done_) return;
      auto& cur = self->bufs_[self->turn_];
      const std::size_t room = cur.size() - self->filled_;
      self->filled_ += room - self->parser_->get().body().size;
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        if (ec == http::error::body_limit) {
          return self->finish(false, "the image is larger than the " + std::to_string(self->s_.max_body) +
                                         " bytes allowed (firmware.max_image_mib)");
        }
        return self->finish(false, (ec == http::error::partial_message || ec == asio::error::eof ||
                                            ec == ssl::error::stream_truncated
                                        ? "truncated after "
                                        : "reading the image after ") +
                                       std::to_string(self->received_ + self->filled_) + " bytes: " + ec.message());
      }
      const bool done = self->parser_->is_done();
      if (self->filled_ == cur.size() || (done && self->filled_ > 0)) {
        self->received_ += self->filled_;
        const std::size_t n = self->filled_;
        self->filled_ = 0;
        if (auto r = self->chunk_(std::span<const std::uint8_t>(cur.data(), n)); !r) {
          return self->finish(false, r.error().message);
        }
        self->turn_ ^= 1;
      }
      if (done) return self->finish(true, "HTTP 200, " + std::to_string(self->received_) + " bytes");
      self->read_body();
    });
  }

  void finish(bool ok, std::string detail) {
    if (done_) return;
    done_ = true;
    close();
    if (auto cb = std::move(done_cb_)) cb(ok, detail);
  }

  asio::io_context& io_;
  Settings s_;
  Chunk chunk_;
  Done done_cb_;
  ssl::context ctx_;
  tcp::resolver resolver_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream_;
  http::request<http::empty_body> req_;
  std::optional<http::response_parser<http::buffer_body>> parser_;
  beast::flat_buffer buf_;
  std::array<std::vector<std::uint8_t>, 2> bufs_;
  std::size_t turn_ = 0;
  std::size_t filled_ = 0;  // bytes of bufs_[turn_] not yet given to the caller
  std::uint64_t received_ = 0;
  bool done_ = false;
};

}  // namespace

std::shared_ptr<HttpsGet> HttpsGet::start(asio::io_context& io, Settings s, Chunk chunk, Done done) {
  auto p = std::make_shared<HttpsGetImpl>(io, std::move(s), std::move(chunk), std::move(done));
  p->run();
  return p;
}

}  // namespace cg::ocpp
