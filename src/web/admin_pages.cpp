// The admin's pages: accounts (AUTH-2, AUTH-10) and sessions (CR 2.6). The
// services ask the policy (ManageAccounts) and write the records.
#include <boost/asio/post.hpp>

#include "web/app.hpp"
#include "web/pages.hpp"

namespace cg::web {

std::string WebApp::render_accounts(const services::SessionInfo& s, const std::vector<services::AccountInfo>& list,
                                    std::string_view message, std::string_view kind) const {
  std::string b;
  if (!message.empty()) b += kind == "raw" ? std::string(message) : notice(kind, message);
  b += "<section><table><thead><tr><th>User</th><th>Role</th><th>State</th><th>Last login</th><th>Actions</th></tr>"
       "</thead><tbody>";
  for (const auto& a : list) {
    std::string state = a.enabled ? "enabled" : "disabled";
    if (a.must_change) state += ", initial password";
    if (a.locked_until) state += ", locked until " + when(a.locked_until);
    b += "<tr><td>" + html(a.name) + "</td><td>" + std::string(services::account_role_name(a.role)) + "</td><td>" +
         html(state) + "</td><td>" + html(when(a.last_login_at));
    if (!a.last_login_addr.empty()) b += " from " + html(a.last_login_addr);
    b += "</td><td class=\"row\">";
    const auto action = [&](std::string_view what, std::string_view label, std::string_view cls) {
      b += "<form method=\"post\" action=\"/accounts\">" + csrf_field(s) +
           "<input type=\"hidden\" name=\"action\" value=\"" + std::string(what) +
           "\"><input type=\"hidden\" name=\"name\" value=\"" + html(a.name) + "\"><button type=\"submit\" class=\"" +
           std::string(cls) + "\">" + std::string(label) + "</button></form>";
    };
    if (a.name != s.principal.name) {
      action("reset", "Reset password", "secondary");
      action(a.enabled ? "disable" : "enable", a.enabled ? "Disable" : "Enable", "secondary");
      action("delete", "Delete", "danger");
    } else {
      b += "<span class=\"muted\">you</span>";
    }
    // AUTH-10: a new user name (also the admin's own: the default 'admin' becomes a person's name).
    b += "<form method=\"post\" action=\"/accounts\" class=\"rename\">" + csrf_field(s) +
         "<input type=\"hidden\" name=\"action\" value=\"rename\"><input type=\"hidden\" name=\"name\" value=\"" +
         html(a.name) + "\"><input type=\"text\" name=\"new_name\" aria-label=\"New user name for " + html(a.name) +
         "\" maxlength=\"32\" required pattern=\"[a-z][a-z0-9._\\-]{0,31}\" autocomplete=\"off\" placeholder=\"new name\">"
         "<button type=\"submit\" class=\"secondary\">Rename</button></form>";
    b += "</td></tr>";
  }
  b += "</tbody></table></section><section><h2>Add an account</h2><form method=\"post\" action=\"/accounts\">" +
       csrf_field(s) +
       "<input type=\"hidden\" name=\"action\" value=\"add\">"
       "<label for=\"name\">User name</label><input type=\"text\" id=\"name\" name=\"name\" maxlength=\"32\" required "
       "pattern=\"[a-z][a-z0-9._\\-]{0,31}\" autocomplete=\"off\">"
       "<label for=\"role\">Role</label><select id=\"role\" name=\"role\">"
       "<option value=\"viewer\">viewer — reads the status</option>"
       "<option value=\"engineer\">engineer — configures, updates firmware, reads diagnostics</option>"
       "<option value=\"admin\">admin — accounts and security settings</option></select>"
       "<p><button type=\"submit\">Add account</button></p></form><p class=\"muted\">The station makes an initial "
       "password and shows it once; the new user must change it at the first login.</p></section>";
  return b;
}

void WebApp::accounts_page(Call& c) {
  const services::SessionInfo s = *c.session;
  auto reply = c.reply;
  on_worker(c, [this, s, reply]() -> std::function<void()> {
    auto list = accounts_.list(s.principal);
    return [this, s, list = std::move(list), reply] {
      if (!list) return reply(refused(&s, list.error()));
      reply(html_page(&s, "/accounts", "Accounts", render_accounts(s, *list, {}, {})));
    };
  });
}

void WebApp::accounts_action(Call& c) {
  const services::SessionInfo s = *c.session;
  const std::string action(c.req.field("action")), name(c.req.field("name")), role(c.req.field("role")),
      new_name(c.req.field("new_name"));
  auto reply = c.reply;
  // The service ends the sessions of a disabled, deleted, renamed or reset account (its listener).
  on_worker(c, [this, s, action, name, role, new_name, reply]() -> std::function<void()> {
    std::string message, kind = "ok";
    Result<void> outcome;
    if (action == "add") {
      const auto r = services::parse_account_role(role);
      auto pw = r ? accounts_.add(s.principal, name, *r)
                  : Result<std::string>(fail(Errc::InvalidArgument, "the role must be admin, engineer or viewer"));
      if (pw) {
        kind = "raw";
        message = "<div class=\"notice ok\" role=\"status\">Account <strong>" + html(name) +
                  "</strong> added. Its initial password, shown only now: <span class=\"secret\" id=\"initial-password\">" +
                  html(*pw) + "</span></div>";
      } else {
        outcome = pw.error();
      }
    } else if (action == "reset") {
      auto pw = accounts_.reset_password(s.principal, name);
      if (pw) {
        kind = "raw";
        message = "<div class=\"notice ok\" role=\"status\">New initial password of <strong>" + html(name) +
                  "</strong>, shown only now: <span class=\"secret\" id=\"initial-password\">" + html(*pw) +
                  "</span>. Its sessions were ended.</div>";
      } else {
        outcome = pw.error();
      }
    } else if (action == "enable" || action == "disable") {
      outcome = accounts_.set_enabled(s.principal, name, action == "enable");
      message = "Account " + name + (action == "enable" ? " enabled." : " disabled; its sessions were ended.");
    } else if (action == "delete") {
      outcome = accounts_.remove(s.principal, name);
      message = "Account " + name + " deleted; its sessions were ended.";
    } else if (action == "rename") {
      outcome = accounts_.rename(s.principal, name, new_name);
      message = "Account " + name + " is now " + new_name + "; its sessions were ended" +
                (name == s.principal.name ? std::string(" (yours too: log in with the new name)") : "") + ".";
    } else {
      outcome = fail(Errc::InvalidArgument, "unknown action");
    }
    if (!outcome) {
      message = outcome.error().message;
      kind = "error";
    }
    auto list = accounts_.list(s.principal);
    const Errc code = outcome ? Errc::Internal : outcome.error().code;
    const bool denied = !outcome && code == Errc::Denied;
    return [this, s, message, kind, list = std::move(list), denied, outcome, code, reply] {
      if (denied || !list) return reply(refused(&s, denied ? outcome.error() : list.error()));
      reply(html_page(&s, "/accounts", "Accounts", render_accounts(s, *list, message, kind),
                           outcome ? 200 : http_status(code)));
    };
  });
}

void WebApp::sessions_page(Call& c) {
  const services::SessionInfo& s = *c.session;
  auto list = sessions_.list(s.principal);
  if (!list) return c.reply(refused(&s, list.error()));
  std::string b = "<section><table><thead><tr><th>User</th><th>Role</th><th>Address</th><th>Since</th>"
                  "<th>Last action</th><th></th></tr></thead><tbody>";
  for (const auto& x : *list) {
    b += "<tr><td>" + html(x.principal.name) + "</td><td>" +
         std::string(services::account_role_name(x.principal.role)) + "</td><td>" + html(x.address) + "</td><td>" +
         html(when(x.created_at)) + "</td><td>" + html(when(x.last_activity)) + "</td><td>";
    if (x.handle == s.handle) {
      b += "<span class=\"muted\">this session</span>";
    } else {
      b += "<form method=\"post\" action=\"/sessions\">" + csrf_field(s) +
           "<input type=\"hidden\" name=\"session\" value=\"" + html(x.handle) +
           "\"><button type=\"submit\" class=\"danger\">End session</button></form>";
    }
    b += "</td></tr>";
  }
  b += "</tbody></table></section>";
  c.reply(html_page(&s, "/sessions", "Sessions", b));
}

void WebApp::end_session(Call& c) {
  const services::SessionInfo& s = *c.session;
  auto r = sessions_.end(s.principal, c.req.field("session"));
  if (!r) return c.reply(refused(&s, r.error()));
  c.reply(Response::redirect("/sessions"));
}

}  // namespace cg::web
