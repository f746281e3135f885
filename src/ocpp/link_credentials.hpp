// What the OCPP session needs to authenticate to the CSMS, and reports back:
// implemented by the security block, which owns the credential state (the
// A01 password rotation, the A02 renewed certificate on trial).
#pragma once
#include <memory>
#include <string>

#include "core/result.hpp"
#include "ocpp/connection.hpp"
#include "security/key_store.hpp"
#include "security/station_identity.hpp"

namespace cg::ocpp {

class LinkCredentials {
 public:
  virtual ~LinkCredentials() = default;
  // Profile 3: the client identity for this attempt (null: none usable).
  virtual std::shared_ptr<const security::TlsClientIdentity> client_identity() = 0;
  // Profiles 1/2: the password for this attempt, unsealed just now (the
  // caller wipes it once the Authorization header is built). An error: none.
  virtual Result<security::SecretBytes> password() = 0;
  // The connection opened: the CSMS took these credentials.
  virtual void connected(int security_profile) = 0;
  // The attempt or the connection ended. True when the next attempt retries
  // with other credentials (A01's one try of the previous password), which is
  // not a failure of the network slot.
  virtual bool closed(const std::string& reason, int http_status, TlsFailure tls, int security_profile) = 0;
  // The rotation moved to another network slot: it gets the newest credentials first.
  virtual void new_slot() = 0;
};

}  // namespace cg::ocpp
