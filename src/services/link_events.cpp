#include "services/link_events.hpp"

namespace cg::services {
using audit::Event;
using audit::Outcome;

void LinkEvents::invalid_message(const policy::Principal& csms, std::string_view error_code,
                                 std::string_view message_id, std::string_view description, std::string_view action) {
  audit::Details d;
  d.text("error", error_code).text("messageId", message_id).text("description", description);
  if (!action.empty()) d.text("action", action);
  gate_.record_limited(invalid_, audit::Source::of(csms), Event::InvalidMessages, Outcome::Failure, std::move(d));
}

void LinkEvents::replay(const policy::Principal& csms, std::string_view message_id, std::string_view action) {
  gate_.record(csms, Event::AttemptedReplayAttacks, Outcome::Failure,
               audit::Details().text("messageId", message_id).text("action", action));
}

void LinkEvents::tls_failure(const policy::Principal& csms, Tls kind, std::string_view reason) {
  const Event e = kind == Tls::Certificate ? Event::InvalidCsmsCertificate
                  : kind == Tls::Version   ? Event::InvalidTLSVersion
                                           : Event::InvalidTLSCipherSuite;
  gate_.record_limited(tls_[static_cast<std::size_t>(kind)], audit::Source::of(csms), e, Outcome::Failure,
                       audit::Details().text("reason", reason));
}

void LinkEvents::credentials_refused(const policy::Principal& csms, int http_status, std::string_view url) {
  gate_.record(csms, Event::FailedToAuthenticateAtCsms, Outcome::Failure,
               audit::Details().number("httpStatus", http_status).text("url", url));
}

void LinkEvents::password_rotation(const policy::Principal& csms, bool success, std::string_view result) {
  gate_.record(csms, Event::ReconfigurationOfSecurityParameters, success ? Outcome::Success : Outcome::Failure,
               audit::Details().text("variable", "SecurityCtrlr.BasicAuthPassword").text("result", result));
}

void LinkEvents::time_adjusted(const policy::Principal& csms, std::string_view source, std::string_view previous,
                               std::string_view now, long long seconds) {
  gate_.record(csms, Event::SettingSystemTime, Outcome::Success,
               audit::Details()
                   .text("source", source)
                   .text("previous", previous)
                   .text("new", now)
                   .number("adjustmentSeconds", seconds));
}

}  // namespace cg::services
