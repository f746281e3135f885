#include "app/daemon.hpp"
#include "app/pki_cli.hpp"

#include "app/audit_cli.hpp"
#include "audit/storage_watch.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <openssl/crypto.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <vector>

#include "audit/audit_log.hpp"
#include "audit/syslog_forwarder.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "core/storage.hpp"
#include "hal/sim_socket.hpp"
#include "ocpp/charge_point.hpp"
#include "core/device_model.hpp"
#include "core/outbox.hpp"
#include "ocpp/security_events.hpp"
#include "ocpp/station_messages.hpp"
#include "policy/policy.hpp"
#include "security/key_store.hpp"
#include "security/secret_file.hpp"
#include <openssl/evp.h>
#include "security/certificates.hpp"
#include "security/base64.hpp"
#include "security/cert_store.hpp"
#include "security/sealed_password.hpp"
#include "security/station_identity.hpp"
#include "station/auth.hpp"
#include "station/control_loop.hpp"
#include "station/station.hpp"

namespace cg::app {
namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

// Brings the CSMS roots of the certificate store in line with csms.ca_file:
// seeded at the first start; replaced when the file's content changed since
// the last start (a local decision); otherwise left as the CSMS set them.
// Returns what changed for the audit log ("" when nothing did); throws when
// no CSMS root would be left to trust.
std::string sync_csms_roots(security::CertStore& certs, const fs::path& ca_file, const fs::path& state_dir) {
  std::ifstream in(ca_file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + ca_file.string());
  std::string pem(security::kMaxPemBytes + 1, '\0');
  in.read(pem.data(), static_cast<std::streamsize>(pem.size()));
  pem.resize(static_cast<std::size_t>(in.gcount()));
  if (pem.size() > security::kMaxPemBytes) throw std::runtime_error(ca_file.string() + " is larger than 64 KiB");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(pem.data(), pem.size(), md, &n, EVP_sha256(), nullptr);
  const std::string digest = security::hex_encode(md, n);
  // Next to certs/, not in it (the store reports files it does not know).
  const fs::path marker = state_dir / "csms-ca-file.sha256";
  ::unlink((state_dir / "certs" / "csms-ca-file.sha256").c_str());  // where builds before 2026-11-22 kept it
  std::string seen;
  {
    std::ifstream m(marker);
    std::getline(m, seen);
  }
  const auto type = security::CertificateType::CSMSRootCertificate;
  std::string change;
  if (seen.empty()) {
    const auto r = certs.seed(type, ca_file);
    for (const auto& w : r.skipped) log::warn("station", "csms.ca_file: skipped ", w);
    if (r.status == security::SeedStatus::Failed && certs.count(type) == 0)
      throw std::runtime_error("no usable CSMS root in " + ca_file.string() + ": " + r.reason);
  } else if (seen != digest) {
    std::string err;
    const auto roots = security::parse_pem_chain(pem, 32, err);
    if (!err.empty()) throw std::runtime_error(ca_file.string() + ": " + err);
    std::size_t n_ok = 0;
    for (const auto& r : roots) {
      const auto res = certs.install_local(type, security::to_pem(r.get()),
                                           n_ok == 0 ? security::LocalInstallMode::Replace : security::LocalInstallMode::Add);
      if (res.accepted()) ++n_ok;
      else log::warn("station", "csms.ca_file: ", res.reason);
    }
    if (n_ok == 0) throw std::runtime_error("no usable CSMS root in " + ca_file.string());
    change = "csms.ca_file changed: the CSMS roots were replaced by its " + std::to_string(n_ok) + " certificate(s)";
    log::warn("station", change);
  }
  if (seen != digest) {
    if (auto e = security::write_file_durably(marker.string(), digest + "\n"); !e.empty())
      log::warn("station", "cannot note the csms.ca_file digest: ", e);
  }
  return change;
}

struct PasswordResult {
  std::string password;
  std::string error;
};

PasswordResult read_password(const fs::path& file) {
  struct stat st{};
  if (::stat(file.c_str(), &st) != 0) return {{}, "cannot read password file " + file.string()};
  if (!S_ISREG(st.st_mode)) return {{}, "password file " + file.string() + " is not a regular file"};
  if (st.st_size > 1024) return {{}, "password file " + file.string() + " is larger than 1 KiB"};
  if (st.st_mode & 0077)
    log::warn("station", "password file ", file.string(), " is readable by group/others; chmod 600 it");
  std::ifstream in(file);
  std::string pw;
  std::getline(in, pw);
  if (!pw.empty() && pw.back() == '\r') pw.pop_back();
  if (pw.empty()) return {{}, "password file " + file.string() + " is empty"};
  if (pw.size() > 64) return {{}, "password in " + file.string() + " is longer than 64 characters"};
  return {pw, {}};
}

// Closes every descriptor from `first` on. Before the re-exec of a reset: the
// sockets (CSMS connection, simulator socket) are not close-on-exec and would
// otherwise live on, unused, in the new process, one more set per reset.
void close_descriptors_from(int first) {
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, static_cast<unsigned>(first), ~0U, 0U) == 0) return;
#endif
  std::vector<int> fds;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d)) {
      const int fd = std::atoi(e->d_name);
      if (fd >= first && fd != ::dirfd(d)) fds.push_back(fd);
    }
    ::closedir(d);
  }
  for (int fd : fds) ::close(fd);
}

std::string status_json(const station::Station& st, const ocpp::ChargePoint& cp, core::Outbox& outbox) {
  json::array evses;
  for (const auto& e : st.evses()) {
    json::object o{{"id", e.id},
                   {"state", std::string(station::to_string(e.cp))},
                   {"status", station::to_string(st.connector_status(e))},
                   {"energyWh", static_cast<std::int64_t>(e.energy_wh)},
                   {"powerW", static_cast<std::int64_t>(e.power_w)},
                   {"operative", e.operative}};
    if (e.tx) o["transactionId"] = e.tx->id;
    if (e.authorized) o["authorized"] = true;
    evses.push_back(std::move(o));
  }
  return json::serialize(json::object{{"online", cp.online()}, {"queued", outbox.size()}, {"evses", std::move(evses)}});
}

}  // namespace

int run_daemon_unguarded(const config::Config& cfg, char** argv);

int run_daemon(const config::Config& cfg, char** argv) {
  try {
    return run_daemon_unguarded(cfg, argv);
  } catch (const std::exception& e) {
    // Start-up problems (damaged key file, unreadable state…) end with a
    // message, never with std::terminate.
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

int run_daemon_unguarded(const config::Config& cfg, char** argv) {
  ::umask(077);
  ::signal(SIGPIPE, SIG_IGN);
  std::error_code ec;
  const bool existed = fs::exists(cfg.state_dir);
  fs::create_directories(cfg.state_dir, ec);
  if (ec) {
    std::cerr << "error: cannot create state directory " << cfg.state_dir << ": " << ec.message() << "\n";
    return 1;
  }
  if (!existed) {
    ::chmod(cfg.state_dir.c_str(), 0700);
  } else {
    // An existing directory is never re-permissioned (it could be /var/lib);
    // one that others can write is refused: they could replace our files.
    struct stat sd{};
    if (::stat(cfg.state_dir.c_str(), &sd) != 0 || !S_ISDIR(sd.st_mode) || (sd.st_mode & 0022)) {
      std::cerr << "error: station.state_dir " << cfg.state_dir
                << " must be a directory that only its owner can write (chmod 700)\n";
      return 1;
    }
  }
  // One daemon per state directory.
  const int lock_fd = try_lock_state_dir(cfg.state_dir);
  if (lock_fd < 0) {
    std::cerr << "error: another chargeguard is already running with state directory " << cfg.state_dir << "\n";
    return 1;
  }
  // LOG-6: the diagnostics log also goes to a bounded file (2 × 2 MiB) that
  // GetLog(DiagnosticsLog) uploads; the security log is the separate audit log.
  if (!log::set_file((cfg.state_dir / "diagnostics.log").string(), 2 * 1024 * 1024))
    log::warn("station", "cannot write ", (cfg.state_dir / "diagnostics.log").string());
  // The key store (issue 4): device keys and the sealing of the CSMS password.
  std::unique_ptr<security::KeyStore> key_store;
  try {
    key_store = open_configured_key_store(cfg);
  } catch (const std::exception& e) {
    std::cerr << "error: key_store (backend " << cfg.key_store.backend << "): " << e.what() << "\n";
    return 1;
  }
  // The CSMS password (profiles 1/2). There is no default: the first start
  // seals csms.password_file into the state directory; from then on the sealed
  // password is the source of truth (A01 may have rotated it).
  security::SealedPassword sealed_pw(*key_store, cfg.state_dir);
  {
    const bool file_exists = !cfg.password_file.empty() && fs::exists(cfg.password_file, ec);
    if (!sealed_pw.has_current() && cfg.security_profile == 3 && !file_exists) {
      // Profile 3 authenticates with the station certificate; a password is
      // only needed for a later move to profile 2 (and can be set by A01).
    } else if (!sealed_pw.has_current()) {
      auto pw = read_password(cfg.password_file);
      if (!pw.error.empty()) {
        std::cerr << "error: csms.password_file: " << pw.error
                  << " (security profiles 1 and 2 need a password; there is no default and none is sealed in "
                  << cfg.state_dir.string() << " yet)\n";
        return 1;
      }
      try {
        sealed_pw.store(pw.password);
      } catch (const std::exception& e) {
        OPENSSL_cleanse(pw.password.data(), pw.password.size());
        std::cerr << "error: cannot seal the CSMS password: " << e.what() << "\n";
        return 1;
      }
      OPENSSL_cleanse(pw.password.data(), pw.password.size());
      log::info("station", "CSMS password from ", cfg.password_file.string(), " sealed into ",
                sealed_pw.current_file().string(), " (", key_store->backend(),
                " key store); the sealed one is used from now on and the file may be removed");
    } else {
      // Fails closed on a damaged blob or another key store: say how to recover.
      try {
        const auto cur = sealed_pw.current();
        if (file_exists) {
          auto pw = read_password(cfg.password_file);
          const bool same = pw.error.empty() && pw.password.size() == cur.size() &&
                            CRYPTO_memcmp(pw.password.data(), cur.data(), cur.size()) == 0;
          OPENSSL_cleanse(pw.password.data(), pw.password.size());
          if (!same)
            log::warn("station", "csms.password_file differs from the sealed CSMS password (changed by the CSMS or "
                                 "not yet confirmed); using the sealed one in ",
                      sealed_pw.current_file().string());
          else
            log::info("station", "using the sealed CSMS password (", sealed_pw.current_file().string(), ")");
        } else {
          log::info("station", "using the sealed CSMS password (", sealed_pw.current_file().string(), ")");
        }
      } catch (const std::exception& e) {
        std::cerr << "error: cannot unseal the CSMS password: " << e.what() << " (sealed by another key store? "
                  << "remove " << sealed_pw.current_file().string() << " to seal csms.password_file again)\n";
        return 1;
      }
    }
  }

  // The station's TLS client identity (profile 3; A02/A03 renewal).
  security::StationIdentity identity(*key_store, cfg.state_dir);
  try {
    identity.recover();
    if (cfg.security_profile == 3) {
      if (!identity.has_certificate(security::kStationKeyLabel) || !identity.has_key(security::kStationKeyLabel)) {
        std::cerr << "error: security profile 3 needs the station's key and certificate, and "
                  << identity.chain_file(security::kStationKeyLabel).string()
                  << " or the key 'station' is missing; provision the station first:\n"
                  << "  chargeguard pki provision --config FILE (see docs/configuration.md)\n";
        return 1;
      }
      (void)identity.load(security::kStationKeyLabel);  // fails here, not at every reconnect
      if (const auto s = identity.summary(security::kStationKeyLabel)) {
        log::info("station", "station certificate CN=", s->common_name, ", O=", s->organization, ", serial ",
                  s->serial_hex, ", valid until ", clock::format_rfc3339(s->not_after), " (key in the ",
                  key_store->backend(), " key store)");
        if (s->not_after < std::chrono::system_clock::now())
          log::warn("station", "the station certificate has EXPIRED; trying it anyway (the CSMS decides)");
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "error: station identity: " << e.what() << "\n";
    return 1;
  }

  // Installed roots (M03-M05). The CSMS roots come from csms.ca_file at the
  // first start; from then on the store is the source of truth (the CSMS may
  // install and delete roots), except when the local admin changes csms.ca_file:
  // then its content replaces the CSMS roots (audited below).
  std::unique_ptr<security::CertStore> certs;
  std::string ca_file_change;
  try {
    certs = std::make_unique<security::CertStore>(cfg.state_dir);
    // At profile 1 a configured csms.ca_file is seeded too: it is what a later
    // upgrade to profile 2 (B09) trusts; no root is ever taken over ws://.
    if (cfg.security_profile >= 2) {
      ca_file_change = sync_csms_roots(*certs, cfg.ca_file, cfg.state_dir);
    } else if (!cfg.ca_file.empty()) {
      try {
        ca_file_change = sync_csms_roots(*certs, cfg.ca_file, cfg.state_dir);
      } catch (const std::exception& e) {
        // Profile 1 does not use it now; only a later upgrade would.
        log::warn("station", "csms.ca_file not loaded (it would be the root for an upgrade to profile 2): ", e.what());
      }
    }
    for (const auto& p : certs->problems()) log::warn("station", "certificate store: ", p);
  } catch (const std::exception& e) {
    std::cerr << "error: certificate store: " << e.what() << "\n";
    return 1;
  }

  asio::io_context io(1);
  // Declared before the audit log: its listener must outlive every record().
  std::unique_ptr<audit::SyslogForwarder> syslog_fwd;
  std::unique_ptr<storage::Db> db;
  std::unique_ptr<core::DeviceModel> dm;
  std::unique_ptr<audit::AuditLog> audit_log;
  try {
    audit::Options ao;
    ao.max_bytes = cfg.audit_max_bytes;
    ao.full_policy = cfg.audit_full_policy == "overwrite_exported" ? audit::FullPolicy::OverwriteExported
                                                                   : audit::FullPolicy::RefuseNonCritical;
    audit_log = audit::AuditLog::open(cfg.state_dir / "audit", *key_store, ao);
    db = std::make_unique<storage::Db>(cfg.state_dir / "station.db");
    dm = std::make_unique<core::DeviceModel>(*db, cfg);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  // CHG-2: the badge-hash key, sealed by the key store (a plain token.key of an older release is sealed and removed).
  station::AuthStore auth(*db, station::AuthStore::load_or_create_key(*key_store, cfg.state_dir));
  // Messages the CSMS refused keep masked ids and keyed hashes only (CHG-2, LOG-5).
  core::Outbox outbox(*db, [&auth](const std::string& payload) { return auth.redact_id_tokens(payload); });
  station::ControlLoop loop(cfg.evses, std::chrono::milliseconds(cfg.control_period_ms),
                            station::Station::stored_meter_registers(*db, cfg.evses.size()));
  ocpp::TransactionEventQueue tx_events(outbox);  // the station's events, as OCPP messages, into the outbox
  station::Station st(cfg, *db, *dm, tx_events, auth, loop);

  if (cfg.syslog) {
    // LOG-4: the audit log to the operator's SIEM, RFC 5424 over TLS (RFC 5425).
    // The cursor (last record written to the collector) lives in SQLite meta.
    audit::SyslogSettings ss;
    ss.host = cfg.syslog->host;
    ss.port = static_cast<std::uint16_t>(cfg.syslog->port);
    ss.ca_file = cfg.syslog->ca_file.string();
    ss.cert_file = cfg.syslog->cert_file.string();
    ss.key_file = cfg.syslog->key_file.string();
    ss.hostname = cfg.identity;
    ss.facility = cfg.syslog->facility;
    ss.audit_log_file = audit::log_file(audit_log->dir());
    const auto cursor = db->meta("syslog.cursor");
    syslog_fwd = std::make_unique<audit::SyslogForwarder>(
        io, ss, cursor ? std::stoull(*cursor) : 0,
        [&db](std::uint64_t c) { db->set_meta("syslog.cursor", std::to_string(c)); });
    audit_log->on_record([f = syslog_fwd.get()](const audit::RecordView& r) { f->submit(r); });
    syslog_fwd->start();
    log::info("audit", "forwarding the security log to syslog at ", ss.host, ":", ss.port);
  }
  bool restart = false;
  ocpp::ChargePoint cp({io, cfg, *db, *dm, outbox, st, auth, &sealed_pw, &identity, certs.get(),
                        [&] {
                          restart = true;
                          io.stop();
                        },
                        audit_log.get()});
  st.set_uplink(&cp);

  // Critical security events to the CSMS (A04): queued from the audit log.
  ocpp::SecurityEventForwarder forwarder(*db, outbox, audit::log_file(audit_log->dir()));
  if (const int n = forwarder.catch_up()) log::info("audit", n, " security event(s) queued for the CSMS from before");
  audit_log->on_record([&](const audit::RecordView& r) {
    // Records may come from any thread; the outbox lives on the I/O thread.
    asio::post(io, [&, r] {
      if (forwarder.on_record(r)) cp.outbox_changed();
    });
  });
  {
    audit::Details d;
    d.text("version", CG_VERSION).text("bootReason", db->meta("boot_reason").value_or("PowerUp"));
    audit_log->record(audit::Event::StartupOfTheDevice, audit::Outcome::Success, audit::Source::system(), d);
    if (!ca_file_change.empty())
      audit_log->record(audit::Event::ReconfigurationOfSecurityParameters, audit::Outcome::Success,
                        audit::Source::system(), audit::Details().text("change", "csmsRoots").text("result", ca_file_change));
    // COM-6: the downgrade permission is a local setting; a change of it (the
    // configuration file edited between starts) is a security reconfiguration.
    const std::string downgrade = cfg.allow_security_profile_downgrade ? "true" : "false";
    const auto seen = db->meta("config.allow_security_profile_downgrade");
    if (seen.value_or("false") != downgrade) {
      audit_log->record(audit::Event::ReconfigurationOfSecurityParameters, audit::Outcome::Success,
                        audit::Source{"LocalMaintenance", "", "configuration file"},
                        audit::Details()
                            .text("change", "allowSecurityProfileDowngrade")
                            .text("setting", "csms.allow_security_profile_downgrade")
                            .text("value", downgrade)
                            .text("previous", seen.value_or("false")));
      log::warn("station", "csms.allow_security_profile_downgrade is now ", downgrade,
                cfg.allow_security_profile_downgrade ? ": the CSMS may move the station from security profile 3 to 2"
                                                     : "");
    }
    if (seen != downgrade) db->set_meta("config.allow_security_profile_downgrade", downgrade);
  }
  st.recover();

  // Control loop -> station: an eventfd tells the I/O thread that events wait.
  asio::posix::stream_descriptor efd(io, ::fcntl(loop.notify_fd(), F_DUPFD_CLOEXEC, 0));
  std::uint64_t efd_buf = 0;
  std::vector<station::LoopEvent> events;
  std::function<void()> arm_efd = [&] {
    efd.async_read_some(asio::buffer(&efd_buf, sizeof efd_buf), [&](boost::system::error_code e, std::size_t) {
      if (e) return;
      events.clear();
      loop.drain(events);
      for (const auto& ev : events) {
        try {
          st.on_loop_event(ev);
        } catch (const std::exception& ex) {
          // Keep listening to the hardware whatever one event did.
          log::error("station", "handling a hardware event failed: ", ex.what());
        }
      }
      arm_efd();
    });
  };
  arm_efd();

  hal::SimServer sim(io, cfg.state_dir / "sim.sock", [&](const hal::SimCommand& c) -> std::string {
    using K = hal::SimCommand::Kind;
    auto hw = [&](station::HwInput::Kind k) -> std::string {
      if (c.evse > static_cast<int>(cfg.evses.size())) return "error: EVSE " + std::to_string(c.evse) + " does not exist";
      // The EV (and the EVSE's own sensors) over the charging cable: AUTHZ-1.
      const policy::Principal ev{policy::Role::Ev, policy::Interface::EvCable, "EV on EVSE " + std::to_string(c.evse)};
      if (policy::authorize(ev, policy::Operation::ControlCharging) != policy::Decision::Allow)
        return "error: not permitted";
      return loop.submit(station::HwInput{k, c.evse, c.amps}) ? "ok" : "error: hardware input queue full, try again";
    };
    switch (c.kind) {
      case K::Plug: return hw(station::HwInput::Kind::Plug);
      case K::Unplug: return hw(station::HwInput::Kind::Unplug);
      case K::Draw: return hw(station::HwInput::Kind::Draw);
      case K::Fault: return hw(station::HwInput::Kind::Fault);
      case K::ClearFault: return hw(station::HwInput::Kind::ClearFault);
      case K::Badge: {
        if (c.evse > static_cast<int>(cfg.evses.size())) return "error: EVSE " + std::to_string(c.evse) + " does not exist";
        const station::IdToken tok{c.token, c.token_type};
        const policy::Principal driver{policy::Role::EvDriver, policy::Interface::AuthTerminal, tok.masked()};
        if (policy::authorize(driver, policy::Operation::Authenticate) != policy::Decision::Allow)
          return "error: not permitted";
        // A badge on an EVSE with a running transaction asks to stop it.
        const auto& evs = st.evses()[static_cast<std::size_t>(c.evse - 1)];
        if (evs.tx && policy::authorize(driver, policy::Operation::StopTransaction) != policy::Decision::Allow)
          return "error: not permitted";
        st.present_token(c.evse, tok);
        return "ok";
      }
      case K::CaseOpen:
      case K::Moved: {
        // PHY-1: tamper sensors raise TamperDetectionActivated at once.
        const char* what = c.kind == K::CaseOpen ? "enclosure opened" : "station moved";
        log::warn("hal", "tamper: ", what);
        const auto r = audit_log->record(audit::Event::TamperDetectionActivated, audit::Outcome::Failure,
                                         audit::Source{"Hardware", "", "tamper sensor"},
                                         audit::Details().text("sensor", c.kind == K::CaseOpen ? "case" : "motion").text("event", what));
        return r.stored ? "ok" : "error: " + r.error;
      }
      case K::CaseClose: {
        log::info("hal", "enclosure closed");
        const auto r = audit_log->record(audit::Event::TamperCleared, audit::Outcome::Success,
                                         audit::Source{"Hardware", "", "tamper sensor"},
                                         audit::Details().text("sensor", "case").text("event", "enclosure closed"));
        return r.stored ? "ok" : "error: " + r.error;
      }
      case K::ResetButton: log::warn("hal", "reset button pressed (factory reset arrives with a later release)"); return "ok";
      case K::Status: return "ok " + status_json(st, cp, outbox);
    }
    return "error: unsupported";
  });

  // Free space of the state file system, checked every minute (MemoryExhaustion).
  audit::StorageWatch storage_watch(*audit_log, cfg.state_dir);
  storage_watch.check();
  int ticks = 0;
  asio::steady_timer tick(io);
  std::function<void()> arm_tick = [&] {
    tick.expires_after(std::chrono::seconds(1));
    tick.async_wait([&](boost::system::error_code e) {
      if (e) return;
      try {
        st.tick();
        cp.tick();
        if (++ticks % 60 == 0) storage_watch.check();
      } catch (const std::exception& ex) {
        log::error("station", "periodic work failed: ", ex.what());
      }
      arm_tick();
    });
  };
  arm_tick();

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code e, int sig) {
    if (e) return;
    log::info("station", "signal ", sig, ": shutting down");
    audit_log->record(audit::Event::Shutdown, audit::Outcome::Success, audit::Source::system(),
                      audit::Details().text("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    cp.stop();
    if (syslog_fwd) syslog_fwd->stop();
    io.stop();
  });

  loop.start();
  cp.start();
  log::info("station", "station ", cfg.identity, " running with ", cfg.evses.size(), " EVSE(s); state in ",
            cfg.state_dir.string(), "; simulator socket ", (cfg.state_dir / "sim.sock").string());
  for (;;) {
    try {
      io.run();
      break;
    } catch (const std::exception& ex) {
      // A failing handler must not take charging down; log and continue.
      log::error("station", "unexpected error: ", ex.what());
    }
  }
  loop.stop();
  // Persist the meter registers for the next start.
  events.clear();
  loop.drain(events);
  for (const auto& ev : events) st.on_loop_event(ev);
  try {
    st.save_meters();
  } catch (const std::exception& ex) {
    log::error("station", "could not save the meter registers: ", ex.what());
  }
  if (restart) {
    log::info("station", "restarting");
    std::cerr.flush();
    close_descriptors_from(STDERR_FILENO + 1);  // also the lock file
    ::execv("/proc/self/exe", argv);
    log::error("station", "restart failed");
    return 1;
  }
  log::info("station", "stopped");
  return 0;
}

}  // namespace cg::app
