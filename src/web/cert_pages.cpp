// The installed root certificates in the browser (COM-6, COM-7): list,
// install a root, remove one — through the certificate service, which asks
// the policy (ManageSecuritySettings: the admin) and writes the records; its
// rules (the last CSMS root, the station's own chain, the crypto policy)
// are the same as for OCPP M03–M05 and `pki install-root`.
#include "core/clock.hpp"
#include "services/certificates.hpp"
#include "web/app.hpp"
#include "web/pages.hpp"

namespace cg::web {

std::string WebApp::render_certificates(const services::SessionInfo& s, const std::vector<security::CertificateEntry>& list,
                                        std::string_view message) const {
  std::string b(message);
  if (services_.identity) {
    auto mine = services_.identity->current(s.principal);
    b += "<section><h2>Station certificate</h2>";
    if (mine && *mine) {
      const auto& c = **mine;
      b += "<dl><dt>Subject</dt><dd>CN=" + html(c.common_name) + ", O=" + html(c.organization) + "</dd><dt>Issuer</dt><dd>" +
           html(c.issuer) + "</dd><dt>Serial</dt><dd><code>" + html(c.serial_hex) + "</code></dd><dt>Valid</dt><dd>" +
           html(clock::format_rfc3339(c.not_before)) + " to " + html(clock::format_rfc3339(c.not_after)) +
           "</dd><dt>SHA-256</dt><dd><code>" + html(c.sha256_fingerprint) + "</code></dd></dl>";
    } else {
      b += "<p class=\"muted\">None: the station uses security profile 2 (password) or is not provisioned.</p>";
    }
    b += "</section>";
  }
  b += "<section><h2>Installed roots</h2><table><thead><tr><th>Type</th><th>Subject</th><th>Expires</th><th>SHA-256</th><th></th></tr></thead>"
       "<tbody>";
  for (const auto& e : list) {
    const auto expires = clock::format_rfc3339(clock::SysTime(
        std::chrono::duration_cast<std::chrono::milliseconds>(security::not_after(e.certificate.get()).time_since_epoch())));
    b += "<tr><td>" + html(security::to_string(e.type)) + "</td><td>" + html(e.subject) + "</td><td>" +
         html(expires) + "</td><td><code>" + html(e.fingerprint) + "</code></td><td><form method=\"post\" "
         "action=\"/certificates\">" + csrf_field(s) + "<input type=\"hidden\" name=\"action\" value=\"remove\">"
         "<input type=\"hidden\" name=\"hash_algorithm\" value=\"" + html(e.hash_data.hash_algorithm) + "\">"
         "<input type=\"hidden\" name=\"issuer_name_hash\" value=\"" + html(e.hash_data.issuer_name_hash) + "\">"
         "<input type=\"hidden\" name=\"issuer_key_hash\" value=\"" + html(e.hash_data.issuer_key_hash) + "\">"
         "<input type=\"hidden\" name=\"serial_number\" value=\"" + html(e.hash_data.serial_number) + "\">"
         "<button type=\"submit\" class=\"danger\">Remove</button></form></td></tr>";
  }
  b += "</tbody></table></section><section><h2>Install a root certificate</h2><form method=\"post\" "
       "action=\"/certificates\">" + csrf_field(s) + "<input type=\"hidden\" name=\"action\" value=\"install\">"
       "<label for=\"type\">Type</label><select id=\"type\" name=\"type\">";
  for (auto t : security::kCertificateTypes)
    b += "<option>" + std::string(security::to_string(t)) + "</option>";
  b += "</select><label for=\"pem\">Certificate (PEM)</label><textarea id=\"pem\" name=\"pem\" rows=\"8\" cols=\"70\" "
       "maxlength=\"8000\" required></textarea><p><button type=\"submit\">Install</button></p></form>"
       "<p class=\"muted\">A root is added next to those of its type. The station checks it (a CA certificate, "
       "valid, the crypto policy) and refuses to remove the last CSMS root.</p></section>";
  return b;
}

void WebApp::certificates_page(Call& c) {
  const services::SessionInfo& s = *c.session;
  if (!services_.certificates) return c.reply(refused(&s, fail(Errc::Unavailable, "no certificate service")));
  auto list = services_.certificates->list(s.principal, {});
  if (!list) return c.reply(refused(&s, list.error()));
  c.reply(html_page(&s, "/certificates", "Certificates", render_certificates(s, *list, {})));
}

void WebApp::certificates_action(Call& c) {
  const services::SessionInfo& s = *c.session;
  if (!services_.certificates) return c.reply(refused(&s, fail(Errc::Unavailable, "no certificate service")));
  auto& certs = *services_.certificates;
  const auto action = c.req.field("action");
  std::string msg;
  unsigned status = 200;
  if (action == "install") {
    const auto type = security::parse_certificate_type(c.req.field("type"));
    if (!type) return c.reply(refused(&s, fail(Errc::InvalidArgument, "unknown certificate type")));
    auto r = certs.install_local(s.principal, *type, c.req.field("pem"), security::LocalInstallMode::Add);
    if (!r) return c.reply(refused(&s, r.error()));
    const bool ok = r->status == security::InstallStatus::Accepted;
    status = ok ? 200 : 400;
    msg = notice(ok ? "ok" : "error", (ok ? "Installed: " : "Not installed: ") + r->reason + ".");
  } else if (action == "remove") {
    security::CertificateHashData h{std::string(c.req.field("hash_algorithm")), std::string(c.req.field("issuer_name_hash")),
                                    std::string(c.req.field("issuer_key_hash")), std::string(c.req.field("serial_number"))};
    auto r = certs.remove(s.principal, h);
    if (!r) return c.reply(refused(&s, r.error()));
    const bool ok = r->status == security::DeleteStatus::Accepted;
    status = ok ? 200 : 400;
    msg = notice(ok ? "ok" : "error", (ok ? "Removed: " : "Not removed: ") + r->reason + ".");
  } else {
    return c.reply(refused(&s, fail(Errc::InvalidArgument, "unknown action")));
  }
  auto list = certs.list(s.principal, {});
  if (!list) return c.reply(refused(&s, list.error()));
  c.reply(html_page(&s, "/certificates", "Certificates", render_certificates(s, *list, msg), status));
}

}  // namespace cg::web
