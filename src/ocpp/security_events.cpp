#include "ocpp/security_events.hpp"

#include <boost/json.hpp>

namespace cg::ocpp {
namespace json = boost::json;

// A04.FR.01/02: critical security events are sent at once, queued while
// offline, delivered once (the cursor moves in the commit that queues).
SecurityEventForwarder::SecurityEventForwarder(storage::Db& db, core::Outbox& outbox, std::filesystem::path file)
    : db_(db), outbox_(outbox), file_(std::move(file)) {
  if (auto c = db_.meta("audit.csms_cursor")) cursor_ = std::stoull(*c);
}

bool SecurityEventForwarder::queue(const audit::RecordView& r) {
  if (r.seq <= cursor_) return false;
  const auto& ei = audit::info(r.type);
  const bool send = ei.ocpp && ei.critical;
  storage::Db::Tx tx(db_);
  if (send) {
    json::object p{{"type", ei.name}, {"timestamp", r.time}};
    const std::string tech = r.tech_info();
    if (!tech.empty() && tech != "{}") p["techInfo"] = tech;
    outbox_.push("SecurityEventNotification", json::serialize(p));
  }
  db_.set_meta("audit.csms_cursor", std::to_string(r.seq));
  tx.commit();
  cursor_ = r.seq;
  return send;
}

int SecurityEventForwarder::catch_up() {
  int n = 0;
  audit::for_each_record(file_, cursor_ + 1, [&](const audit::RecordView& r) {
    n += queue(r) ? 1 : 0;
    return true;
  });
  return n;
}

bool SecurityEventForwarder::on_record(const audit::RecordView& r) {
  bool queued = false;
  if (r.seq > cursor_ + 1) {
    // Records stored while we were not listening (or whose calls come later):
    // queue them first, in order; true when any was queued, so the caller
    // wakes the sender for them too.
    audit::for_each_record(file_, cursor_ + 1, [&](const audit::RecordView& x) {
      if (x.seq >= r.seq) return false;
      queued = queue(x) || queued;
      return true;
    });
  }
  return queue(r) || queued;
}

}  // namespace cg::ocpp
