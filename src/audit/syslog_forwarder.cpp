#include "audit/syslog_forwarder.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <map>
#include <mutex>
#include <stdexcept>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "security/ossl.hpp"
#include "security/tls_client.hpp"

namespace cg::audit {
namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {
// The same strong suites as the OCPP connection (src/ocpp/connection.cpp).
constexpr std::size_t kMaxWriteBytes = 64 * 1024;  // one write batch
constexpr std::size_t kFileBatch = 512;              // records read back from the file at a time

std::string ssl_error_string() { return security::drain_openssl_errors("unknown OpenSSL error"); }
}  // namespace

// ---- pure parts -------------------------------------------------------------

namespace syslog {

int severity_for(bool critical, Outcome o) {
  if (critical) return o == Outcome::Failure ? 2 : 4;
  return o == Outcome::Failure ? 5 : 6;
}

int severity_for(Event e, Outcome o) { return severity_for(info(e).critical, o); }

int pri(int facility, int severity) { return facility * 8 + severity; }

std::string sd_escape(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '"' || c == '\\' || c == ']') out += '\\';
    out += c;
  }
  return out;
}

std::string header_field(std::string_view v, std::size_t max_len) {
  std::string out;
  for (unsigned char c : v) {
    if (out.size() >= max_len) break;
    out += (c >= 33 && c <= 126) ? static_cast<char>(c) : '_';
  }
  return out.empty() ? std::string("-") : out;
}

std::string_view json_body(std::string_view line) {
  const auto t = line.find('\t');
  return t == std::string_view::npos ? line : line.substr(0, t);
}

std::string format_message(const RecordView& r, int facility, std::string_view hostname, std::string_view app_name) {
  // The record's own time; RFC 3339 with milliseconds and 'Z' is a valid
  // RFC 5424 TIMESTAMP. Anything unparsable becomes the NILVALUE.
  const std::string ts = clock::parse_rfc3339(r.time) ? header_field(r.time, 64) : std::string("-");
  std::string m;
  m.reserve(r.line.size() + 160);
  m += '<';
  m += std::to_string(pri(facility, severity_for(r.type, r.outcome)));
  m += ">1 ";
  m += ts;
  m += ' ';
  m += header_field(hostname, 255);
  m += ' ';
  m += header_field(app_name, 48);
  m += " - ";
  m += header_field(info(r.type).name, 32);  // MSGID is at most 32 characters (full name is in the JSON)
  m += " [";
  m += kSdId;
  m += " seq=\"";
  m += std::to_string(r.seq);
  m += "\" outcome=\"";
  m += sd_escape(to_string(r.outcome));
  m += "\"] ";
  m += json_body(r.line);
  return m;
}

std::string frame(std::string_view msg) {
  std::string out = std::to_string(msg.size());
  out += ' ';
  out += msg;
  return out;
}

}  // namespace syslog

// ---- the forwarder ----------------------------------------------------------

struct SyslogForwarder::Impl : std::enable_shared_from_this<Impl> {
  using Stream = ssl::stream<tcp::socket>;

  asio::io_context& io;
  SyslogSettings s;
  std::function<void(std::uint64_t)> save_cursor;
  ssl::context ctx{ssl::context::tls_client};
  tcp::resolver resolver;
  asio::steady_timer retry_timer;
  asio::steady_timer deadline;

  // Shared with submitters (any thread).
  mutable std::mutex mu;
  std::map<std::uint64_t, std::string> queue;  // seq -> framed message
  bool need_file = true;   // the log file may hold records after the cursor that the queue lacks
  bool pump_posted = false;
  std::atomic<bool> stopped{false};
  std::atomic<std::uint64_t> cursor_seen{0};
  Status st;  // guarded by mu

  // io thread only.
  enum class State { Idle, Connecting, Connected } state = State::Idle;
  // shared: pending operations keep their (closed) stream alive until they complete
  std::shared_ptr<Stream> stream;
  std::uint64_t gen = 0;  // connection generation: stale handlers are ignored
  std::uint64_t cursor = 0;
  bool writing = false;
  std::string out_buf;
  std::uint64_t out_last = 0;
  std::uint64_t out_count = 0;
  std::array<char, 512> rbuf{};
  std::chrono::milliseconds backoff;

  Impl(asio::io_context& io_, SyslogSettings settings, std::uint64_t start_cursor,
       std::function<void(std::uint64_t)> save)
      : io(io_),
        s(std::move(settings)),
        save_cursor(std::move(save)),
        resolver(io_),
        retry_timer(io_),
        deadline(io_),
        cursor(start_cursor),
        backoff(s.backoff_min) {
    cursor_seen = start_cursor;
    st.cursor = start_cursor;
    if (s.host.empty()) throw std::runtime_error("syslog: host is empty");
    if (s.facility < 0 || s.facility > 23) throw std::runtime_error("syslog: facility must be 0…23");
    if (s.port == 0) throw std::runtime_error("syslog: port is 0");
    if (s.queue_limit == 0) s.queue_limit = 1;
    if (s.backoff_min.count() <= 0) s.backoff_min = std::chrono::milliseconds(1000);
    if (s.backoff_max < s.backoff_min) s.backoff_max = s.backoff_min;
    backoff = s.backoff_min;
    SSL_CTX* c = ctx.native_handle();
    ERR_clear_error();
    // Trust only the configured CA file, never the system bundle.
    if (auto err = security::configure_tls_client(c, s.ca_file); !err)
      throw std::runtime_error("syslog: " + err.error().message + ": " + ssl_error_string());
    if (SSL_CTX_use_certificate_chain_file(c, s.cert_file.c_str()) != 1)
      throw std::runtime_error("syslog: cannot load client certificate " + s.cert_file + ": " + ssl_error_string());
    if (SSL_CTX_use_PrivateKey_file(c, s.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
      throw std::runtime_error("syslog: cannot load client key " + s.key_file + ": " + ssl_error_string());
    if (SSL_CTX_check_private_key(c) != 1)
      throw std::runtime_error("syslog: client key does not match the certificate " + s.cert_file);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  }

  void set_error(const std::string& e) {
    std::lock_guard lk(mu);
    st.last_error = e;
  }

  // --- submit side (any thread)
  void submit(const RecordView& r) {
    if (stopped) return;
    if (r.seq <= cursor_seen.load()) return;  // already delivered
    std::string framed = syslog::frame(syslog::format_message(r, s.facility, s.hostname, s.app_name));
    {
      std::lock_guard lk(mu);
      if (queue.size() >= s.queue_limit) {
        // Memory only: the record is in the log file and is resent from the cursor.
        ++st.dropped;
        need_file = true;
        return;
      }
      queue.emplace(r.seq, std::move(framed));
      if (pump_posted) return;
      pump_posted = true;
    }
    asio::post(io, [self = shared_from_this()] { self->pump(); });
  }

  // --- io thread
  void start() {
    if (stopped || state != State::Idle) return;
    connect();
  }

  void stop() {
    stopped = true;
    ++gen;
    retry_timer.cancel();
    deadline.cancel();
    resolver.cancel();
    close_stream();
    state = State::Idle;
  }

  void close_stream() {
    if (!stream) return;
    close_socket(*stream);
    stream.reset();  // handlers still pending hold their own reference
  }

  static void close_socket(Stream& st_) {
    boost::system::error_code ec;
    st_.lowest_layer().shutdown(tcp::socket::shutdown_both, ec);
    st_.lowest_layer().close(ec);
  }

  void arm_deadline(std::uint64_t g) {
    deadline.expires_after(s.io_timeout);
    deadline.async_wait([self = shared_from_this(), g](const boost::system::error_code& ec) {
      if (ec || g != self->gen) return;
      self->fail(g, "timed out");
    });
  }

  void connect() {
    if (stopped) return;
    state = State::Connecting;
    const std::uint64_t g = ++gen;
    stream = std::make_shared<Stream>(io, ctx);
    arm_deadline(g);
    resolver.async_resolve(s.host, std::to_string(s.port),
                           [self = shared_from_this(), g](const boost::system::error_code& ec,
                                                          const tcp::resolver::results_type& results) {
                             if (g != self->gen) return;
                             if (ec) return self->fail(g, "resolve " + self->s.host + ": " + ec.message());
                             asio::async_connect(self->stream->lowest_layer(), results,
                                                 [self, g, keep = self->stream](const boost::system::error_code& ec2,
                                                                                const tcp::endpoint&) {
                                                   if (g != self->gen) return;
                                                   if (ec2) return self->fail(g, "connect: " + ec2.message());
                                                   self->handshake(g);
                                                 });
                           });
  }

  void handshake(std::uint64_t g) {
    security::set_tls_peer_name(stream->native_handle(), s.host);
    stream->async_handshake(ssl::stream_base::client, [self = shared_from_this(), g, keep = stream](
                                                          const boost::system::error_code& ec) {
      if (g != self->gen) return;
      if (ec) {
        const std::string why = security::tls_error_text(keep->native_handle(), ec.message());
        return self->fail(g, "TLS handshake: " + why);
      }
      self->deadline.cancel();
      self->state = State::Connected;
      self->backoff = self->s.backoff_min;
      {
        std::lock_guard lk(self->mu);
        self->st.connected = true;
        ++self->st.connects;
        self->st.last_error.clear();
        self->need_file = true;  // resend whatever followed the cursor
      }
      log::info("syslog", "connected to ", self->s.host, ":", self->s.port, ", sending from seq ", self->cursor + 1);
      self->read_loop(g);
      self->pump();
    });
  }

  // The collector never sends data; a read completes on close or error.
  void read_loop(std::uint64_t g) {
    stream->async_read_some(asio::buffer(rbuf), [self = shared_from_this(), g, keep = stream](
                                                    const boost::system::error_code& ec, std::size_t) {
      if (g != self->gen) return;
      if (ec) return self->fail(g, "connection closed by the collector (" + ec.message() + ")");
      self->read_loop(g);
    });
  }

  void fail(std::uint64_t g, const std::string& why) {
    if (g != gen || stopped) return;
    ++gen;  // invalidate every pending handler of this connection
    deadline.cancel();
    close_stream();
    writing = false;
    out_buf.clear();
    state = State::Idle;
    {
      std::lock_guard lk(mu);
      st.connected = false;
      st.last_error = why;
    }
    log::warn("syslog", "collector ", s.host, ":", s.port, ": ", why, "; retrying in ", backoff.count(), " ms");
    retry_timer.expires_after(backoff);
    backoff = std::min(backoff * 2, s.backoff_max);
    retry_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopped) return;
      self->connect();
    });
  }

  // Reads records >= from (at most kFileBatch, stopping before `until`) from the log file.
  void fill_from_file(std::uint64_t from, std::uint64_t until) {
    std::uint64_t n = 0;
    std::uint64_t next = from;
    std::uint64_t dropped_before = 0;
    {
      std::lock_guard lk(mu);
      dropped_before = st.dropped;
    }
    if (!s.audit_log_file.empty()) {
      for_each_record(s.audit_log_file, from, [&](const RecordView& r) {
        if (r.seq >= until) return false;
        if (r.seq < next) return true;
        out_buf += syslog::frame(syslog::format_message(r, s.facility, s.hostname, s.app_name));
        out_last = r.seq;
        next = r.seq + 1;
        ++n;
        return n < kFileBatch && out_buf.size() < kMaxWriteBytes;
      });
    }
    std::lock_guard lk(mu);
    st.from_file += n;
    out_count = n;
    if (n == 0) {
      if (until != UINT64_MAX && until > from) {
        // Records [from, until) are not readable in the file: skip them
        // rather than stall (audit verify reports the damage).
        log::warn("syslog", "records ", from, "…", until - 1, " not found in the audit log file; skipped");
        cursor = until - 1;
      } else if (st.dropped == dropped_before) {
        need_file = false;  // caught up with the file (and nothing was dropped meanwhile)
      }
    } else if (n < kFileBatch && out_buf.size() < kMaxWriteBytes && until == UINT64_MAX &&
               st.dropped == dropped_before) {
      need_file = false;
    }
  }

  void pump() {
    {
      std::lock_guard lk(mu);
      pump_posted = false;
    }
    if (stopped || state != State::Connected || writing) return;
    out_buf.clear();
    out_count = 0;
    for (int round = 0; round < 2 && out_buf.empty(); ++round) {
      std::uint64_t next = cursor + 1;
      bool use_file = false;
      std::uint64_t until = UINT64_MAX;
      {
        std::lock_guard lk(mu);
        while (!queue.empty() && queue.begin()->first < next) queue.erase(queue.begin());
        while (!queue.empty() && queue.begin()->first == next && out_buf.size() < kMaxWriteBytes) {
          out_buf += queue.begin()->second;
          out_last = next++;
          ++out_count;
          queue.erase(queue.begin());
        }
        if (out_buf.empty()) {
          if (!queue.empty()) {
            use_file = true;  // a gap before the queue's first record
            until = queue.begin()->first;
          } else if (need_file) {
            use_file = true;
          }
        }
      }
      if (!use_file) break;
      fill_from_file(next, until);
    }
    if (out_buf.empty()) return;
    writing = true;
    const std::uint64_t g = gen;
    arm_deadline(g);
    // The buffer and the stream belong to this write until it completes (even after a close).
    auto buf = std::make_shared<std::string>(std::move(out_buf));
    out_buf.clear();
    asio::async_write(*stream, asio::buffer(*buf),
                      [self = shared_from_this(), g, buf, keep = stream](const boost::system::error_code& ec,
                                                                         std::size_t) {
                        if (g != self->gen) return;
                        if (ec) return self->fail(g, "write: " + ec.message());
                        self->deadline.cancel();
                        self->writing = false;
                        self->cursor = self->out_last;
                        self->cursor_seen = self->cursor;
                        {
                          std::lock_guard lk(self->mu);
                          self->st.cursor = self->cursor;
                          self->st.sent += self->out_count;
                        }
                        if (self->save_cursor && !self->stopped) self->save_cursor(self->cursor);
                        self->pump();
                      });
  }

  Status status() const {
    std::lock_guard lk(mu);
    return st;
  }
};

SyslogForwarder::SyslogForwarder(asio::io_context& io, SyslogSettings settings, std::uint64_t start_cursor,
                                 std::function<void(std::uint64_t)> save_cursor)
    : impl_(std::make_shared<Impl>(io, std::move(settings), start_cursor, std::move(save_cursor))) {}

SyslogForwarder::~SyslogForwarder() { stop(); }

void SyslogForwarder::start() {
  asio::post(impl_->io, [self = impl_] { self->start(); });
}

void SyslogForwarder::stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  asio::post(impl_->io, [self = impl_] { self->stop(); });
}

void SyslogForwarder::submit(const RecordView& r) { impl_->submit(r); }

SyslogForwarder::Status SyslogForwarder::status() const { return impl_->status(); }

}  // namespace cg::audit
