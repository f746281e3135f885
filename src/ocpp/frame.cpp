#include "ocpp/frame.hpp"

#include <algorithm>
#include <boost/json.hpp>

namespace cg::ocpp {
namespace json = boost::json;

std::string message_id_hint(std::string_view head) {
  head = head.substr(0, 64);
  std::size_t i = 0;
  auto skip = [&] {
    while (i < head.size() && (head[i] == ' ' || head[i] == '\n' || head[i] == '\r' || head[i] == '\t')) ++i;
  };
  skip();
  if (i >= head.size() || head[i++] != '[') return "-1";
  skip();
  // Only a CALL is answered with an error; a broken CALLRESULT/CALLERROR is not.
  if (i >= head.size() || head[i] != '2') return "-1";
  ++i;
  skip();
  if (i >= head.size() || head[i++] != ',') return "-1";
  skip();
  if (i >= head.size() || head[i++] != '"') return "-1";
  std::string id;
  while (i < head.size() && head[i] != '"') {
    const char c = head[i++];
    // Printable ASCII only: these bytes were never UTF-8-validated, and the id is
    // echoed in our CALLERROR, which must be valid UTF-8.
    if (c == '\\' || static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e ||
        id.size() >= 36)
      return "-1";
    id += c;
  }
  if (i >= head.size() || id.empty()) return "-1";
  return id;
}

Frame parse_frame(std::string_view text) {
  json::parse_options opt;
  opt.max_depth = kMaxJsonDepth;
  json::error_code ec;
  json::value v = json::parse(text, ec, {}, opt);
  if (ec == json::error::too_deep)
    return BadFrame{message_id_hint(text), RpcError::FormatViolation,
                    "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels", {}};
  if (ec) return BadFrame{"-1", RpcError::RpcFrameworkError, "message is not valid JSON", {}};
  if (!v.is_array() || v.as_array().empty())
    return BadFrame{"-1", RpcError::RpcFrameworkError, "message is not a JSON array", {}};
  auto& a = v.as_array();
  if (a.size() < 2 || !a[1].is_string())
    return BadFrame{"-1", RpcError::RpcFrameworkError, "message id missing or not a string", {}};
  std::string id(a[1].as_string());
  if (id.empty() || id.size() > kMaxMessageIdLength)
    return BadFrame{"-1", RpcError::RpcFrameworkError, "message id must be 1-36 characters", {}};
  // Integers above INT64_MAX parse as uint64: no message type either (to_number would throw).
  if (a[0].is_uint64())
    return BadFrame{id, RpcError::MessageTypeNotSupported,
                    "message type " + std::to_string(a[0].get_uint64()) + " is not supported", {}};
  if (!a[0].is_int64())
    return BadFrame{id, RpcError::MessageTypeNotSupported, "message type id is not an integer", {}};
  const auto type = a[0].get_int64();
  switch (type) {
    case 2: {
      if (a.size() != 4 || !a[2].is_string())
        return BadFrame{id, RpcError::RpcFrameworkError, "CALL must be [2, id, action, payload]", {}};
      std::string action(a[2].as_string());
      if (action.empty() || action.size() > 64)
        return BadFrame{id, RpcError::RpcFrameworkError, "action name must be 1-64 characters", {}};
      if (!a[3].is_object()) return BadFrame{id, RpcError::FormatViolation, "payload is not a JSON object", action};
      return Call{std::move(id), std::move(action), std::move(a[3])};
    }
    case 3:
      if (a.size() != 3)
        return BadFrame{id, RpcError::RpcFrameworkError, "CALLRESULT must be [3, id, payload]", {}, false};
      return CallResult{std::move(id), std::move(a[2])};
    case 4: {
      if (a.size() != 5 || !a[2].is_string() || !a[3].is_string())
        return BadFrame{id, RpcError::RpcFrameworkError, "CALLERROR must be [4, id, code, description, details]", {},
                        false};
      return CallError{std::move(id), std::string(a[2].as_string()), std::string(a[3].as_string()), std::move(a[4])};
    }
    default:
      return BadFrame{id, RpcError::MessageTypeNotSupported, "message type " + std::to_string(type) + " is not supported", {}};
  }
}

std::string make_call(std::string_view id, std::string_view action, const json::value& payload) {
  return json::serialize(json::array{2, id, action, payload});
}

std::string make_result(std::string_view id, const json::value& payload) {
  return json::serialize(json::array{3, id, payload});
}

std::string make_error(std::string_view id, RpcError code, std::string_view description) {
  // At most 255 bytes, never cutting a UTF-8 sequence in half (the frame must stay valid UTF-8).
  std::size_t n = std::min<std::size_t>(description.size(), 255);
  if (n < description.size())
    while (n > 0 && (static_cast<unsigned char>(description[n]) & 0xC0) == 0x80) --n;
  std::string d(description.substr(0, n));
  return json::serialize(json::array{4, id, to_string(code), d, json::object{}});
}

}  // namespace cg::ocpp
