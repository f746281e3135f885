#include "ocpp/connection.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/url/parse.hpp>
#include <deque>
#include <variant>

#include "core/log.hpp"
#include "security/tls_client.hpp"
#include "ocpp/frame.hpp"
#include "security/base64.hpp"

namespace cg::ocpp {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {
constexpr std::size_t kHardFrameCap = 16 * 1024 * 1024;  // beyond this the connection is dropped
constexpr std::size_t kMaxQueuedBytes = 4 * 1024 * 1024;  // outgoing frames not yet written

}  // namespace

std::string percent_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

class Connection::Impl : public std::enable_shared_from_this<Connection::Impl> {
 public:
  using TlsWs = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;
  using PlainWs = websocket::stream<beast::tcp_stream>;

  Impl(asio::io_context& io, ConnectionHandler& h, ConnectionSettings s)
      : io_(io), handler_(h), s_(std::move(s)), resolver_(io) {}
  ~Impl() { wipe_password(); }

  // The Basic-auth password lives here only until the Authorization header is
  // built (and that header until the upgrade is answered).
  void wipe_password() {
    OPENSSL_cleanse(s_.password.data(), s_.password.size());
    s_.password.clear();
    if (auth_) OPENSSL_cleanse(auth_->data(), auth_->size());
  }

  void start() {
    auto u = boost::urls::parse_uri(s_.url);
    if (!u) return fail("invalid CSMS URL", 0);
    const std::string scheme(u->scheme());
    tls_ = scheme == "wss";
    if (!tls_ && scheme != "ws") return fail("CSMS URL scheme must be ws or wss", 0);
    if (tls_ != (s_.security_profile >= 2)) return fail("URL scheme does not match the security profile", 0);
    host_ = std::string(u->host_address());
    port_ = u->has_port() ? std::string(u->port()) : (tls_ ? "443" : "80");
    std::string path(u->encoded_path());
    if (path.empty() || path.back() != '/') path += '/';
    target_ = path + percent_encode(s_.identity);
    if (tls_) {
      ctx_ = std::make_unique<ssl::context>(ssl::context::tls_client);
      if (!configure_tls()) return;
      ws_ = std::make_unique<std::variant<std::monostate, TlsWs, PlainWs>>();
      ws_->emplace<TlsWs>(io_, *ctx_);
    } else {
      ws_ = std::make_unique<std::variant<std::monostate, TlsWs, PlainWs>>();
      ws_->emplace<PlainWs>(io_);
    }
    auto self = shared_from_this();
    resolver_.async_resolve(host_, port_, [self](beast::error_code ec, tcp::resolver::results_type r) {
      if (ec) return self->fail("resolve " + self->host_ + ": " + ec.message(), 0);
      self->on_resolved(r);
    });
  }

  bool configure_tls() {
    // Trust only the operator's CA file: never the system bundle (COM-2).
    // Partial chains only when the bundle needs it: a cross-signed successor
    // root (AdditionalRootCertificateCheck, M05) whose signer is gone.
    if (auto r = security::configure_tls_client(ctx_->native_handle(), s_.ca_file, s_.partial_chain); !r) {
      fail(r.error().message, 0);
      return false;
    }
    if (s_.security_profile == 3) {
      if (!s_.client_identity) {
        fail("security profile 3 needs the station certificate", 0);
        return false;
      }
      if (auto r = security::use_client_identity(ctx_->native_handle(), *s_.client_identity); !r) {
        fail(r.error().message, 0);
        return false;
      }
    }
    return true;
  }

  template <typename F>
  void with_ws(F&& f) {
    if (!ws_) return;
    if (auto* t = std::get_if<TlsWs>(ws_.get())) f(*t);
    else if (auto* p = std::get_if<PlainWs>(ws_.get())) f(*p);
  }

  void on_resolved(const tcp::resolver::results_type& r) {
    auto self = shared_from_this();
    with_ws([&](auto& ws) {
      auto& tcp_stream = beast::get_lowest_layer(ws);
      tcp_stream.expires_after(s_.connect_timeout);
      tcp_stream.async_connect(r, [self](beast::error_code ec, const tcp::endpoint&) {
        if (ec) return self->fail("connect: " + ec.message(), 0);
        // OCPP is request/response: small frames must not wait for Nagle.
        self->with_ws([](auto& stream) {
          beast::error_code nec;
          beast::get_lowest_layer(stream).socket().set_option(tcp::no_delay(true), nec);
        });
        self->on_connected();
      });
    });
  }

  void on_connected() {
    auto self = shared_from_this();
    if (auto* t = std::get_if<TlsWs>(ws_.get())) {
      // SNI and host name verification (COM-2).
      security::set_tls_peer_name(t->next_layer().native_handle(), host_);
      t->next_layer().async_handshake(ssl::stream_base::client, [self](beast::error_code ec) {
        if (ec) return self->fail("TLS handshake: " + self->tls_error(ec), 0, self->classify(ec));
        self->ws_handshake();
      });
    } else {
      ws_handshake();
    }
  }

  TlsFailure classify(const beast::error_code& ec) {
    if (auto* t = std::get_if<TlsWs>(ws_.get())) {
      if (SSL_get_verify_result(t->next_layer().native_handle()) != X509_V_OK) return TlsFailure::Certificate;
    }
    if (ec.category() == asio::error::get_ssl_category()) {
      switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
        case SSL_R_UNSUPPORTED_PROTOCOL:
        case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
        case SSL_R_WRONG_SSL_VERSION:
        case SSL_R_NO_PROTOCOLS_AVAILABLE:
          return TlsFailure::Version;
        case SSL_R_NO_SHARED_CIPHER:
        case SSL_R_NO_CIPHERS_AVAILABLE:
        case SSL_R_WRONG_CIPHER_RETURNED:
          return TlsFailure::CipherSuite;
        case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE: {
          // The generic alert: a cipher-suite problem only when no suite was
          // agreed (no ServerHello); after it, e.g. a demanded client
          // certificate, it is something else.
          auto* t = std::get_if<TlsWs>(ws_.get());
          if (t && SSL_get_current_cipher(t->next_layer().native_handle()) == nullptr) return TlsFailure::CipherSuite;
          return TlsFailure::Other;
        }
        case SSL_R_CERTIFICATE_VERIFY_FAILED:
          return TlsFailure::Certificate;
        default:
          break;
      }
    }
    return TlsFailure::Other;
  }

  std::string tls_error(const beast::error_code& ec) {
    if (auto* t = std::get_if<TlsWs>(ws_.get())) return security::tls_error_text(t->next_layer().native_handle(), ec.message());
    return ec.message();
  }

  void ws_handshake() {
    auto self = shared_from_this();
    with_ws([&](auto& ws) {
      beast::get_lowest_layer(ws).expires_never();
      websocket::stream_base::timeout to{};
      to.handshake_timeout = s_.connect_timeout;
      if (s_.ping_interval.count() > 0) {
        to.idle_timeout = s_.ping_interval * 2;  // a ping after half of it
        to.keep_alive_pings = true;
      } else {
        to.idle_timeout = websocket::stream_base::none();
        to.keep_alive_pings = false;
      }
      ws.set_option(to);
      ws.read_message_max(kHardFrameCap);
      ws.auto_fragment(false);
      if (s_.security_profile == 3) {
        auth_ = std::make_shared<std::string>();  // the client certificate authenticates
      } else {
        std::string creds = s_.identity + ":" + s_.password;
        auth_ = std::make_shared<std::string>("Basic " + security::base64_encode(creds));
        OPENSSL_cleanse(creds.data(), creds.size());
        OPENSSL_cleanse(s_.password.data(), s_.password.size());
        s_.password.clear();
      }
      ws.set_option(websocket::stream_base::decorator([auth = auth_](websocket::request_type& req) {
        req.set(beast::http::field::sec_websocket_protocol, "ocpp2.0.1");
        if (!auth->empty()) req.set(beast::http::field::authorization, *auth);
        req.set(beast::http::field::user_agent, "chargeguard");
      }));
      const std::string host_hdr = host_ + ":" + port_;
      ws.async_handshake(res_, host_hdr, target_, [self](beast::error_code ec) {
        self->wipe_password();
        if (ec) {
          const int status =
              ec == websocket::error::upgrade_declined ? static_cast<int>(self->res_.result_int()) : 0;
          return self->fail("WebSocket upgrade: " + ec.message() + (status ? " (HTTP " + std::to_string(status) + ")" : ""),
                            status);
        }
        if (self->res_[beast::http::field::sec_websocket_protocol] != "ocpp2.0.1")
          return self->fail("CSMS did not accept subprotocol ocpp2.0.1", 0);
        if (self->detached_) return self->fail("detached", 0);
        self->open_ = true;
        if (auto* t = std::get_if<TlsWs>(self->ws_.get())) {
          // The chain OpenSSL verified, anchor included (for M05 confirm_csms_root).
          if (STACK_OF(X509)* vc = SSL_get0_verified_chain(t->next_layer().native_handle()))
            for (int i = 0; i < sk_X509_num(vc); ++i) self->verified_.push_back(security::share(sk_X509_value(vc, i)));
        }
        self->handler_.on_open();
        self->read();
      });
    });
  }

  void read() {
    auto self = shared_from_this();
    with_ws([&](auto& ws) {
      ws.async_read_some(buf_, 16384, [self](beast::error_code ec, std::size_t) {
        if (ec) return self->fail(ec == websocket::error::closed ? "closed by CSMS" : "read: " + ec.message(), 0);
        self->on_read_some();
      });
    });
  }

  void on_read_some() {
    bool done = false;
    with_ws([&](auto& ws) { done = ws.is_message_done(); });
    if (discarding_) {
      discarded_ += buf_.size();
      buf_.consume(buf_.size());
    } else if (buf_.size() > s_.max_frame) {
      const auto head = beast::buffers_to_string(buf_.data());
      hint_ = message_id_hint(head);
      discarding_ = true;
      discarded_ = buf_.size();
      buf_.consume(buf_.size());
    }
    if (done && !detached_) {
      // A failing handler must not end the read loop (the station would go
      // deaf while looking online); it is logged and reading goes on.
      try {
        if (discarding_) {
          discarding_ = false;
          handler_.on_oversize(discarded_, hint_);
        } else {
          std::string msg = beast::buffers_to_string(buf_.data());
          buf_.consume(buf_.size());
          handler_.on_message(std::move(msg));
        }
      } catch (const std::exception& ex) {
        buf_.consume(buf_.size());
        log::error("ocpp", "handling a CSMS message failed: ", ex.what());
      }
    }
    if (open_) read();
  }

  void send(std::string text, Connection::Written done) {
    if (!open_) return dropped(std::move(done));
    // NET-3: a CSMS that floods requests without reading our answers cannot
    // make us buffer without bound; past the cap the connection is dropped
    // (and re-established), charging goes on.
    if (outq_bytes_ + text.size() > kMaxQueuedBytes) {
      dropped(std::move(done));
      return fail("the CSMS does not read: more than " + std::to_string(kMaxQueuedBytes / (1024 * 1024)) +
                  " MiB of answers queued", 0);
    }
    outq_bytes_ += text.size();
    outq_.push_back(Out{std::move(text), std::move(done)});
    if (outq_.size() == 1) write();
  }

  void write() {
    auto self = shared_from_this();
    with_ws([&](auto& ws) {
      ws.text(true);
      ws.async_write(asio::buffer(outq_.front().text), [self](beast::error_code ec, std::size_t) {
        if (ec) return self->fail("write: " + ec.message(), 0);
        Out o = std::move(self->outq_.front());
        self->outq_bytes_ -= o.text.size();
        self->outq_.pop_front();
        if (o.done) o.done(true);
        if (!self->outq_.empty() && self->open_) self->write();
      });
    });
  }

  // A frame that will not be written: its owner hears it (after this call returns).
  void dropped(Connection::Written done) {
    if (done) asio::post(io_, [done = std::move(done)] { done(false); });
  }

  void close() {
    if (closed_) return;
    if (!open_) {
      closed_ = true;
      resolver_.cancel();
      with_ws([](auto& ws) {
        beast::error_code ec;
        beast::get_lowest_layer(ws).socket().close(ec);
      });
      return;
    }
    open_ = false;
    auto self = shared_from_this();
    with_ws([&](auto& ws) {
      ws.async_close(websocket::close_code::normal, [self](beast::error_code) { self->fail("closed by station", 0); });
    });
  }

  void fail(const std::string& why, int status, TlsFailure tls = TlsFailure::None) {
    open_ = false;
    // Frames still queued will not be written: tell their owners.
    for (auto& o : outq_) dropped(std::move(o.done));
    outq_.clear();
    outq_bytes_ = 0;
    if (closed_reported_ || detached_) {
      closed_ = true;
      with_ws([](auto& ws) {
        beast::error_code ec;
        beast::get_lowest_layer(ws).socket().close(ec);
      });
      return;
    }
    closed_reported_ = true;
    closed_ = true;
    with_ws([](auto& ws) {
      beast::error_code ec;
      beast::get_lowest_layer(ws).socket().close(ec);
    });
    handler_.on_closed(why, status, tls);
  }

  bool open_ = false;
  bool detached_ = false;  // replaced or destroyed: report nothing more

  security::CertChain verified_;  // the CSMS chain as verified (TLS only)

 private:
  asio::io_context& io_;
  ConnectionHandler& handler_;
  ConnectionSettings s_;
  tcp::resolver resolver_;
  std::unique_ptr<ssl::context> ctx_;
  std::unique_ptr<std::variant<std::monostate, TlsWs, PlainWs>> ws_;
  websocket::response_type res_;
  beast::flat_buffer buf_;
  struct Out {
    std::string text;
    Connection::Written done;
  };
  std::deque<Out> outq_;
  std::size_t outq_bytes_ = 0;
  bool tls_ = false;
  bool discarding_ = false;
  bool closed_ = false;
  bool closed_reported_ = false;
  std::size_t discarded_ = 0;
  std::string hint_;
  std::string host_, port_, target_;
  std::shared_ptr<std::string> auth_;  // "Basic …" header value, wiped after the upgrade
};

Connection::Connection(asio::io_context& io, ConnectionHandler& handler) : io_(io), handler_(handler) {}
Connection::~Connection() {
  if (impl_) {
    impl_->detached_ = true;
    impl_->close();
  }
}

void Connection::connect(const ConnectionSettings& s) {
  if (impl_) {
    impl_->detached_ = true;
    impl_->close();
  }
  impl_ = std::make_shared<Impl>(io_, handler_, s);
  impl_->start();
}

void Connection::send(std::string text, Written done) {
  if (impl_) return impl_->send(std::move(text), std::move(done));
  if (done) boost::asio::post(io_, [done = std::move(done)] { done(false); });
}

void Connection::close() {
  if (impl_) impl_->close();
}

bool Connection::is_open() const { return impl_ && impl_->open_; }

const security::CertChain& Connection::verified_chain() const {
  static const security::CertChain none;
  return impl_ ? impl_->verified_ : none;
}

}  // namespace cg::ocpp
