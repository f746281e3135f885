#include "ocpp/dispatcher.hpp"

#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "core/log.hpp"
#include "ocpp/frame.hpp"
#include "ocpp/schema.hpp"

namespace cg::ocpp {
namespace json = boost::json;

namespace {
constexpr std::size_t kMaxSeenIds = 1024;
}  // namespace

Reply status_reply(std::string_view status, std::string_view reason_code, std::string_view info) {
  json::object o{{"status", status}};
  if (!reason_code.empty()) {
    json::object st{{"reasonCode", reason_code.substr(0, 20)}};
    if (!info.empty()) st["additionalInfo"] = info.substr(0, 512);
    o["statusInfo"] = std::move(st);
  }
  return result(std::move(o));
}

Reply refusal(const Error& e) {
  if (e.code == Errc::Denied) return error_reply(RpcError::SecurityError, "not permitted");
  return error_reply(RpcError::InternalError, "internal error");
}

Dispatcher::Dispatcher(SessionPort& session, services::LinkEvents& events) : session_(session), events_(events) {}

void Dispatcher::add(std::string action, Handler h) { routes_[std::move(action)] = std::move(h); }

std::vector<std::string> Dispatcher::actions() const {
  std::vector<std::string> out;
  for (const auto& [a, h] : routes_) out.push_back(a);
  return out;
}

void Dispatcher::new_session() {
  seen_ids_.clear();
  seen_order_.clear();
}

void Dispatcher::send_error(const std::string& id, RpcError code, const std::string& description,
                            const std::string& action) {
  log::info("ocpp", "CALLERROR ", to_string(code), " for message ", id, ": ", description);
  session_.send_frame(make_error(id, code, description));
  // InvalidMessages, rate-limited so that a flood cannot fill the audit log.
  events_.invalid_message(session_.csms(), to_string(code), id, description, action);
}

void Dispatcher::handle(InboundCall c) {
  // COM-5: a CALL id already used in this session is refused (replay).
  if (seen_ids_.count(c.id)) {
    events_.replay(session_.csms(), c.id, c.action);
    session_.send_frame(make_error(c.id, RpcError::RpcFrameworkError, "message id already used in this session"));
      return;
  }
  seen_ids_.insert(c.id);
  seen_order_.push_back(c.id);
  if (seen_order_.size() > kMaxSeenIds) {
    seen_ids_.erase(seen_order_.front());
    seen_order_.pop_front();
  }
  const BootState boot = session_.boot_state();
  if (boot == BootState::Rejected || boot == BootState::None)
    return send_error(c.id, RpcError::SecurityError, "BootNotification not accepted");
  if (c.problem) return send_error(c.id, c.problem->code, c.problem->description, c.action);
  auto it = routes_.find(c.action);
  if (it == routes_.end())
    return send_error(c.id, RpcError::NotImplemented, c.action + " is not supported by this station", c.action);
  Reply rep;
  try {
    rep = it->second(c.payload);
  } catch (const std::exception& ex) {
    log::error("ocpp", c.action, " handler failed: ", ex.what());
    rep = error_reply(RpcError::InternalError, "internal error");
  }
  if (!rep.payload) {
    // A denial was audited by the service that refused (AccessDenied).
    if (rep.error == RpcError::SecurityError) {
      log::warn("ocpp", c.action, " refused by the access policy");
      session_.send_frame(make_error(c.id, rep.error, rep.description));
          return;
    }
    return send_error(c.id, rep.error, rep.description, c.action);
  }
  if (auto v = schema::validate(c.action, schema::Kind::Response, *rep.payload)) {
    log::error("ocpp", "BUG: our ", c.action, " response violates the schema at ", v->path, ": ", v->message);
    return send_error(c.id, RpcError::InternalError, "internal error");
  }
  Connection::Written written;
  if (rep.after_written) written = [f = std::move(rep.after_written)](bool) { f(); };
  session_.send_frame(make_result(c.id, *rep.payload), std::move(written));
  if (rep.after) boost::asio::post(session_.io(), rep.after);
}

}  // namespace cg::ocpp
