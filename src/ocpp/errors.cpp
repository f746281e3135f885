#include "ocpp/errors.hpp"

#include <array>
#include <utility>

namespace cg::ocpp {
namespace {
constexpr std::array<std::pair<RpcError, std::string_view>, 12> kNames{{
    {RpcError::FormatViolation, "FormatViolation"},
    {RpcError::GenericError, "GenericError"},
    {RpcError::InternalError, "InternalError"},
    {RpcError::MessageTypeNotSupported, "MessageTypeNotSupported"},
    {RpcError::NotImplemented, "NotImplemented"},
    {RpcError::NotSupported, "NotSupported"},
    {RpcError::OccurrenceConstraintViolation, "OccurrenceConstraintViolation"},
    {RpcError::PropertyConstraintViolation, "PropertyConstraintViolation"},
    {RpcError::ProtocolError, "ProtocolError"},
    {RpcError::RpcFrameworkError, "RpcFrameworkError"},
    {RpcError::SecurityError, "SecurityError"},
    {RpcError::TypeConstraintViolation, "TypeConstraintViolation"},
}};
}  // namespace

std::string_view to_string(RpcError e) {
  for (const auto& [code, name] : kNames) {
    if (code == e) return name;
  }
  return "GenericError";
}

std::optional<RpcError> rpc_error_from_string(std::string_view s) {
  for (const auto& [code, name] : kNames) {
    if (name == s) return code;
  }
  if (s == "OccurenceConstraintViolation") return RpcError::OccurrenceConstraintViolation;
  if (s == "FormationViolation") return RpcError::FormatViolation;
  return std::nullopt;
}

}  // namespace cg::ocpp
