// The maintenance web UI inside the daemon, and its console commands:
//   chargeguard accounts init --config FILE   the first admin and its initial password (AUTH-4)
//   chargeguard pin init --config FILE        the station's own commissioning PIN (AUTH-9)
//   chargeguard web show-cert --config FILE   the web certificate's SHA-256 fingerprint
// The daemon part builds the authentication worker (its own database
// connection, Gate and AccountsService), the sessions, the routes and the
// HTTPS listener on [web] listen; nothing listens when [web] enabled = false.
// REQ: AUTH-1…AUTH-10, NET-4
#pragma once
#include <boost/asio/io_context.hpp>
#include <memory>

#include "audit/audit_log.hpp"
#include "core/config.hpp"
#include "security/key_store.hpp"
#include "services/gate.hpp"
#include "web/app.hpp"

namespace cg::app {

class WebStation {
 public:
  // Throws (with a message naming the problem) when it cannot listen.
  WebStation(boost::asio::io_context& io, const config::Config& cfg, security::KeyStore& keys,
             audit::AuditLog& log, web::DashboardFn dashboard, web::WebServices services = {});
  ~WebStation();
  void start();
  void stop();
  void tick();  // every second: sessions past their time end
  const std::string& fingerprint() const;
  // Shared: the audit log's listener may outlive this object.
  std::shared_ptr<web::RecentEvents> recent();

  struct Parts;

 private:
  std::unique_ptr<Parts> p_;
};

int accounts_init(const config::Config& cfg, const services::PolicyFn& policy = &policy::authorize);
int pin_init(const config::Config& cfg, const services::PolicyFn& policy = &policy::authorize);
int web_show_cert(const config::Config& cfg);
// The one route table (for tests and reviewers): {"method","path","access","operation","activity"} per line.
int web_print_routes();

}  // namespace cg::app
