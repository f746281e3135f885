// The dispatcher of CSMS requests: the replay window of the session (COM-5),
// the boot gate (nothing but BootNotification before it is accepted), the
// inbound stage's verdict, the route table that the functional blocks fill,
// response validation against the official schema, and every refusal as a
// CALLERROR with its InvalidMessages record (through the link-events
// service). Access is not decided here: each block calls a service, which
// asks the one policy; a denial comes back as SecurityError.
// REQ: COM-5, NET-3, AUTHZ-1, LOG-1
#pragma once
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "ocpp/inbound.hpp"
#include "ocpp/reply.hpp"
#include "ocpp/session_port.hpp"
#include "services/link_events.hpp"

namespace cg::ocpp {

class Dispatcher {
 public:
  using Handler = std::function<Reply(const boost::json::object& request)>;

  Dispatcher(SessionPort& session, services::LinkEvents& events);

  // A functional block serves `action`.
  void add(std::string action, Handler h);
  bool serves(std::string_view action) const { return routes_.count(action) > 0; }
  std::vector<std::string> actions() const;

  // A new connection: a new replay window.
  void new_session();
  // A CALL from the CSMS, as the inbound stage decoded it.
  void handle(InboundCall call);
  // A frame we answer with a CALLERROR (malformed, too large): sent and recorded.
  void send_error(const std::string& id, RpcError code, const std::string& description, const std::string& action = {});

 private:
  SessionPort& session_;
  services::LinkEvents& events_;
  std::map<std::string, Handler, std::less<>> routes_;
  std::set<std::string> seen_ids_;  // CALL ids seen in this session (COM-5)
  std::deque<std::string> seen_order_;
};

}  // namespace cg::ocpp
