// OCPP-J RPC error codes (OCPP 2.0.1 part 4, section 4.3).
#pragma once
#include <optional>
#include <string_view>

namespace cg::ocpp {

enum class RpcError {
  FormatViolation,
  GenericError,
  InternalError,
  MessageTypeNotSupported,
  NotImplemented,
  NotSupported,
  OccurrenceConstraintViolation,
  PropertyConstraintViolation,
  ProtocolError,
  RpcFrameworkError,
  SecurityError,
  TypeConstraintViolation,
};

// The 2.0.1 spelling, as we send it.
std::string_view to_string(RpcError e);

// Parses an error code received from a peer. Accepts the 2.0.1 spellings and the
// OCPP 1.6 ones that CSMSs still send ("OccurenceConstraintViolation",
// "FormationViolation").
std::optional<RpcError> rpc_error_from_string(std::string_view s);

}  // namespace cg::ocpp
