#include "web/pages.hpp"

#include <ctime>

#include "services/accounts.hpp"
#include "web/http.hpp"

namespace cg::web {
namespace {

struct NavItem {
  const char* path;
  const char* label;
  bool admin_only;
};
constexpr NavItem kNav[] = {
    {"/", "Dashboard", false},
    {"/accounts", "Accounts", true},
    {"/sessions", "Sessions", true},
    {"/configuration", "Configuration", false},
    {"/certificates", "Certificates", true},
    {"/pin", "Commissioning PIN", true},
    {"/firmware", "Firmware", false},
    {"/log", "Security log", true},
    {"/password", "My password", false},
};

}  // namespace

std::string when(std::optional<std::int64_t> t) {
  if (!t) return "never";
  const std::time_t tt = static_cast<std::time_t>(*t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

std::string notice(std::string_view kind, std::string_view text) {
  return "<p class=\"notice " + std::string(kind) + "\" role=\"" + (kind == "error" ? "alert" : "status") + "\">" +
         html(text) + "</p>\n";
}

std::string csrf_field(const services::SessionInfo& s) {
  return "<input type=\"hidden\" name=\"csrf\" value=\"" + html(s.csrf) + "\">";
}

std::string page(const Frame& f, std::string_view title, std::string_view body) {
  std::string h;
  h.reserve(4096 + body.size());
  h += "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
       "<link rel=\"stylesheet\" href=\"/static/app.css\"><title>";
  h += html(title);
  h += " · ";
  h += html(f.station);
  h += "</title></head><body>\n<header><span class=\"brand\">chargeguard</span> <span class=\"station\">";
  h += html(f.station);
  h += "</span>";
  if (f.session) {
    const auto& s = *f.session;
    h += "<nav>";
    if (!s.must_change) {
      for (const auto& n : kNav) {
        if (n.admin_only && s.principal.role != policy::Role::Admin) continue;
        h += "<a href=\"";
        h += n.path;
        h += "\"";
        if (f.active == n.path) h += " aria-current=\"page\"";
        h += ">";
        h += n.label;
        h += "</a>";
      }
    }
    h += "</nav><form method=\"post\" action=\"/logout\" class=\"logout\">" + csrf_field(s) + "<span>" +
         html(s.principal.name) + " (" + std::string(services::account_role_name(s.principal.role)) +
         ")</span> <button type=\"submit\">Log out</button></form>";
  }
  h += "</header>\n<main>\n<h1>";
  h += html(title);
  h += "</h1>\n";
  if (f.session && f.session->password_expired && !f.session->must_change)
    h += notice("warn", "Your password is older than the station's password age limit. Please change it now.");
  h += body;
  h += "</main>\n</body></html>\n";
  return h;
}

std::string_view stylesheet() {
  return R"css(:root{--fg:#1b1f24;--muted:#57606a;--bg:#f6f8fa;--card:#fff;--line:#d0d7de;--accent:#0b5394;--ok:#1a7f37;--err:#b42318;--warn:#9a6700}
*{box-sizing:border-box}body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;flex-wrap:wrap;gap:1rem;align-items:center;padding:.6rem 1.2rem;background:#0d2538;color:#fff}
header a{color:#fff;text-decoration:none;padding:.3rem .6rem;border-radius:4px}header a[aria-current]{background:#ffffff2e}
.brand{font-weight:700}.station{opacity:.8}nav{display:flex;gap:.2rem;flex:1}.logout{display:flex;gap:.6rem;align-items:center;margin:0}
main{max-width:64rem;margin:1.2rem auto;padding:0 1.2rem}h1{font-size:1.5rem;margin:.4rem 0 1rem}h2{font-size:1.15rem;margin:1.4rem 0 .6rem}
section,.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:1rem 1.2rem;margin:0 0 1rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600}label{display:block;margin:.6rem 0 .2rem;font-weight:600}
input[type=text],input[type=password],select,textarea{width:100%;max-width:24rem;padding:.45rem .5rem;border:1px solid var(--line);border-radius:4px;font:inherit}
button{font:inherit;padding:.45rem .9rem;border:1px solid var(--accent);background:var(--accent);color:#fff;border-radius:4px;cursor:pointer}
button.secondary{background:#fff;color:var(--accent)}button.danger{background:var(--err);border-color:var(--err)}
.row{display:flex;gap:.4rem;flex-wrap:wrap;align-items:center}.row form{margin:0}.rename{display:flex;gap:.3rem;margin:.3rem 0 0}.rename input{width:8rem;margin:0}
.notice{padding:.6rem .8rem;border-radius:4px;border:1px solid}.ok{color:var(--ok);border-color:var(--ok);background:#dafbe1}
.error{color:var(--err);border-color:var(--err);background:#ffebe9}.warn{color:var(--warn);border-color:var(--warn);background:#fff8c5}
.info{color:var(--accent);border-color:var(--accent);background:#ddf4ff}ul.rules{margin:.3rem 0 0 1.2rem;padding:0}
.muted{color:var(--muted)}code,.secret{font-family:ui-monospace,monospace;background:#eaeef2;padding:.1rem .3rem;border-radius:3px}
.secret{font-size:1.2rem}.login{max-width:26rem;margin:3rem auto}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(18rem,1fr));gap:1rem}.grid>section{min-width:0;overflow-x:auto}
section>h2:first-child{margin-top:0}code{overflow-wrap:anywhere}td code{font-size:.85rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:0}dt{color:var(--muted)}dd{margin:0}
)css";
}

}  // namespace cg::web
