// An in-memory TLS connection for unit tests: a server and a client SSL over a
// BIO pair, both driven in the calling thread (no sockets, no threads).
#pragma once
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "security/tls_client.hpp"

namespace cg::test {

// OpenSSL's error queue as one line (and emptied).
inline std::string ssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) out += std::string(ERR_error_string(e, nullptr)) + "; ";
  return out;
}

struct TlsPair {
  std::unique_ptr<SSL, decltype(&SSL_free)> server{nullptr, SSL_free}, client{nullptr, SSL_free};
  std::string error;  // "" when both sides finished the handshake
};

// Both handshakes; the client checks the server's name against `host`.
inline TlsPair tls_handshake(SSL_CTX* server_ctx, SSL_CTX* client_ctx, const std::string& host = "localhost") {
  TlsPair p;
  ERR_clear_error();
  p.server.reset(SSL_new(server_ctx));
  p.client.reset(SSL_new(client_ctx));
  BIO *bs = nullptr, *bc = nullptr;
  BIO_new_bio_pair(&bs, 0, &bc, 0);
  SSL_set_bio(p.server.get(), bs, bs);
  SSL_set_bio(p.client.get(), bc, bc);
  SSL_set_accept_state(p.server.get());
  SSL_set_connect_state(p.client.get());
  security::set_tls_peer_name(p.client.get(), host);
  bool cdone = false, sdone = false;
  for (int i = 0; i < 50 && !(cdone && sdone); ++i) {
    for (auto [ssl, done] : {std::pair{p.client.get(), &cdone}, std::pair{p.server.get(), &sdone}}) {
      if (*done) continue;
      const int rc = SSL_do_handshake(ssl);
      if (rc == 1) {
        *done = true;
      } else if (const int e = SSL_get_error(ssl, rc); e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        p.error = std::string(ssl == p.client.get() ? "client" : "server") + " handshake failed: " + ssl_errors();
        return p;
      }
    }
  }
  if (!cdone || !sdone) p.error = "handshake did not finish";
  return p;
}

// Application data after the handshake: "ping" client -> server and, with
// `reply`, "pong" back. "" or the error.
inline std::string tls_exchange(TlsPair& p, bool reply) {
  char buf[8] = {};
  if (SSL_write(p.client.get(), "ping", 4) != 4 || SSL_read(p.server.get(), buf, sizeof buf) != 4)
    return "application data failed: " + ssl_errors();
  if (reply && (SSL_write(p.server.get(), "pong", 4) != 4 || SSL_read(p.client.get(), buf, sizeof buf) != 4))
    return "application data failed: " + ssl_errors();
  return {};
}

}  // namespace cg::test
