#include "services/gate.hpp"

#include "core/log.hpp"
#include "core/storage.hpp"

namespace cg::services {

Gate::Gate(audit::AuditLog* log, PolicyFn policy) : log_(log), policy_(std::move(policy)) {}

Result<void> Gate::admit(const policy::Principal& who, policy::Operation op, std::string_view request) {
  if (policy_ && policy_(who, op) == policy::Decision::Allow) return {};
  log::warn("policy", policy::to_string(who.role), " over ", policy::to_string(who.iface), " may not ",
            policy::to_string(op), request.empty() ? "" : " (", request, request.empty() ? "" : ")");
  audit::Details d;
  d.text("role", policy::to_string(who.role)).text("operation", policy::to_string(op));
  if (!request.empty()) d.text("request", request);
  record_limited(denials_, audit::Source::of(who), audit::Event::AccessDenied, audit::Outcome::Failure, std::move(d));
  return fail(Errc::Denied, std::string(policy::to_string(op)) + " is not permitted");
}

Error failure_of(std::string_view operation, const std::exception& e) {
  log::error("services", operation, " failed: ", e.what());
  if (dynamic_cast<const storage::DbError*>(&e)) return fail(Errc::Storage, std::string(operation) + ": the station's storage failed");
  return fail(Errc::Internal, std::string(operation) + " failed");
}

audit::AuditLog::Result Gate::record(const audit::Source& src, audit::Event e, audit::Outcome o,
                                     const audit::Details& d) {
  if (!log_) return {0, false, "no security log open"};
  auto r = log_->record(e, o, src, d);
  if (!r.stored) log::error("audit", "record not stored: ", r.error);
  return r;
}

void Gate::record_limited(audit::RecordLimiter& limit, const audit::Source& src, audit::Event e, audit::Outcome o,
                          audit::Details d) {
  if (!limit.admit()) return;
  if (auto n = limit.take_suppressed()) d.number("suppressedBefore", n);
  record(src, e, o, d);
}

}  // namespace cg::services
