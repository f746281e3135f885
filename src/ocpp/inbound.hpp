// The inbound stage of the OCPP front end, pure: text in, a decoded frame out.
// OCPP-J frame parse (size and depth bounded by frame.hpp), then for a CALL
// the action (known to the official schemas? served by this station?) and the
// request schema. No session state, no I/O, no globals: this is the piece
// that a later step moves into a sandboxed, unprivileged process (NET-3,
// NET-7), the session keeping only what needs state (replay window, boot gate).
// REQ: NET-3, COM-5 (in part)
#pragma once
#include <boost/json/object.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "ocpp/errors.hpp"
#include "ocpp/frame.hpp"

namespace cg::ocpp {

// What to answer instead of handling a CALL.
struct Problem {
  RpcError code;
  std::string description;
};

struct InboundCall {
  std::string id, action;
  boost::json::object payload;
  // Set when the request cannot be handled (unknown or unsupported action,
  // schema violation). The session still applies its replay window and boot
  // gate first, so that their answers take precedence.
  std::optional<Problem> problem;
};

using Inbound = std::variant<InboundCall, CallResult, CallError, BadFrame>;

// `supported`: whether this station serves an action (the dispatcher's routes).
Inbound decode(std::string_view text, const std::function<bool(std::string_view)>& supported);

}  // namespace cg::ocpp
