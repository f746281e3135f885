// Shared by the two halves of the firmware service (firmware.cpp: installing;
// firmware_boot.cpp: booting, the running image, status). Not an interface.
#pragma once
#include "audit/audit_log.hpp"
#include "firmware/slots.hpp"

namespace cg::services::detail {

// What every firmware record says about the update it belongs to.
inline audit::Details ref_details(const firmware::UpdateRef& r) {
  audit::Details d;
  d.text("origin", r.origin);
  if (r.request_id) d.number("requestId", *r.request_id);
  return d;
}

}  // namespace cg::services::detail
