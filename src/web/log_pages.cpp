// The security log for administrators (AUTHZ-3, LOG-4): the chain's
// verification, the last records, and a download of a time window that
// `chargeguard audit verify --file` checks. The security-log service asks the
// policy (ReadSecurityLog) and writes the SecurityLogExported record.
#include <boost/json.hpp>

#include "core/clock.hpp"
#include "web/app.hpp"
#include "web/pages.hpp"

namespace cg::web {
namespace {

constexpr std::size_t kMaxDownloadBytes = 32u * 1024 * 1024;

// "2026-12-07T14:05" (datetime-local) or "" -> a time, nullopt when empty; false when malformed.
bool parse_local(std::string_view v, std::optional<clock::SysTime>& out) {
  if (v.empty()) return true;
  if (v.size() != 16) return false;
  auto t = clock::parse_rfc3339(std::string(v) + ":00Z");
  if (!t) return false;
  out = *t;
  return true;
}

// The record's source and details, as short text for the table.
std::string describe(const std::string& line) {
  boost::system::error_code ec;
  auto v = boost::json::parse(std::string_view(line).substr(0, line.find('\t')), ec);
  if (ec || !v.is_object()) return "(unreadable)";
  std::string out;
  if (auto* src = v.as_object().if_contains("source"); src && src->is_object()) {
    for (const char* k : {"principal", "interface", "address"})
      if (auto* x = src->as_object().if_contains(k); x && x->is_string() && !x->as_string().empty())
        out += std::string(x->as_string()) + " ";
  }
  if (auto* d = v.as_object().if_contains("details")) out += boost::json::serialize(*d);
  if (out.size() > 300) out = out.substr(0, 300) + "…";
  return out;
}

}  // namespace

void WebApp::log_page(Call& c) {
  const services::SessionInfo& s = *c.session;
  if (!services_.security_log) return c.reply(refused(&s, fail(Errc::Unavailable, "no security log on this station")));
  auto records = services_.security_log->recent(s.principal, 50);
  if (!records) return c.reply(refused(&s, records.error()));
  auto verified = services_.security_log->verify(s.principal, std::nullopt);
  std::string b = "<section><h2>Integrity</h2>";
  if (!verified) {
    b += notice("warn", "The chain could not be checked: " + verified.error().message);
  } else if (verified->ok) {
    b += notice("ok", "Hash chain and MACs verified: " + std::to_string(verified->records) + " records (" +
                          std::to_string(verified->first_seq) + " to " + std::to_string(verified->last_seq) + ").");
    if (!verified->warning.empty()) b += notice("warn", verified->warning);
  } else {
    b += notice("error", "The log does NOT verify: " + verified->problem +
                             (verified->bad_seq ? " (record " + std::to_string(verified->bad_seq) + ")" : ""));
  }
  b += "</section><section><h2>Download</h2><form method=\"post\" action=\"/log\">" + csrf_field(s) +
       "<label for=\"from\">From (UTC, optional)</label><input type=\"datetime-local\" id=\"from\" name=\"from\">"
       "<label for=\"to\">To (UTC, optional)</label><input type=\"datetime-local\" id=\"to\" name=\"to\">"
       "<p><button type=\"submit\">Download</button></p></form><p class=\"muted\">The file holds the records "
       "with their chain fields; check it with <code>chargeguard audit verify --file FILE --config "
       "station.toml</code>. A download is recorded (SecurityLogExported).</p></section>";
  b += "<section><h2>Last records</h2><table><thead><tr><th>#</th><th>Time</th><th>Event</th><th>Outcome</th>"
       "<th>Source and details</th></tr></thead><tbody>";
  for (const auto& r : *records) {
    b += "<tr><td>" + std::to_string(r.seq) + "</td><td>" + html(r.time) + "</td><td>" +
         html(audit::info(r.type).name) + "</td><td>" + html(audit::to_string(r.outcome)) + "</td><td><code>" +
         html(describe(r.line)) + "</code></td></tr>";
  }
  b += "</tbody></table></section>";
  c.reply(html_page(&s, "/log", "Security log", b));
}

void WebApp::log_download(Call& c) {
  const services::SessionInfo& s = *c.session;
  if (!services_.security_log) return c.reply(refused(&s, fail(Errc::Unavailable, "no security log on this station")));
  services::SecurityLogService::Window w;
  if (!parse_local(c.req.field("from"), w.oldest) || !parse_local(c.req.field("to"), w.latest))
    return c.reply(refused(&s, fail(Errc::InvalidArgument, "From and To are dates and times like 2026-12-07T14:05")));
  auto exported = services_.security_log->export_for_upload(s.principal, services::SecurityLogService::LogType::Security,
                                                            w, kMaxDownloadBytes);
  if (!exported) return c.reply(refused(&s, exported.error()));
  services::SecurityLogService::Upload u;
  u.exported = &*exported;
  u.destination_host = "web download (" + c.req.peer + ")";
  u.attempts = 1;
  u.result = "Downloaded";
  u.detail = exported->truncated ? "truncated at 32 MiB" : "";
  services_.security_log->upload_finished(audit::Source::of(s.principal, c.req.peer), u);
  Response r;
  r.content_type = "text/plain; charset=utf-8";
  const std::string stamp = clock::format_rfc3339(clock::now_utc());
  r.headers.emplace_back("Content-Disposition", "attachment; filename=\"security-log-" + station_ + "-" +
                                                    stamp.substr(0, 10) + ".log\"");
  r.body = std::move(exported->body);
  c.reply(std::move(r));
}

}  // namespace cg::web
