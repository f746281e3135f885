// The daemon: builds the modules and wires them — storage, key store, audit
// log, station, services, front ends (OCPP, simulator) — and runs the I/O
// loop. Decisions live in the services; this file only connects.
#include "app/daemon.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <iostream>
#include <vector>

#include "app/firmware_station.hpp"
#include "app/pki_cli.hpp"
#include "app/station_setup.hpp"
#include "app/web_station.hpp"
#include "audit/audit_log.hpp"
#include "audit/storage_watch.hpp"
#include "audit/syslog_forwarder.hpp"
#include "core/log.hpp"
#include "core/storage.hpp"
#include "hal/sim_front_end.hpp"
#include "hal/sim_socket.hpp"
#include "ocpp/front_end.hpp"
#include "ocpp/security_events.hpp"
#include "ocpp/station_messages.hpp"
#include "security/cert_store.hpp"
#include "firmware/floor.hpp"
#include "firmware/slots.hpp"
#include "services/firmware.hpp"
#include "services/gate.hpp"
#include "station/control_loop.hpp"
#include "station/station.hpp"

namespace cg::app {
namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

std::string status_json(const station::Station& st, bool online, core::Outbox& outbox,
                        const station::ControlLoop& loop) {
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
  // NET-3: the control loop's periods and the ones it missed (benchmarks, diagnosis).
  json::object cl{{"ticks", static_cast<std::int64_t>(loop.ticks())},
                  {"overruns", static_cast<std::int64_t>(loop.overruns())}};
  return json::serialize(json::object{
      {"online", online}, {"queued", outbox.size()}, {"evses", std::move(evses)}, {"controlLoop", std::move(cl)}});
}

// What the web UI's dashboard shows (read on the I/O thread).
web::DashboardData dashboard_data(const config::Config& cfg, const station::Station& st, bool online,
                                  core::Outbox& outbox, const std::string& firmware_version,
                                  const security::CertStore& certs, const firmware::SlotStore& slots,
                                  const std::string& fingerprint) {
  web::DashboardData d;
  d.identity = cfg.identity;
  d.model = cfg.model;
  d.firmware_version = firmware_version;
  d.csms_url = cfg.csms_url;
  d.security_profile = cfg.security_profile;
  d.online = online;
  d.queued_messages = outbox.size();
  for (const auto& e : st.evses()) {
    web::DashboardData::Evse v;
    v.id = e.id;
    v.status = station::to_string(st.connector_status(e));
    v.state = std::string(station::to_string(e.cp));
    v.power_w = e.power_w;
    v.energy_wh = e.energy_wh;
    if (e.tx) v.transaction = e.tx->id;
    d.evses.push_back(std::move(v));
  }
  for (const auto& c : certs.list()) {
    d.certificates.push_back({std::string(security::to_string(c.type)), c.subject,
                              clock::format_rfc3339(clock::SysTime(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  security::not_after(c.certificate.get()).time_since_epoch())))});
  }
  if (auto s = slots.load()) {
    for (auto slot : {firmware::Slot::A, firmware::Slot::B}) {
      const auto& rec = (*s)[slot];
      std::string state(firmware::to_string(rec.health));
      if (s->booted == slot) state += ", running";
      d.firmware_slots.push_back({std::string(firmware::to_string(slot)), rec.image ? rec.image->version : "-", state});
    }
  }
  d.web_fingerprint = fingerprint;
  return d;
}

audit::Options audit_options(const config::Config& cfg) {
  audit::Options ao;
  ao.max_bytes = cfg.audit_max_bytes;
  ao.full_policy = cfg.audit_full_policy == "overwrite_exported" ? audit::FullPolicy::OverwriteExported
                                                                 : audit::FullPolicy::RefuseNonCritical;
  return ao;
}

// LOG-4: the audit log to the operator's SIEM, RFC 5424 over TLS (RFC 5425).
// The cursor (last record written to the collector) lives in SQLite meta.
std::unique_ptr<audit::SyslogForwarder> start_syslog(asio::io_context& io, const config::Config& cfg,
                                                     audit::AuditLog& log, storage::Db& db) {
  if (!cfg.syslog) return nullptr;
  audit::SyslogSettings ss;
  ss.host = cfg.syslog->host;
  ss.port = static_cast<std::uint16_t>(cfg.syslog->port);
  ss.ca_file = cfg.syslog->ca_file.string();
  ss.cert_file = cfg.syslog->cert_file.string();
  ss.key_file = cfg.syslog->key_file.string();
  ss.hostname = cfg.identity;
  ss.facility = cfg.syslog->facility;
  ss.audit_log_file = audit::log_file(log.dir());
  const auto cursor = db.meta("syslog.cursor");
  auto fwd = std::make_unique<audit::SyslogForwarder>(io, ss, cursor ? std::stoull(*cursor) : 0,
                                                      [&db](std::uint64_t c) { db.set_meta("syslog.cursor", std::to_string(c)); });
  log.on_record([f = fwd.get()](const audit::RecordView& r) { f->submit(r); });
  fwd->start();
  log::info("audit", "forwarding the security log to syslog at ", ss.host, ":", ss.port);
  return fwd;
}

// Runs `fn` every `period` on the I/O thread; a failure is logged, never fatal.
class Ticker {
 public:
  Ticker(asio::io_context& io, std::chrono::steady_clock::duration period, std::function<void()> fn)
      : timer_(io), period_(period), fn_(std::move(fn)) {
    arm();
  }

 private:
  void arm() {
    timer_.expires_after(period_);
    timer_.async_wait([this](boost::system::error_code e) {
      if (e) return;
      try {
        fn_();
      } catch (const std::exception& ex) {
        log::error("station", "periodic work failed: ", ex.what());
      }
      arm();
    });
  }
  asio::steady_timer timer_;
  std::chrono::steady_clock::duration period_;
  std::function<void()> fn_;
};

int run(const config::Config& cfg, char** argv) {
  ::umask(077);
  ::signal(SIGPIPE, SIG_IGN);
  if (prepare_state_dir(cfg) < 0) return 1;
  // LOG-6: the diagnostics log also goes to a bounded file (2 × 2 MiB) that
  // GetLog(DiagnosticsLog) uploads; the security log is the separate audit log.
  const fs::path diagnostics_log = cfg.state_dir / "diagnostics.log";
  if (!log::set_file(diagnostics_log.string(), 2 * 1024 * 1024))
    log::warn("station", "cannot write ", diagnostics_log.string());

  // The key store: device keys, and the sealing of the CSMS password and of
  // the audit and badge-hash keys.
  std::unique_ptr<security::KeyStore> keys;
  try {
    keys = open_configured_key_store(cfg);
  } catch (const std::exception& e) {
    std::cerr << "error: key_store (backend " << cfg.key_store.backend << "): " << e.what() << "\n";
    return 1;
  }
  security::SealedPassword sealed_pw(*keys, cfg.state_dir);
  if (!prepare_password(cfg, *keys, sealed_pw)) return 1;
  security::StationIdentity identity(*keys, cfg.state_dir);
  if (!prepare_identity(cfg, identity, keys->backend())) return 1;

  asio::io_context io(1);
  // Declared before the audit log: its listener must outlive every record().
  std::unique_ptr<audit::SyslogForwarder> syslog_fwd;
  std::unique_ptr<storage::Db> db;
  std::unique_ptr<core::DeviceModel> dm;
  std::unique_ptr<audit::AuditLog> audit_log;
  std::unique_ptr<security::CertStore> certs;
  try {
    audit_log = audit::AuditLog::open(cfg.state_dir / "audit", *keys, audit_options(cfg));
    db = std::make_unique<storage::Db>(cfg.state_dir / "station.db");
    dm = std::make_unique<core::DeviceModel>(*db, cfg);
    certs = std::make_unique<security::CertStore>(cfg.state_dir);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  // The one enforcement point and audit path of every service.
  services::Gate gate(audit_log.get());
  services::Lifecycle lifecycle(gate);
  services::CertificateService cert_service(gate, *certs, &identity, dm.get());
  try {
    // Installed roots (M03-M05): csms.ca_file seeds the CSMS roots at the
    // first start; from then on the store is the source of truth, except
    // when the local admin changes the file. At profile 1 a configured file
    // is seeded too: it is what a later upgrade to profile 2 (B09) trusts.
    if (cfg.security_profile >= 2) {
      cert_service.sync_with_ca_file(cfg.ca_file, cfg.state_dir);
    } else if (!cfg.ca_file.empty()) {
      try {
        cert_service.sync_with_ca_file(cfg.ca_file, cfg.state_dir);
      } catch (const std::exception& e) {
        log::warn("station", "csms.ca_file not loaded (it would be the root for an upgrade to profile 2): ", e.what());
      }
    }
    for (const auto& p : certs->problems()) log::warn("station", "certificate store: ", p);
  } catch (const std::exception& e) {
    std::cerr << "error: certificate store: " << e.what() << "\n";
    return 1;
  }

  // CHG-2: the badge-hash key, sealed by the key store (a plain token.key of an older release is sealed and removed).
  station::AuthStore auth(*db, station::AuthStore::load_or_create_key(*keys, cfg.state_dir));
  // Messages the CSMS refused keep masked ids and keyed hashes only (CHG-2, LOG-5).
  core::Outbox outbox(*db, [&auth](const std::string& payload) { return auth.redact_id_tokens(payload); });
  station::ControlLoop loop(cfg.evses, std::chrono::milliseconds(cfg.control_period_ms),
                            station::Station::stored_meter_registers(*db, cfg.evses.size()));
  ocpp::TransactionEventQueue tx_events(outbox);  // the station's events, as OCPP messages, into the outbox
  station::Station st(cfg, *db, *dm, tx_events, auth, loop);

  syslog_fwd = start_syslog(io, cfg, *audit_log, *db);

  services::NetworkService network(gate, *db, cfg, *dm, &sealed_pw, &identity, certs.get());
  services::SettingsService settings(gate, *dm, &sealed_pw, network);
  services::ChargingService charging(gate, st, auth, *dm, outbox, &loop);
  services::AvailabilityService availability(gate, st, *db);
  services::IdentityService identity_service(gate, identity, cfg, dm.get());
  services::SecurityLogService security_log(gate, *audit_log, diagnostics_log, keys.get());
  services::LinkEvents link_events(gate);
  // Firmware (FW-1…FW-7): the slots, the floor, the service; under `chargeguard boot`
  // the running image is the booted slot's.
  const auto boot_env = boot_env_from_environment();
  const std::string firmware_version = boot_env ? boot_env->version : std::string(CG_VERSION);
  firmware::SlotStore slots(cfg.state_dir / "firmware");
  firmware::SecurityFloor floor(cfg.state_dir / "firmware" / "floor", keys.get());
  services::FirmwareService firmware_service(
      gate, slots, floor, *certs,
      services::firmware_rules(cfg));
  firmware_service.recover();
  if (boot_env && boot_env->trying) db->set_meta("boot_reason", "FirmwareUpdate");
  bool firmware_confirmed = !(boot_env && boot_env->trying);
  const auto confirm_firmware = [&](const char* why) {
    if (firmware_confirmed) return;
    firmware_confirmed = true;
    const auto slot = firmware::slot_from_string(boot_env->slot);
    auto r = firmware_service.confirm(*slot);
    if (r) {
      log::info("firmware", "the new image ", r->version, " in slot ", boot_env->slot, " confirmed itself (", why,
                "); security-version floor ", r->security_version);
    } else {
      log::error("firmware", "confirming the new image failed: ", r.error().message);
    }
  };

  bool restart = false;
  ocpp::FrontEnd ocpp({io, cfg, *db, *dm, outbox, st,
                       ocpp::Services{settings, network, charging, availability, link_events, lifecycle,
                                      &cert_service, &identity_service, &security_log,
                                      boot_env ? &firmware_service : nullptr},
                       &sealed_pw, certs.get(),
                       [&] {
                         restart = true;
                         io.stop();
                       },
                       firmware_version,
                       [&] {
                         if (cfg.firmware.confirm == "boot-accepted") confirm_firmware("BootNotification accepted");
                       }});
  st.set_uplink(&ocpp.session());

  // Critical security events to the CSMS (A04): queued from the audit log.
  ocpp::SecurityEventForwarder forwarder(*db, outbox, audit::log_file(audit_log->dir()));
  if (const int n = forwarder.catch_up()) log::info("audit", n, " security event(s) queued for the CSMS from before");
  audit_log->on_record([&](const audit::RecordView& r) {
    // Records may come from any thread; the outbox lives on the I/O thread.
    asio::post(io, [&, r] {
      if (forwarder.on_record(r)) ocpp.session().outbox_changed();
    });
  });
  lifecycle.started(firmware_version, db->meta("boot_reason").value_or("PowerUp"));
  lifecycle.local_settings(cfg, *db);
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

  // The maintenance web UI (AUTH-*, NET-4): HTTPS on [web] listen only.
  std::unique_ptr<WebStation> web_ui;
  if (cfg.web.enabled) {
    try {
      web_ui = std::make_unique<WebStation>(io, cfg, *keys, *audit_log, [&] {
        return dashboard_data(cfg, st, ocpp.online(), outbox, firmware_version, *certs, slots, web_ui->fingerprint());
      }, web::WebServices{.security_log = &security_log,
                          .firmware = boot_env ? &firmware_service : nullptr,
                          .firmware_max_bytes = cfg.firmware.max_image_mib * 1024 * 1024,
                          .settings = &settings,
                          .heartbeat_changed = [&] { ocpp.session().heartbeat_interval_changed(); },
                          .certificates = &cert_service,
                          .availability = &availability,
                          .identity = &identity_service,
                          .restart = [&] {
                            // After the answer is out: the session's restart (under the boot stage a reboot).
                            auto t = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(500));
                            t->async_wait([t, &ocpp](boost::system::error_code e) {
                              if (!e) ocpp.session().restart();
                            });
                          }});
      audit_log->on_record([recent = web_ui->recent()](const audit::RecordView& r) { recent->add(r); });
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      return 1;
    }
  }

  hal::SimFrontEnd sim_front(charging, lifecycle, [&] { return status_json(st, ocpp.online(), outbox, loop); });
  hal::SimServer sim(io, cfg.state_dir / "sim.sock", [&](const hal::SimCommand& c) { return sim_front.handle(c); });

  // Free space of the state file system, checked every minute (MemoryExhaustion).
  audit::StorageWatch storage_watch(*audit_log, cfg.state_dir);
  storage_watch.check();
  int ticks = 0;
  Ticker tick(io, std::chrono::seconds(1), [&] {
    st.tick();
    ocpp.tick();
    if (web_ui) web_ui->tick();
    if (++ticks % 60 == 0) storage_watch.check();
    if (!firmware_confirmed) {
      if (cfg.firmware.confirm == "running" && ticks >= cfg.firmware.confirm_after_s) {
        confirm_firmware("ran its confirmation time");
      } else if (ticks >= cfg.firmware.confirm_timeout_s) {
        // Never confirmed: reboot; the boot stage counts the attempt and rolls back after the last.
        log::error("firmware", "the new image did not confirm itself within ", cfg.firmware.confirm_timeout_s,
                   " s: rebooting");
        firmware_confirmed = true;
        restart = true;
        ocpp.stop();
        io.stop();
      }
    }
  });

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code e, int sig) {
    if (e) return;
    log::info("station", "signal ", sig, ": shutting down");
    lifecycle.stopping(sig == SIGTERM ? "SIGTERM" : "SIGINT");
    ocpp.stop();
    if (web_ui) web_ui->stop();
    if (syslog_fwd) syslog_fwd->stop();
    io.stop();
  });

  loop.start();
  ocpp.start();
  if (web_ui) web_ui->start();
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
  if (restart && boot_env) {
    // Under the boot stage a restart is a reboot: it verifies and boots again.
    log::info("station", "rebooting");
    return kRebootExitCode;
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

}  // namespace

int run_daemon(const config::Config& cfg, char** argv) {
  try {
    return run(cfg, argv);
  } catch (const std::exception& e) {
    // Start-up problems (damaged key file, unreadable state…) end with a
    // message, never with std::terminate.
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace cg::app
