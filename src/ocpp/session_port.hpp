// What the functional blocks and the dispatcher need of the OCPP session: send
// CALLs and frames, know the boot state and the security profile of the
// connection, ask for a reconnection or a restart. The session implements it;
// block tests implement it with a fake.
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>
#include <functional>
#include <string>
#include <utility>

#include "ocpp/connection.hpp"
#include "policy/policy.hpp"

namespace cg::ocpp {

// RegistrationStatusEnumType of the last BootNotification answer of this connection.
enum class BootState { None, Pending, Accepted, Rejected };

// The answer to one of our CALLs.
struct CallOutcome {
  bool ok = false;  // CALLRESULT received and schema-valid
  boost::json::object payload;
  std::string error;  // CALLERROR code or local reason
};

class SessionPort {
 public:
  using Callback = std::function<void(const CallOutcome&)>;
  virtual ~SessionPort() = default;

  // A CALL to the CSMS (in-memory queue; one in flight; after the boot).
  virtual void call(std::string action, boost::json::object payload, Callback cb = {}) = 0;
  // A CALL through the persistent outbox: survives a lost connection and a restart.
  virtual void queue_persistent(std::string action, const boost::json::object& payload) = 0;
  // Messages still in the persistent outbox (not yet answered by the CSMS).
  virtual std::int64_t outbox_pending() = 0;
  // A frame as it is (our answers to CSMS requests).
  virtual void send_frame(std::string frame, Connection::Written done = {}) = 0;

  virtual BootState boot_state() const = 0;
  virtual bool online() const = 0;  // connected and BootNotification accepted
  virtual int security_profile() const = 0;  // of the current connection attempt / connection
  virtual policy::Principal csms() const = 0;  // who asks over this connection
  // The CA file the CSMS and log-upload servers are verified against, and
  // whether it needs partial chains (COM-2, COM-9).
  virtual std::pair<std::string, bool> csms_trust() const = 0;

  // Closes the connection and connects again on the same network slot (new
  // password or certificate); the outbox keeps every queued message.
  virtual void reconnect(std::string why) = 0;
  virtual void send_boot() = 0;
  virtual void heartbeat_now() = 0;
  virtual void heartbeat_interval_changed() = 0;
  // Stops the session and restarts the daemon (Reset).
  virtual void restart() = 0;
  virtual boost::asio::io_context& io() = 0;
};

}  // namespace cg::ocpp
