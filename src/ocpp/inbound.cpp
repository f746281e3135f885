#include "ocpp/inbound.hpp"

#include "ocpp/schema.hpp"

namespace cg::ocpp {

Inbound decode(std::string_view text, const std::function<bool(std::string_view)>& supported) {
  Frame f = parse_frame(text);
  if (auto* c = std::get_if<Call>(&f)) {
    InboundCall in{std::move(c->id), std::move(c->action), std::move(c->payload.as_object()), std::nullopt};
    if (!schema::has_action(in.action)) {
      in.problem = Problem{RpcError::NotImplemented, "unknown action " + in.action.substr(0, 64)};
    } else if (auto v = schema::validate(in.action, schema::Kind::Request, in.payload)) {
      in.problem = Problem{v->code, v->path + ": " + v->message};
    } else if (!supported || !supported(in.action)) {
      in.problem = Problem{RpcError::NotImplemented, in.action + " is not supported by this station"};
    }
    return in;
  }
  if (auto* r = std::get_if<CallResult>(&f)) return std::move(*r);
  if (auto* e = std::get_if<CallError>(&f)) return std::move(*e);
  return std::get<BadFrame>(std::move(f));
}

}  // namespace cg::ocpp
