// The services' one enforcement point and their one way into the audit log.
//
// Every service operation begins with Gate::admit(principal, operation): the
// one policy decides (AUTHZ-1, deny by default), and a denial is audited as
// AccessDenied — which principal, over which interface, which operation and
// request — rate-limited like InvalidMessages, so that a peer cannot flood the
// log with refused requests. Every operation ends with exactly one record
// (Gate::record) of its outcome. Front ends (OCPP blocks, CLI commands, the
// simulator socket, later the web UI) neither ask the policy nor write the log.
//
// The policy is injectable so that a test can deny everything and prove that
// every route and command refuses (a removed admit() fails a test).
// REQ: AUTHZ-1, LOG-1
#pragma once
#include <functional>
#include <string_view>

#include "audit/audit_log.hpp"
#include "audit/rate_limit.hpp"
#include "core/result.hpp"
#include "policy/policy.hpp"

namespace cg::services {

using PolicyFn = std::function<policy::Decision(const policy::Principal&, policy::Operation)>;

class Gate {
 public:
  // `log` may be null (read-only tools beside a running daemon): then nothing
  // is recorded, denials included, and the caller says so on its console.
  explicit Gate(audit::AuditLog* log, PolicyFn policy = &policy::authorize);

  // AUTHZ-1: may `who` do `op`? `request` names what was asked (an OCPP
  // action, a CLI command) for the record of a denial.
  Result<void> admit(const policy::Principal& who, policy::Operation op, std::string_view request = {});

  // A question, not a request: would the policy allow it? No record either
  // way (a page deciding what to show, e.g. the admin's part of a dashboard).
  bool allows(const policy::Principal& who, policy::Operation op) const {
    return policy_(who, op) == policy::Decision::Allow;
  }

  // The one record of an operation's outcome.
  audit::AuditLog::Result record(const audit::Source& src, audit::Event e, audit::Outcome o,
                                 const audit::Details& d = {});
  audit::AuditLog::Result record(const policy::Principal& who, audit::Event e, audit::Outcome o,
                                 const audit::Details& d = {}) {
    return record(audit::Source::of(who), e, o, d);
  }
  // A record a peer can cause at will (malformed frames, TLS failures on every
  // reconnect): written when `limit` admits it, with the number held back since
  // the last one ("suppressedBefore"); otherwise only counted.
  void record_limited(audit::RecordLimiter& limit, const audit::Source& src, audit::Event e, audit::Outcome o,
                      audit::Details d);

  audit::AuditLog* log() const { return log_; }

 private:
  audit::AuditLog* log_;
  PolicyFn policy_;
  audit::RecordLimiter denials_{10, std::chrono::minutes(1)};
};

// The station itself as the source of a record (start-up, fallbacks, purges).
inline audit::Source system_source() { return audit::Source::system(); }

// The work of a service operation, so that no exception leaves the service
// (exceptions do not cross module boundaries): a failure of the storage or
// of a lower module becomes an Error (Storage, Internal), logged with its cause.
Error failure_of(std::string_view operation, const std::exception& e);
template <class F>
auto guarded(std::string_view operation, F&& work) -> decltype(work()) {
  try {
    return work();
  } catch (const std::exception& e) {
    return failure_of(operation, e);
  }
}

}  // namespace cg::services
