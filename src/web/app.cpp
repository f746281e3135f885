// REQ: AUTH-1, AUTH-4, AUTH-5, AUTH-6, AUTH-7, AUTHZ-1, NET-4 — see app.hpp.
#include "web/app.hpp"

#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "core/log.hpp"
#include "services/password_policy.hpp"
#include "web/pages.hpp"

namespace cg::web {
namespace asio = boost::asio;
using policy::Operation;

void RecentEvents::add(const audit::RecordView& r) {
  std::lock_guard lock(mu_);
  items_.push_front({r.time, std::string(audit::info(r.type).name), std::string(audit::to_string(r.outcome))});
  if (items_.size() > 12) items_.pop_back();
}

std::vector<RecentEvents::Item> RecentEvents::items() const {
  std::lock_guard lock(mu_);
  return {items_.begin(), items_.end()};
}

WebApp::WebApp(asio::io_context& io, services::Gate& gate, services::SessionService& sessions, AuthWorker& worker,
               services::AccountsService& accounts, services::CommissioningPinService& pin, DashboardFn dashboard,
               const RecentEvents* recent, std::string station, WebServices services)
    : io_(io),
      gate_(gate),
      sessions_(sessions),
      worker_(worker),
      accounts_(accounts),
      pin_(pin),
      dashboard_(std::move(dashboard)),
      recent_(recent),
      station_(std::move(station)),
      services_(services) {}

const std::vector<WebApp::Route>& WebApp::table() {
  using A = Access;
  static const std::vector<Route> t{
      {{"GET", "/static/app.css", A::Public, std::nullopt, false}, &WebApp::stylesheet},
      {{"GET", "/login", A::Public, std::nullopt, false}, &WebApp::login_page},
      {{"POST", "/login", A::Public, std::nullopt, false}, &WebApp::login},
      {{"POST", "/logout", A::Login, std::nullopt, true}, &WebApp::logout},
      {{"GET", "/password", A::Login, std::nullopt, true}, &WebApp::password_page},
      {{"POST", "/password", A::Login, std::nullopt, true}, &WebApp::change_password},
      {{"GET", "/", A::Session, Operation::ReadStatus, true}, &WebApp::dashboard},
      {{"GET", "/api/status", A::Session, Operation::ReadStatus, false}, &WebApp::api_status},
      {{"GET", "/accounts", A::Session, std::nullopt, true}, &WebApp::accounts_page},
      {{"POST", "/accounts", A::Session, std::nullopt, true}, &WebApp::accounts_action},
      {{"GET", "/sessions", A::Session, std::nullopt, true}, &WebApp::sessions_page},
      {{"POST", "/sessions", A::Session, std::nullopt, true}, &WebApp::end_session},
      {{"GET", "/log", A::Session, std::nullopt, true}, &WebApp::log_page},
      {{"POST", "/log", A::Session, std::nullopt, true}, &WebApp::log_download},
      {{"GET", "/configuration", A::Session, std::nullopt, true}, &WebApp::configuration_page},
      {{"POST", "/configuration", A::Session, std::nullopt, true}, &WebApp::configuration_set},
      {{"GET", "/certificates", A::Session, std::nullopt, true}, &WebApp::certificates_page},
      {{"POST", "/certificates", A::Session, std::nullopt, true}, &WebApp::certificates_action},
      {{"GET", "/firmware", A::Session, std::nullopt, true}, &WebApp::firmware_page},
      // An upload: the server streams its body (WebApp::stream); this entry only
      // answers what did not come as one.
      {{"POST", "/firmware", A::Session, std::nullopt, true}, &WebApp::firmware_post},
      {{"GET", "/static/upload.js", A::Public, std::nullopt, false}, &WebApp::upload_js},
      {{"POST", "/restart", A::Session, std::nullopt, true}, &WebApp::restart},
      {{"GET", "/pin", A::Session, Operation::ManageSecuritySettings, true}, &WebApp::pin_page},
      {{"POST", "/pin", A::Session, std::nullopt, true}, &WebApp::pin_action},
  };
  return t;
}

std::vector<RouteInfo> WebApp::routes() {
  std::vector<RouteInfo> out;
  for (const auto& r : table()) out.push_back(r.info);
  return out;
}

Response WebApp::html_page(const services::SessionInfo* s, std::string_view active, std::string_view title,
                           std::string_view body, unsigned status) const {
  Response r;
  r.status = status;
  r.body = page(Frame{s, station_, std::string(active)}, title, body);
  return r;
}

unsigned http_status(Errc code) {
  switch (code) {
    case Errc::Denied: return 403;
    case Errc::NotFound: return 404;
    case Errc::Conflict: return 409;
    case Errc::Storage: case Errc::Internal: case Errc::Unavailable: return 500;
    default: return 400;
  }
}

Response WebApp::refused(const services::SessionInfo* s, const Error& e) const {
  const unsigned status = http_status(e.code);
  const char* title = status == 403 ? "Not permitted" : status == 404 ? "Not found" : status == 500 ? "Station error"
                                                                                                    : "Not possible";
  std::string body = notice("error", e.code == Errc::Denied
                                         ? "Your role does not allow this (" + e.message + "). The attempt was recorded."
                                         : e.message);
  body += "<p><a href=\"/\">Back to the dashboard</a></p>";
  return html_page(s, "", title, body, status);
}

const WebApp::Route* WebApp::find(const Request& req, bool& path_known) {
  const Route* route = nullptr;
  path_known = false;
  for (const auto& r : table()) {
    if (r.info.path != req.path) continue;
    path_known = true;
    if (r.info.method == req.method) route = &r;
  }
  return route;
}

std::optional<Response> WebApp::gatekeep(const Request& req, const Route* route, bool path_known,
                                         std::optional<services::SessionInfo>& session) {
  // NET-4: a POST that the browser says another site made is refused (CSRF, login CSRF).
  if (req.method == "POST" && req.cross_site)
    return html_page(nullptr, "", "Refused", notice("error", "This form was sent from another site."), 403);
  if (route && route->info.access == Access::Public) return std::nullopt;

  // Every other path needs a session, even to learn whether it exists.
  auto checked = sessions_.check(req.session_cookie, req.peer, route ? route->info.activity : true);
  if (!checked.session) {
    if (req.path.starts_with("/api/")) {
      Response r;
      r.status = 401;
      r.content_type = "application/json";
      r.body = R"({"error":"no valid session: log in"})";
      return r;
    }
    // "ended" names a fixed message on the login page (nothing is reflected).
    std::string to = "/login";
    if (!checked.ended.empty()) to += "?ended=" + checked.ended;
    Response r = Response::redirect(to);
    if (!req.session_cookie.empty())
      r.headers.emplace_back("Set-Cookie", std::string(kSessionCookie) + "=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    return r;
  }
  session = std::move(checked.session);
  const services::SessionInfo& s = *session;
  if (!route) {
    if (path_known) {
      Response r = html_page(&s, "", "Method not allowed", notice("error", "This page does not take that method."), 405);
      r.headers.emplace_back("Allow", "GET, POST");
      return r;
    }
    return html_page(&s, "", "Not found", notice("error", "There is no such page.") +
                                              "<p><a href=\"/\">Back to the dashboard</a></p>", 404);
  }
  if (req.method == "POST" && !sessions_.csrf_ok(s, req.field("csrf"))) {
    return html_page(&s, "", "Refused",
                     notice("error", "The form was stale or not sent by this page (CSRF token mismatch). "
                                     "Reload the page and try again."),
                     403);
  }
  // AUTH-4: with an initial password only the password change (and logout) is open.
  if (s.must_change && route->info.access == Access::Session) return Response::redirect("/password");
  if (route->info.op) {
    if (auto a = gate_.admit(s.principal, *route->info.op, req.method + " " + req.path); !a) return refused(&s, a.error());
  }
  return std::nullopt;
}

void WebApp::handle(Request req, Server::Reply reply) {
  Call c{std::move(req), std::nullopt, std::move(reply)};
  bool known = false;
  const Route* route = find(c.req, known);
  if (auto refusal = gatekeep(c.req, route, known, c.session)) return c.reply(std::move(*refusal));
  (this->*route->fn)(c);
}

std::optional<Response> WebApp::admit_post(const Request& req, std::optional<services::SessionInfo>& session) {
  bool known = false;
  const Route* route = find(req, known);
  return gatekeep(req, route, known, session);
}

void WebApp::on_worker(Call& c, std::function<std::function<void()>()> job) {
  auto reply = c.reply;
  const bool queued = worker_.submit(c.req.peer, [this, reply, job = std::move(job)] {
    std::function<void()> finish;
    try {
      finish = job();
    } catch (const std::exception& e) {
      log::error("web", "request failed: ", e.what());
      finish = [this, reply] { reply(refused(nullptr, fail(Errc::Internal, "The station could not do this now."))); };
    }
    asio::post(io_, std::move(finish));
  });
  if (!queued) {
    Response r = html_page(c.session ? &*c.session : nullptr, "", "Busy",
                           notice("error", "The station is busy checking other logins. Try again in a few seconds."),
                           503);
    r.headers.emplace_back("Retry-After", "5");
    reply(std::move(r));
  }
}

// ---- public

void WebApp::stylesheet(Call& c) {
  Response r;
  r.content_type = "text/css; charset=utf-8";
  r.body = std::string(web::stylesheet());
  r.cacheable = true;
  c.reply(std::move(r));
}

std::string WebApp::render_login(std::string_view message, std::string_view kind, std::string_view name) const {
  std::string b = "<section class=\"login\">";
  if (!message.empty()) b += notice(kind, message);
  b += "<form method=\"post\" action=\"/login\">"
       "<label for=\"username\">User name</label>"
       "<input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" maxlength=\"32\" required "
       "autofocus value=\"" + html(name) + "\">"
       "<label for=\"password\">Password</label>"
       "<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" maxlength=\"128\" "
       "required><p><button type=\"submit\">Log in</button></p></form>"
       "<p class=\"muted\">The first password of the <code>admin</code> account is on the station's label "
       "(<code>chargeguard accounts init</code>). It must be changed at the first login.</p></section>";
  return b;
}

void WebApp::login_page(Call& c) {
  // A valid session goes on to the dashboard.
  if (sessions_.check(c.req.session_cookie, c.req.peer, false).session) return c.reply(Response::redirect("/"));
  const auto ended = c.req.param("ended");
  std::string msg;
  if (ended == "idle") msg = "Your session ended after a period without activity. Please log in again.";
  else if (ended == "expired") msg = "Your session reached its maximum duration. Please log in again.";
  else if (ended == "address") msg = "Your session was used from another network address and was ended. Please log in again.";
  else if (ended == "ended") msg = "Your session was ended (by an administrator, or a change of your account or password). Please log in again.";
  else if (ended == "logout") msg = "You are logged out.";
  c.reply(html_page(nullptr, "/login", "Log in", render_login(msg, "info")));
}

// REQ: AUTH-1, AUTH-5, AUTH-7
void WebApp::login(Call& c) {
  std::string name(c.req.field("username").substr(0, 64));
  std::string password(c.req.field("password"));
  if (name.empty() || password.empty())
    return c.reply(html_page(nullptr, "/login", "Log in", render_login("Enter your user name and password.", "error", name), 400));
  auto reply = c.reply;
  const std::string peer = c.req.peer;
  on_worker(c, [this, name, password = std::move(password), peer, reply]() mutable -> std::function<void()> {
    auto r = accounts_.login(name, password, peer);
    OPENSSL_cleanse(password.data(), password.size());
    return [this, r = std::move(r), peer, name, reply] {
      if (r.status != services::LoginStatus::Accepted) {
        const unsigned status = r.status == services::LoginStatus::Locked ? 429 : 401;
        return reply(html_page(nullptr, "/login", "Log in", render_login(r.message, "error", name), status));
      }
      auto opened = sessions_.open(r.principal, peer, r.must_change, r.password_expired, r.history);
      Response resp = Response::redirect(r.must_change ? "/password" : "/");
      resp.headers.emplace_back("Set-Cookie", std::string(kSessionCookie) + "=" + opened.token +
                                                  "; Path=/; Secure; HttpOnly; SameSite=Strict");
      reply(std::move(resp));
    };
  });
}

void WebApp::logout(Call& c) {
  sessions_.logout(c.req.session_cookie);
  Response r = Response::redirect("/login?ended=logout");
  r.headers.emplace_back("Set-Cookie", std::string(kSessionCookie) + "=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
  c.reply(std::move(r));
}

// ---- the password change (AUTH-3, AUTH-4, AUTH-10)

std::string WebApp::render_password(const services::SessionInfo& s, std::string_view message) const {
  std::string b;
  if (s.must_change)
    b += notice("warn", "This is an initial password. Choose your own password before you continue: nothing else "
                        "is available until then.");
  if (!message.empty()) b += message;
  b += "<section><form method=\"post\" action=\"/password\">" + csrf_field(s) +
       // A hidden user name lets password managers file the new password under the right account.
       "<input type=\"text\" name=\"username\" autocomplete=\"username\" value=\"" + html(s.principal.name) +
       "\" hidden readonly>"
       "<label for=\"current\">Current password</label>"
       "<input type=\"password\" id=\"current\" name=\"current\" autocomplete=\"current-password\" maxlength=\"128\" required>"
       "<label for=\"new\">New password</label>"
       "<input type=\"password\" id=\"new\" name=\"new\" autocomplete=\"new-password\" maxlength=\"128\" required>"
       "<label for=\"confirm\">New password again</label>"
       "<input type=\"password\" id=\"confirm\" name=\"confirm\" autocomplete=\"new-password\" maxlength=\"128\" required>"
       "<p><button type=\"submit\">Change password</button></p></form>"
       "<p class=\"muted\">8 to 31 characters with at least one digit, one upper-case letter, one lower-case letter "
       "and one of <code>" + html(services::kPasswordSpecials) + "</code>; not containing your user name; not a "
       "common password.</p></section>";
  return b;
}

void WebApp::password_page(Call& c) {
  c.reply(html_page(&*c.session, "/password", "Change password", render_password(*c.session, {})));
}

void WebApp::change_password(Call& c) {
  const services::SessionInfo s = *c.session;
  std::string current(c.req.field("current")), next(c.req.field("new"));
  if (next != c.req.field("confirm"))
    return c.reply(html_page(&s, "/password", "Change password",
                             render_password(s, notice("error", "The two new passwords differ.")), 400));
  auto reply = c.reply;
  const std::string peer = c.req.peer;
  on_worker(c, [this, s, current = std::move(current), next = std::move(next), peer, reply]() mutable
                   -> std::function<void()> {
    auto r = accounts_.change_password(s.principal, current, next, peer);
    OPENSSL_cleanse(current.data(), current.size());
    OPENSSL_cleanse(next.data(), next.size());
    return [this, s, r = std::move(r), reply]() mutable {
      if (!r) {
        std::string msg;
        const auto& m = r.error().message;
        if (r.error().code == Errc::InvalidArgument) {
          // "The new password needs: a; b; c." as a list, one rule per line.
          const auto colon = m.find(": ");
          msg = "<div class=\"notice error\" role=\"alert\">The new password was not accepted. It needs:<ul class=\"rules\">";
          std::string_view rest = colon == std::string::npos ? std::string_view(m) : std::string_view(m).substr(colon + 2);
          if (rest.ends_with('.')) rest.remove_suffix(1);
          while (!rest.empty()) {
            const auto semi = rest.find("; ");
            msg += "<li>" + html(rest.substr(0, semi)) + "</li>";
            rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 2);
          }
          msg += "</ul></div>";
        } else {
          msg = notice("error", m);
        }
        const unsigned status = r.error().code == Errc::Denied ? 403 : 400;
        return reply(html_page(&s, "/password", "Change password", render_password(s, msg), status));
      }
      sessions_.password_changed(s.principal.name, s.handle);
      auto now = s;
      now.must_change = false;
      now.password_expired = false;
      reply(html_page(&now, "/password", "Change password",
                      notice("ok", "Your password was changed. Other sessions of your account were ended.") +
                          "<p><a href=\"/\">Continue to the dashboard</a></p>"));
    };
  });
}

// ---- dashboard (ReadStatus)

void WebApp::dashboard(Call& c) {
  const services::SessionInfo& s = *c.session;
  const DashboardData d = dashboard_ ? dashboard_() : DashboardData{};
  std::string b;
  // AUTH-9: the commissioning PIN's prompt, for those who may change it.
  if (pin_state_ && gate_.allows(s.principal, Operation::ManageSecuritySettings)) {
    const auto& p = *pin_state_;
    if (!p.set)
      b += notice("warn", "This station has no commissioning PIN: the commissioning channel is closed. Set one on the "
                          "Commissioning PIN page.");
    else if (p.is_default)
      b += notice("warn", "The commissioning PIN is still the default from the label. Replace it on the "
                          "Commissioning PIN page.");
    else if (p.renewal_due)
      b += notice("warn", "The commissioning PIN is older than the station's renewal period. Renew it on the "
                          "Commissioning PIN page.");
  }
  // AUTH-7: the previous login and the failures since.
  const auto& h = s.history;
  b += "<section><h2>Your last login</h2><dl><dt>Previous login</dt><dd>" + html(when(h.previous_at));
  if (!h.previous_address.empty()) b += " from " + html(h.previous_address);
  b += "</dd><dt>Failed attempts since</dt><dd>" + std::to_string(h.failures);
  if (h.failures > 0) b += " (last " + html(when(h.last_failure_at)) + " from " + html(h.last_failure_address) + ")";
  b += "</dd></dl>";
  if (h.failures > 0) b += notice("warn", "There were failed login attempts on your account since your last login.");
  b += "</section><div class=\"grid\"><section><h2>Station</h2><dl>";
  b += "<dt>Identity</dt><dd>" + html(d.identity) + "</dd><dt>Model</dt><dd>" + html(d.model) +
       "</dd><dt>Firmware</dt><dd>" + html(d.firmware_version) + "</dd></dl></section>";
  b += "<section><h2>CSMS</h2><dl><dt>Connection</dt><dd>" + std::string(d.online ? "online" : "offline") +
       "</dd><dt>Endpoint</dt><dd>" + html(d.csms_url) + "</dd><dt>Security profile</dt><dd>" +
       std::to_string(d.security_profile) + "</dd><dt>Queued messages</dt><dd>" + std::to_string(d.queued_messages) +
       "</dd></dl></section></div>";
  b += "<section><h2>Charging points</h2><table><thead><tr><th>EVSE</th><th>Status</th><th>Power</th><th>Energy</th>"
       "<th>Transaction</th></tr></thead><tbody>";
  for (const auto& e : d.evses) {
    b += "<tr><td>" + std::to_string(e.id) + "</td><td>" + html(e.status) + "</td><td>" +
         std::to_string(static_cast<long long>(e.power_w)) + " W</td><td>" +
         std::to_string(static_cast<long long>(e.energy_wh)) + " Wh</td><td>" + html(e.transaction) + "</td></tr>";
  }
  b += "</tbody></table></section>";
  b += "<div class=\"grid\"><section><h2>Certificates</h2><table><thead><tr><th>Use</th><th>Subject</th><th>Expires</th>"
       "</tr></thead><tbody>";
  for (const auto& cert : d.certificates) {
    std::string expires = cert.expires;  // RFC 3339; a space for the 'T' lets the cell wrap between date and time
    if (expires.size() > 10 && expires[10] == 'T') expires[10] = ' ';
    b += "<tr><td>" + html(cert.use) + "</td><td>" + html(cert.subject) + "</td><td>" + html(expires) + "</td></tr>";
  }
  b += "</tbody></table><p class=\"muted\">This page's certificate (SHA-256): <code>" + html(d.web_fingerprint) +
       "</code></p></section>";
  b += "<section><h2>Firmware slots</h2><table><thead><tr><th>Slot</th><th>Version</th><th>State</th></tr></thead><tbody>";
  for (const auto& sl : d.firmware_slots)
    b += "<tr><td>" + html(sl.name) + "</td><td>" + html(sl.version) + "</td><td>" + html(sl.state) + "</td></tr>";
  if (d.firmware_slots.empty()) b += "<tr><td colspan=\"3\" class=\"muted\">not started by the boot stage</td></tr>";
  b += "</tbody></table></section></div>";
  // AUTHZ-3: audit information for administrators only (the policy decides; not
  // a request of the user, so a viewer's dashboard writes no AccessDenied record).
  if (recent_ && gate_.allows(s.principal, Operation::ReadSecurityLog)) {
    b += "<section><h2>Recent security events</h2><table><thead><tr><th>Time</th><th>Event</th><th>Outcome</th></tr>"
         "</thead><tbody>";
    for (const auto& e : recent_->items())
      b += "<tr><td>" + html(e.time) + "</td><td>" + html(e.type) + "</td><td>" + html(e.outcome) + "</td></tr>";
    b += "</tbody></table></section>";
  }
  c.reply(html_page(&s, "/", "Dashboard", b));
}

void WebApp::api_status(Call& c) {
  const DashboardData d = dashboard_ ? dashboard_() : DashboardData{};
  boost::json::array evses;
  for (const auto& e : d.evses)
    evses.push_back({{"id", e.id}, {"status", e.status}, {"powerW", e.power_w}, {"energyWh", e.energy_wh}});
  Response r;
  r.content_type = "application/json";
  r.body = boost::json::serialize(boost::json::object{{"online", d.online}, {"evses", std::move(evses)}});
  c.reply(std::move(r));
}

}  // namespace cg::web
