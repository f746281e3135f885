// The station's configuration in the browser (the engineer's job; security
// settings the admin's): the writable device-model variables, each with its
// type and limits, changed through the settings service — the same rules,
// checks and audit records as the CSMS's SetVariables.
#include "services/settings.hpp"
#include "web/app.hpp"
#include "web/pages.hpp"

namespace cg::web {
namespace {

std::string label(const core::Variable& v) {
  std::string s = v.component;
  if (!v.component_instance.empty()) s += "[" + v.component_instance + "]";
  if (v.evse) s += " · EVSE " + std::to_string(v.evse) + (v.connector ? "/" + std::to_string(v.connector) : "");
  s += " · " + v.name;
  if (!v.instance.empty()) s += "[" + v.instance + "]";
  return s;
}

std::string number(double d) {
  std::string s = std::to_string(d);
  if (s.find('.') != std::string::npos) {
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
  }
  return s;
}

std::string describe(const core::Variable& v) {
  std::string s(core::to_string(v.type));
  if (v.min || v.max) s += " " + (v.min ? number(*v.min) : "") + "–" + (v.max ? number(*v.max) : "");
  if (!v.unit.empty()) s += " " + v.unit;
  if (!v.values_list.empty()) s += ": " + v.values_list;
  return s;
}

}  // namespace

std::string WebApp::render_configuration(const services::SessionInfo& s, const std::vector<const core::Variable*>& vars,
                                         std::string_view message) const {
  auto& dm = services_.settings->device_model();
  std::string b(message);
  b += "<section><p class=\"muted\">Changes take effect at once and are recorded in the security log. "
       "Security settings (marked) are for administrators, the others for engineers.</p><table><thead><tr>"
       "<th>Setting</th><th>Value</th><th>Type</th></tr></thead><tbody>";
  for (const core::Variable* v : vars) {
    b += "<tr><td>" + html(label(*v));
    if (v->security_relevant) b += " <span class=\"muted\">(security)</span>";
    b += "</td><td>";
    if (v->mutability == core::Mutability::WriteOnly) {
      b += "<span class=\"muted\">write-only: set by the CSMS</span>";
    } else {
      b += "<form method=\"post\" action=\"/configuration\" class=\"row\">" + csrf_field(s) +
           "<input type=\"hidden\" name=\"component\" value=\"" + html(v->component) + "\">"
           "<input type=\"hidden\" name=\"component_instance\" value=\"" + html(v->component_instance) + "\">"
           "<input type=\"hidden\" name=\"evse\" value=\"" + std::to_string(v->evse) + "\">"
           "<input type=\"hidden\" name=\"connector\" value=\"" + std::to_string(v->connector) + "\">"
           "<input type=\"hidden\" name=\"variable\" value=\"" + html(v->name) + "\">"
           "<input type=\"hidden\" name=\"instance\" value=\"" + html(v->instance) + "\">"
           "<input type=\"text\" name=\"value\" aria-label=\"" + html(label(*v)) + "\" maxlength=\"1000\" value=\"" +
           html(dm.current_value(*v)) + "\"><button type=\"submit\" class=\"secondary\">Save</button></form>";
    }
    b += "</td><td class=\"muted\">" + html(describe(*v)) + "</td></tr>";
  }
  b += "</tbody></table></section>";
  return b;
}

void WebApp::configuration_page(Call& c) {
  const services::SessionInfo& s = *c.session;
  if (!services_.settings) return c.reply(refused(&s, fail(Errc::Unavailable, "no settings service")));
  auto vars = services_.settings->report(s.principal, "ConfigurationInventory");  // asks ReadConfiguration
  if (!vars) return c.reply(refused(&s, vars.error()));
  c.reply(html_page(&s, "/configuration", "Configuration", render_configuration(s, *vars, {})));
}

void WebApp::configuration_set(Call& c) {
  const services::SessionInfo& s = *c.session;
  if (!services_.settings) return c.reply(refused(&s, fail(Errc::Unavailable, "no settings service")));
  services::SettingsService::SetItem item;
  item.ref.component = std::string(c.req.field("component"));
  item.ref.component_instance = std::string(c.req.field("component_instance"));
  item.ref.name = std::string(c.req.field("variable"));
  item.ref.instance = std::string(c.req.field("instance"));
  try {
    item.ref.evse = std::stoi(std::string(c.req.field("evse")));
    item.ref.connector = std::stoi(std::string(c.req.field("connector")));
  } catch (const std::exception&) {
    return c.reply(refused(&s, fail(Errc::InvalidArgument, "evse and connector are numbers")));
  }
  const std::string value(c.req.field("value"));
  item.value = value;
  auto r = services_.settings->set(s.principal, {item});
  if (!r) return c.reply(refused(&s, r.error()));
  const auto& o = r->items.front();
  const std::string what = item.ref.component + "." + item.ref.name;
  std::string msg;
  unsigned status = 200;
  switch (o.status) {
    case core::SetStatus::Accepted: msg = notice("ok", "Saved: " + what + " = " + value + "."); break;
    case core::SetStatus::RebootRequired:
      msg = notice("warn", "Saved: " + what + " = " + value + ". It takes effect after a restart.");
      break;
    default:
      status = o.reason == "NoPermission" ? 403 : 400;
      msg = notice("error", "Not saved: " + what + ": " + std::string(core::to_string(o.status)) +
                                (o.reason.empty() ? "" : " (" + o.reason + ")") + (o.info.empty() ? "" : ": " + o.info) + ".");
  }
  if (r->heartbeat_changed && services_.heartbeat_changed) services_.heartbeat_changed();
  auto vars = services_.settings->report(s.principal, "ConfigurationInventory");
  if (!vars) return c.reply(refused(&s, vars.error()));
  c.reply(html_page(&s, "/configuration", "Configuration", render_configuration(s, *vars, msg), status));
}

}  // namespace cg::web
