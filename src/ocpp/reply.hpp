// A functional block's answer to a CSMS request.
#pragma once
#include <boost/json/object.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "ocpp/errors.hpp"

namespace cg::ocpp {

struct Reply {
  std::optional<boost::json::object> payload;  // CALLRESULT
  RpcError error = RpcError::InternalError;    // CALLERROR when no payload
  std::string description;
  // Runs right after the answer was queued for sending (messages the request
  // causes go out after it: NotifyReport, StatusNotification, …).
  std::function<void()> after;
  // Runs once the answer was written to the connection (or will never be):
  // for what must not happen before the CSMS has it (a reconnection with new
  // credentials, a restart).
  std::function<void()> after_written;
};

inline Reply result(boost::json::object payload) { return Reply{std::move(payload), {}, {}, {}, {}}; }
inline Reply error_reply(RpcError code, std::string description) {
  return Reply{std::nullopt, code, std::move(description), {}, {}};
}
// {"status": status} and, when reason_code is given, statusInfo {reasonCode, additionalInfo}.
Reply status_reply(std::string_view status, std::string_view reason_code = {}, std::string_view info = {});
inline Reply rejected(std::string_view reason_code, std::string_view info) {
  return status_reply("Rejected", reason_code, info);
}
// A service refused: the policy's denial is a SecurityError (the service has
// audited it); any other failure an InternalError.
Reply refusal(const Error& e);

}  // namespace cg::ocpp
