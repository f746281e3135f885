#include "app/web_station.hpp"

#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/json.hpp>
#include <iostream>

#include "app/audit_cli.hpp"
#include "app/pki_cli.hpp"
#include "app/station_setup.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "core/storage.hpp"
#include "security/tls_client.hpp"
#include "security/web_identity.hpp"
#include "services/accounts.hpp"
#include "services/commissioning_pin.hpp"
#include "services/sessions.hpp"
#include "web/auth_worker.hpp"
#include "web/server.hpp"

namespace cg::app {
namespace asio = boost::asio;

struct WebStation::Parts {
  std::string fingerprint;
  asio::ssl::context tls{asio::ssl::context::tls_server};
  services::Gate io_gate;  // the I/O thread's (sessions, route checks)
  services::SessionService sessions;
  std::shared_ptr<web::RecentEvents> recent = std::make_shared<web::RecentEvents>();
  web::AuthWorker worker;
  // Owned by the worker thread: created and destroyed there.
  std::unique_ptr<storage::Db> db;
  std::unique_ptr<services::Gate> worker_gate;
  std::unique_ptr<services::AccountsService> accounts;
  std::unique_ptr<services::CommissioningPinService> pin;
  std::unique_ptr<web::WebApp> app;
  std::unique_ptr<web::Server> server;
  int ticks = 0;
  std::string listen;

  Parts(audit::AuditLog& log, const config::Config& cfg)
      : io_gate(&log), sessions(io_gate, cfg.web), listen(cfg.web.listen) {}
};

WebStation::WebStation(asio::io_context& io, const config::Config& cfg, security::KeyStore& keys, audit::AuditLog& log,
                       web::DashboardFn dashboard, web::WebServices services)
    : p_(std::make_unique<Parts>(log, cfg)) {
  const auto listen = config::parse_listen(cfg.web.listen);  // validated with the configuration
  auto id = security::ensure_web_identity(keys, cfg.state_dir, listen->first, cfg.identity);
  if (id.created) log::info("web", "new web server certificate, SHA-256 ", id.fingerprint);
  p_->fingerprint = id.fingerprint;
  if (auto r = security::configure_tls_server(p_->tls.native_handle(), id.key.get(), id.certificate.get()); !r)
    throw std::runtime_error("web: " + r.error().message);
  p_->worker.run_sync([&] {
    p_->db = std::make_unique<storage::Db>(cfg.state_dir / "station.db");
    p_->worker_gate = std::make_unique<services::Gate>(&log);
    // Sessions are the I/O thread's: an account change reaches them there, before the page that answers it.
    auto sessions_end = [&io, sessions = &p_->sessions](const std::string& account, const std::string& why) {
      asio::post(io, [sessions, account, why] { sessions->end_account(account, why); });
    };
    p_->accounts = std::make_unique<services::AccountsService>(*p_->worker_gate, *p_->db, cfg.accounts,
                                                               services::AccountsService::Now{},
                                                               security::Argon2Params{}, sessions_end);
    p_->pin = std::make_unique<services::CommissioningPinService>(*p_->worker_gate, *p_->db, cfg.accounts);
  });
  bool no_accounts = false;
  p_->worker.run_sync([&] { no_accounts = p_->accounts->empty(); });
  if (no_accounts)
    log::warn("web", "no maintenance account yet: create the first one with `chargeguard accounts init --config FILE`");
  p_->app = std::make_unique<web::WebApp>(io, p_->io_gate, p_->sessions, p_->worker, *p_->accounts, *p_->pin,
                                          std::move(dashboard), p_->recent.get(), cfg.identity, services);
  const asio::ip::tcp::endpoint where(asio::ip::make_address(listen->first), listen->second);
  try {
    p_->server = std::make_unique<web::Server>(
        io, p_->tls, where,
        [app = p_->app.get()](web::Request r, web::Server::Reply reply) { app->handle(std::move(r), std::move(reply)); },
        [app = p_->app.get()](const web::Request& head) { return app->stream(head); });
  } catch (const std::exception& e) {
    throw std::runtime_error("web: cannot listen on " + cfg.web.listen + ": " + e.what());
  }
}

WebStation::~WebStation() {
  stop();
  p_->worker.run_sync([&] {
    p_->pin.reset();
    p_->accounts.reset();
    p_->worker_gate.reset();
    p_->db.reset();
  });
  p_->worker.stop();
}

void WebStation::start() {
  p_->app->refresh_pin_state();
  p_->server->start();
  log::info("web", "maintenance web UI on https://", p_->listen, "/ (certificate SHA-256 ", p_->fingerprint, ")");
}
void WebStation::stop() {
  if (p_->server) p_->server->stop();
}
void WebStation::tick() {
  if (++p_->ticks % 10 == 0) p_->sessions.sweep();
  if (p_->ticks % 60 == 0) p_->app->refresh_pin_state();
}
const std::string& WebStation::fingerprint() const { return p_->fingerprint; }
std::shared_ptr<web::RecentEvents> WebStation::recent() { return p_->recent; }

namespace {

// A console command that creates a credential with the station stopped: the
// state lock, the audit log, the database and a Gate for `make`, whose secret
// goes alone to stdout, once (the label); `announce` goes to stderr.
// Exit 3 when the credential exists already.
int print_new_secret(const config::Config& cfg, const services::PolicyFn& policy,
                     const std::function<Result<std::string>(services::Gate&, storage::Db&)>& make,
                     std::string_view announce) {
  const int lock = prepare_state_dir(cfg);
  if (lock < 0) return 1;
  int rc = 0;
  try {
    auto keys = open_configured_key_store(cfg);
    auto log = audit::AuditLog::open(cfg.state_dir / "audit", *keys);
    storage::Db db(cfg.state_dir / "station.db");
    services::Gate gate(log.get(), policy);
    if (auto secret = make(gate, db)) {
      std::cerr << announce;
      std::cout << *secret << std::endl;
    } else {
      std::cerr << "error: " << secret.error().message << "\n";
      rc = secret.error().code == Errc::Conflict ? 3 : 1;
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    rc = 1;
  }
  ::close(lock);
  return rc;
}

}  // namespace

// REQ: AUTH-4 — the label: the password alone on stdout, once.
int accounts_init(const config::Config& cfg, const services::PolicyFn& policy) {
  return print_new_secret(
      cfg, policy,
      [&](services::Gate& gate, storage::Db& db) {
        return services::AccountsService(gate, db, cfg.accounts).init(local_admin());
      },
      "Created the maintenance account 'admin'. Its initial password follows on standard output, once;\n"
      "it opens only the password change at the first login (https://" + cfg.web.listen + "/).\n");
}

// REQ: AUTH-9 — the station's own commissioning PIN, alone on stdout, once.
int pin_init(const config::Config& cfg, const services::PolicyFn& policy) {
  return print_new_secret(
      cfg, policy,
      [&](services::Gate& gate, storage::Db& db) {
        return services::CommissioningPinService(gate, db, cfg.accounts).init(local_admin());
      },
      "Created this station's commissioning PIN. It follows on standard output, once; it is a default\n"
      "and must be replaced (web UI, Commissioning PIN page: https://" + cfg.web.listen + "/pin).\n");
}

int web_print_routes() {
  for (const auto& r : web::WebApp::routes()) {
    const char* access = r.access == web::Access::Public ? "public" : r.access == web::Access::Login ? "login" : "session";
    boost::json::object o{{"method", r.method}, {"path", r.path}, {"access", access},
                          {"operation", r.op ? policy::to_string(*r.op) : "(service)"}, {"activity", r.activity}};
    std::cout << boost::json::serialize(o) << "\n";
  }
  return 0;
}

int web_show_cert(const config::Config& cfg) {
  auto cert = security::load_web_certificate(cfg.state_dir);
  if (!cert) {
    // No certificate yet: make it now (the station must be stopped for that).
    const int lock = prepare_state_dir(cfg);
    if (lock < 0) return 1;
    try {
      auto keys = open_configured_key_store(cfg);
      auto id = security::ensure_web_identity(*keys, cfg.state_dir, config::parse_listen(cfg.web.listen)->first,
                                              cfg.identity);
      cert = std::move(id.certificate);
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      ::close(lock);
      return 1;
    }
    ::close(lock);
  }
  const auto s = security::summarize(cert.get());
  std::cout << "SHA-256 fingerprint: " << s.sha256_fingerprint << "\n"
            << "subject: " << s.common_name << "\n"
            << "valid: " << clock::format_rfc3339(s.not_before) << " to " << clock::format_rfc3339(s.not_after) << "\n"
            << "listen: https://" << cfg.web.listen << "/\n";
  return 0;
}

}  // namespace cg::app
