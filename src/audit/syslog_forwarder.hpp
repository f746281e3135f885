// Syslog forwarding of the security audit log (optional, off by default).
//
// RFC 5424 messages over TLS (RFC 5425: octet-counted framing "<len> <msg>"),
// TLS 1.2+ with ECDHE + AES-GCM suites only (TLS 1.3: AES-GCM), the collector
// verified against a configured CA file and its host name, the station's
// client certificate presented. One message per audit record:
//
//   <PRI>1 TIMESTAMP HOSTNAME chargeguard - TYPE [cg@32473 seq="N" outcome="…"] {record JSON}
//
// TIMESTAMP is the record's own time, HOSTNAME the station identity, MSG the
// record's JSON body (which carries "prev", so a SIEM can recompute the chain).
//
// Delivery: submit() never blocks (bounded in-memory queue, formatting only);
// everything else runs on the given io_context (single thread). Records go out
// in sequence order. A cursor (last seq written to the TLS stream) is handed
// to save_cursor after every write so the caller can persist it; after a
// restart, a reconnect or a queue overflow the missing records are read back
// from the audit log file (audit::for_each_record) starting at cursor + 1.
// While the collector is down the forwarder reconnects with back-off (1 s
// doubling to 60 s). A full queue drops from memory only: the log file still
// holds the records and they are resent from the cursor.
//
// Limits: RFC 5425 has no application-level acknowledgement, so records
// written to the TLS stream just before the collector dies may be lost in
// flight (the cursor already moved past them).
// REQ: LOG-1, LOG-2 (delivery to the operator's SIEM), COM-2 (TLS)
#pragma once
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "audit/audit_log.hpp"
#include "audit/catalog.hpp"

namespace cg::audit {

struct SyslogSettings {
  std::string host;                  // collector host name or IP literal (verified against its certificate)
  std::uint16_t port = 6514;         // RFC 5425 port
  std::string ca_file;               // PEM: CA(s) trusted for the collector (never the system bundle)
  std::string cert_file;             // PEM: station client certificate (chain)
  std::string key_file;              // PEM: its private key
  std::string hostname;              // HOSTNAME field: the station identity
  std::string app_name = "chargeguard";
  int facility = 10;                 // 10 = authpriv
  std::filesystem::path audit_log_file;  // audit::log_file(<state>/audit), for resending
  std::size_t queue_limit = 10000;   // records held in memory at most
  std::chrono::milliseconds backoff_min{1000};
  std::chrono::milliseconds backoff_max{60000};
  std::chrono::milliseconds io_timeout{15000};  // connect+handshake, and each write
};

// Pure parts (unit-tested).
namespace syslog {
inline constexpr std::string_view kSdId = "cg@32473";
// critical events: 2 (crit) on failure, 4 (warning) on success;
// others: 5 (notice) on failure, 6 (info) on success.
int severity_for(Event e, Outcome o);
int severity_for(bool critical, Outcome o);
int pri(int facility, int severity);  // facility * 8 + severity
// RFC 5424 §6.3.3: '"', '\' and ']' are escaped with a backslash.
std::string sd_escape(std::string_view v);
// A header field: PRINTUSASCII only (others become '_'), cut to max_len, "-" when empty.
std::string header_field(std::string_view v, std::size_t max_len);
// The record's JSON body (the stored line without the tab-separated hash and MAC).
std::string_view json_body(std::string_view stored_line);
std::string format_message(const RecordView& r, int facility, std::string_view hostname,
                           std::string_view app_name = "chargeguard");
// RFC 5425 octet-counted framing: "<len> <msg>".
std::string frame(std::string_view msg);
}  // namespace syslog

class SyslogForwarder {
 public:
  // Throws std::runtime_error on bad settings (facility, host, unreadable CA,
  // certificate or key, key not matching the certificate). start_cursor is the
  // last seq already delivered (0: none); records after it are sent.
  SyslogForwarder(boost::asio::io_context& io, SyslogSettings settings, std::uint64_t start_cursor,
                  std::function<void(std::uint64_t)> save_cursor);
  ~SyslogForwarder();  // stop(); destroy on the io thread or after the io_context stopped
  SyslogForwarder(const SyslogForwarder&) = delete;
  SyslogForwarder& operator=(const SyslogForwarder&) = delete;

  void start();  // connect (asynchronously); also resends the records after the cursor
  void stop();   // close the connection; no more save_cursor calls after it returns on the io thread
  // Thread-safe, never blocks on I/O. Hook it to AuditLog::on_record.
  void submit(const RecordView& r);

  struct Status {
    bool connected = false;
    std::uint64_t cursor = 0;       // last seq written to the TLS stream
    std::uint64_t sent = 0;         // records written (including resends)
    std::uint64_t dropped = 0;      // submits dropped from memory (queue full)
    std::uint64_t from_file = 0;    // records read back from the log file
    std::uint64_t connects = 0;     // successful TLS handshakes
    std::string last_error;
  };
  Status status() const;  // thread-safe

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace cg::audit
