// The maintenance web UI's routes (AUTH-1…AUTH-7, AUTH-10, AUTHZ-1, NET-4).
// A route translates: it checks the session (web front end's job: who is
// this), names the operation, and calls the service; the one policy decides
// (Gate::admit — at the route for pages that only read, inside the service
// for everything the service does) and the service writes the audit record.
//
// Every route is in one table (routes()); a test requests each without a
// session, with a viewer's session and with a stale CSRF token.
//   Public  no session needed (login page, stylesheet)
//   Login   a session, also during the forced password change (AUTH-4)
//   Session a session whose password is not an initial one
// Without a valid session a page answers a redirect to the login page and an
// /api/ route 401, never data. POSTs need the session's CSRF token and are
// refused when the browser says another site sent them.
#pragma once
#include <boost/asio/io_context.hpp>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "audit/audit_log.hpp"
#include "policy/policy.hpp"
#include "services/accounts.hpp"
#include "services/availability.hpp"
#include "services/certificates.hpp"
#include "services/commissioning_pin.hpp"
#include "services/firmware.hpp"
#include "services/identity.hpp"
#include "services/settings.hpp"
#include "services/security_log.hpp"
#include "services/gate.hpp"
#include "services/sessions.hpp"
#include "web/auth_worker.hpp"
#include "web/http.hpp"
#include "web/server.hpp"

namespace cg::web {

// What the dashboard shows; the daemon gathers it on the I/O thread.
struct DashboardData {
  std::string identity, model, firmware_version, csms_url;
  int security_profile = 0;
  bool online = false;
  std::size_t queued_messages = 0;
  struct Evse {
    int id = 0;
    std::string status, state;
    double power_w = 0, energy_wh = 0;
    std::string transaction;
  };
  std::vector<Evse> evses;
  struct Certificate {
    std::string use, subject, expires;
  };
  std::vector<Certificate> certificates;
  struct Slot {
    std::string name, version, state;
  };
  std::vector<Slot> firmware_slots;
  std::string web_fingerprint;
};
using DashboardFn = std::function<DashboardData()>;

// The last security records for the admin's dashboard, fed by the audit log's
// listener (any thread).
class RecentEvents {
 public:
  void add(const audit::RecordView& r);
  struct Item {
    std::string time, type, outcome;
  };
  std::vector<Item> items() const;

 private:
  mutable std::mutex mu_;
  std::deque<Item> items_;
};

enum class Access { Public, Login, Session };

// The HTTP status of a service's refusal: 403 denied, 404 not found, 409
// conflict (locked, exists already), 500 the station's own failure, else 400.
unsigned http_status(Errc code);

// The services of the I/O thread the routes call (null: that part is absent).
struct WebServices {
  services::SecurityLogService* security_log = nullptr;
  services::FirmwareService* firmware = nullptr;  // under the boot stage only
  std::uint64_t firmware_max_bytes = 0;           // [firmware] max_image_mib
  services::SettingsService* settings = nullptr;
  std::function<void()> heartbeat_changed;        // the OCPP session re-arms its heartbeat
  services::CertificateService* certificates = nullptr;
  services::AvailabilityService* availability = nullptr;
  services::IdentityService* identity = nullptr;
  // Restarts the station (under the boot stage: a reboot) a moment after the answer is out.
  std::function<void()> restart;
};

struct RouteInfo {
  std::string_view method, path;
  Access access;
  std::optional<policy::Operation> op;  // asked at the route; nullopt: the service asks
  bool activity;                        // a user action (polling is not, AUTH-6)
};

class WebApp {
 public:
  // `accounts` and `pin` live on the worker thread: only jobs submitted to `worker` use them.
  WebApp(boost::asio::io_context& io, services::Gate& gate, services::SessionService& sessions, AuthWorker& worker,
         services::AccountsService& accounts, services::CommissioningPinService& pin, DashboardFn dashboard,
         const RecentEvents* recent, std::string station, WebServices services = {});

  ~WebApp();
  void handle(Request req, Server::Reply reply);
  // Upload routes: the server asks after the head of every POST (web/firmware_pages.cpp).
  std::optional<StreamStart> stream(const Request& head);
  static std::vector<RouteInfo> routes();
  // Reads the commissioning PIN's state on the worker for the admins' dashboard
  // prompt (AUTH-9); the station calls it at start and every minute.
  void refresh_pin_state();

  // One firmware upload in progress (web/firmware_pages.cpp).
  struct Upload;
  void finish_upload(const std::shared_ptr<Upload>& u, bool complete, const std::string& error,
                     std::function<void(Response)> reply);

  struct Call {
    Request req;
    std::optional<services::SessionInfo> session;
    Server::Reply reply;
  };

 private:
  using Fn = void (WebApp::*)(Call&);
  struct Route {
    RouteInfo info;
    Fn fn;
  };
  static const std::vector<Route>& table();
  static const Route* find(const Request& req, bool& path_known);
  // Cross-site, session, CSRF, forced change, the route's operation: the refusal, or nothing.
  std::optional<Response> gatekeep(const Request& req, const Route* route, bool path_known,
                                   std::optional<services::SessionInfo>& session);

  // web/app.cpp
  void stylesheet(Call& c);
  void login_page(Call& c);
  void login(Call& c);
  void logout(Call& c);
  void password_page(Call& c);
  void change_password(Call& c);
  void dashboard(Call& c);
  void api_status(Call& c);
  // web/admin_pages.cpp
  void accounts_page(Call& c);
  void accounts_action(Call& c);
  void sessions_page(Call& c);
  void end_session(Call& c);
  // web/log_pages.cpp
  void log_page(Call& c);
  void log_download(Call& c);
  // web/config_pages.cpp
  void configuration_page(Call& c);
  void configuration_set(Call& c);
  std::string render_configuration(const services::SessionInfo& s, const std::vector<const core::Variable*>& vars,
                                   std::string_view message) const;
  // web/cert_pages.cpp
  void certificates_page(Call& c);
  void certificates_action(Call& c);
  std::string render_certificates(const services::SessionInfo& s, const std::vector<security::CertificateEntry>& list,
                                  std::string_view message) const;
  // web/firmware_pages.cpp
  void firmware_page(Call& c);
  void firmware_post(Call& c);
  void upload_js(Call& c);
  void restart(Call& c);
  // web/pin_pages.cpp
  void pin_page(Call& c);
  void pin_action(Call& c);
  std::string render_pin(const services::SessionInfo& s, const services::PinStatus& st, std::string_view message) const;

  // The checks of every POST with a session (cross-site, session, CSRF,
  // forced change): the refusal to send, or nothing (and `session` set).
  std::optional<Response> admit_post(const Request& req, std::optional<services::SessionInfo>& session);

  std::string render_login(std::string_view message, std::string_view kind, std::string_view name = {}) const;
  std::string render_password(const services::SessionInfo& s, std::string_view message) const;
  std::string render_accounts(const services::SessionInfo& s, const std::vector<services::AccountInfo>& list,
                              std::string_view message, std::string_view kind) const;
  Response html_page(const services::SessionInfo* s, std::string_view active, std::string_view title,
                     std::string_view body, unsigned status = 200) const;
  Response refused(const services::SessionInfo* s, const Error& e) const;
  // Runs `job` on the worker; its result is finished by `done` on the I/O thread.
  void on_worker(Call& c, std::function<std::function<void()>()> job);

  boost::asio::io_context& io_;
  services::Gate& gate_;
  services::SessionService& sessions_;
  AuthWorker& worker_;
  services::AccountsService& accounts_;
  services::CommissioningPinService& pin_;
  std::optional<services::PinStatus> pin_state_;  // I/O thread; the worker's last reading
  DashboardFn dashboard_;
  const RecentEvents* recent_;
  std::string station_;
  WebServices services_;
  std::set<std::shared_ptr<Upload>> uploads_;
};

}  // namespace cg::web
