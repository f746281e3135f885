// The OCPP WebSocket transport: Boost.Beast over Asio, TLS by OpenSSL.
// Profile 2: wss://, TLS 1.2/1.3 only, strong AEAD suites, the CSMS certificate
// verified against the configured CA file only (no system bundle) and the host
// name, HTTP Basic auth. Profile 3: the same TLS plus the station's client
// certificate, its key used in place from the key store; no password is sent.
// Profile 1 (ws://) only when the configuration allows it.
// Inbound messages above max_frame bytes are discarded unparsed.
// REQ: COM-1, COM-2, COM-3 (in part), COM-4, NET-3
#pragma once
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "security/station_identity.hpp"

namespace cg::ocpp {

struct ConnectionSettings {
  std::string url;  // CSMS endpoint without identity
  std::string identity;
  std::string password;  // Basic auth (profiles 1/2); wiped by the caller's owner when done
  // Profile 3: the station certificate chain and key (required there, unused otherwise).
  std::shared_ptr<const security::TlsClientIdentity> client_identity;
  int security_profile = 2;
  std::string ca_file;
  // Every certificate of ca_file is a trust anchor by itself (a confirmed
  // cross-signed successor root whose signer was deleted, M05).
  bool partial_chain = false;
  std::size_t max_frame = 65536;
  std::chrono::seconds ping_interval{30};
  std::chrono::seconds connect_timeout{15};
};

// Why a TLS handshake failed, for the security events of COM-2/COM-3.
enum class TlsFailure { None, Certificate, Version, CipherSuite, Other };

class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;
  virtual void on_open() = 0;
  virtual void on_message(std::string&& text) = 0;
  // A message bigger than max_frame was received and discarded. `id_hint` is the
  // message id when it could be read from the frame's first bytes, else "-1".
  virtual void on_oversize(std::size_t bytes, std::string id_hint) = 0;
  // The connection attempt failed or the connection closed. http_status is the
  // CSMS's HTTP answer to the upgrade when it declined (e.g. 401), else 0.
  virtual void on_closed(const std::string& reason, int http_status, TlsFailure tls) = 0;
};

class Connection {
 public:
  Connection(boost::asio::io_context& io, ConnectionHandler& handler);
  ~Connection();
  // Starts one connection attempt; the outcome arrives as on_open or on_closed.
  void connect(const ConnectionSettings& s);
  // Queues a frame. `done` (optional) runs once the frame was written to the
  // socket (true), or when it never will be (false: not connected, or the
  // connection failed first) — never from inside send().
  using Written = std::function<void(bool written)>;
  void send(std::string text, Written done = {});
  void close();
  bool is_open() const;
  // The CSMS certificate chain OpenSSL verified for the open TLS connection,
  // leaf first, trust anchor last; empty for ws:// or before on_open.
  const security::CertChain& verified_chain() const;

  class Impl;

 private:
  boost::asio::io_context& io_;
  ConnectionHandler& handler_;
  std::shared_ptr<Impl> impl_;
};

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string percent_encode(std::string_view s);

}  // namespace cg::ocpp
