// What happens on the link to the CSMS that the security log must show, as
// one service: malformed or replayed requests (InvalidMessages,
// AttemptedReplayAttacks), TLS failures (InvalidCsmsCertificate,
// InvalidTLSVersion, InvalidTLSCipherSuite), a refused password
// (FailedToAuthenticateAtCsms), the A01 outcome of a new password, and time
// changes from the CSMS (SettingSystemTime, NET-6). Records a peer can cause
// at will are rate-limited, the number held back carried in the next one.
// REQ: LOG-1, LOG-3, COM-2, COM-3, COM-5, COM-6, NET-6
#pragma once
#include <array>
#include <string>
#include <string_view>

#include "services/gate.hpp"

namespace cg::services {

class LinkEvents {
 public:
  explicit LinkEvents(Gate& gate) : gate_(gate) {}

  // A CALLERROR we sent for a request we could not take (InvalidMessages,
  // 10 a minute).
  void invalid_message(const policy::Principal& csms, std::string_view error_code, std::string_view message_id,
                       std::string_view description, std::string_view action);
  // COM-5: a CALL id used before in this session.
  void replay(const policy::Principal& csms, std::string_view message_id, std::string_view action);
  enum class Tls { Certificate, Version, CipherSuite };
  // The TLS handshake with the CSMS failed (3 per kind per 15 minutes).
  void tls_failure(const policy::Principal& csms, Tls kind, std::string_view reason);
  // The CSMS answered the upgrade with HTTP 401.
  void credentials_refused(const policy::Principal& csms, int http_status, std::string_view url);
  // A01: what the first connection after a password change said about it.
  void password_rotation(const policy::Principal& csms, bool success, std::string_view result);
  // NET-6: the CSMS's time moved the clock by more than the threshold.
  void time_adjusted(const policy::Principal& csms, std::string_view source, std::string_view previous,
                     std::string_view now, long long seconds);

 private:
  Gate& gate_;
  audit::RecordLimiter invalid_{10, std::chrono::minutes(1)};
  std::array<audit::RecordLimiter, 3> tls_{audit::RecordLimiter{3, std::chrono::minutes(15)},
                                           audit::RecordLimiter{3, std::chrono::minutes(15)},
                                           audit::RecordLimiter{3, std::chrono::minutes(15)}};
};

}  // namespace cg::services
