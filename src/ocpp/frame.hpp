// OCPP-J framing (OCPP 2.0.1 part 4): CALL, CALLRESULT, CALLERROR.
// Parsing is bounded: the caller refuses frames above its size limit before
// calling parse(); JSON depth is limited here.
#pragma once
#include <boost/json/value.hpp>
#include <string>
#include <string_view>
#include <variant>

#include "ocpp/errors.hpp"

namespace cg::ocpp {

struct Call {
  std::string id;
  std::string action;
  boost::json::value payload;
};
struct CallResult {
  std::string id;
  boost::json::value payload;
};
struct CallError {
  std::string id;
  std::string code;  // as received (either spelling)
  std::string description;
  boost::json::value details;
};
// A frame we cannot accept: answer with CALLERROR(id, code, message).
struct BadFrame {
  std::string id;  // "-1" when the id could not be read
  RpcError code;
  std::string message;
  std::string action;  // when readable, for diagnostics
  // false for a broken CALLRESULT/CALLERROR: OCPP-J answers only a CALL with a
  // CALLERROR; a broken reply fails the CALL it answers instead.
  bool answer = true;
};

using Frame = std::variant<Call, CallResult, CallError, BadFrame>;

constexpr std::size_t kMaxMessageIdLength = 36;
constexpr int kMaxJsonDepth = 32;

Frame parse_frame(std::string_view text);

// The message id of a frame that is not parsed (too large, too deep), read
// from its first bytes "[2,"id",…"; "-1" when it cannot be read.
std::string message_id_hint(std::string_view frame_head);

std::string make_call(std::string_view id, std::string_view action, const boost::json::value& payload);
std::string make_result(std::string_view id, const boost::json::value& payload);
std::string make_error(std::string_view id, RpcError code, std::string_view description);

}  // namespace cg::ocpp
