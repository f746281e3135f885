// Validation of OCPP 2.0.1 payloads against the official JSON schemas.
// The schemas are compiled by tools/schema-gen into static tables
// (src/ocpp/generated/schema_tables.cpp); nothing is parsed at run time.
#pragma once
#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "ocpp/errors.hpp"

namespace cg::ocpp::schema {

enum class Kind { Request, Response };

struct Violation {
  RpcError code;        // which OCPP-J error code the violation maps to
  std::string path;     // JSON pointer-like path to the offending field, e.g. "/idToken/type"
  std::string message;  // human-readable, <= 200 chars, never echoes field values
};

// True when the official 2.0.1 schemas define `action`.
bool has_action(std::string_view action);

// std::nullopt when `payload` is valid for (action, kind). Unknown action -> NotImplemented.
std::optional<Violation> validate(std::string_view action, Kind kind, const boost::json::value& payload);

}  // namespace cg::ocpp::schema
