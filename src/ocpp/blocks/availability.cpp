#include "ocpp/blocks/availability.hpp"

#include <boost/json.hpp>

namespace cg::ocpp {
namespace json = boost::json;
using services::AvailabilityService;

AvailabilityBlock::AvailabilityBlock(SessionPort& session, Dispatcher& d, AvailabilityService& availability)
    : session_(session), availability_(availability) {
  d.add("ChangeAvailability", [this](const json::object& r) { return on_change_availability(r); });
  d.add("Reset", [this](const json::object& r) { return on_reset(r); });
}

Reply AvailabilityBlock::on_change_availability(const json::object& req) {
  const bool operative = req.at("operationalStatus").as_string() == "Operative";
  std::optional<int> evse, connector;
  if (auto* e = req.if_contains("evse")) {
    const auto& o = e->as_object();
    evse = static_cast<int>(o.at("id").to_number<long long>());
    if (auto* c = o.if_contains("connectorId")) connector = static_cast<int>(c->to_number<long long>());
  }
  const auto r = availability_.change_availability(session_.csms(), evse, connector, operative);
  if (!r) return refusal(r.error());
  switch (*r) {
    case station::Station::AvailStatus::Accepted: return status_reply("Accepted");
    case station::Station::AvailStatus::Scheduled: return status_reply("Scheduled");
    case station::Station::AvailStatus::Rejected: break;
  }
  return status_reply("Rejected");
}

Reply AvailabilityBlock::on_reset(const json::object& req) {
  const auto type = req.at("type").as_string() == "OnIdle" ? AvailabilityService::ResetType::OnIdle
                                                          : AvailabilityService::ResetType::Immediate;
  const auto r = availability_.reset(session_.csms(), type, req.contains("evseId"));
  if (!r) return refusal(r.error());
  switch (*r) {
    case AvailabilityService::ResetStatus::Rejected: return status_reply("Rejected", "UnsupportedRequest");
    case AvailabilityService::ResetStatus::Scheduled: return status_reply("Scheduled");
    case AvailabilityService::ResetStatus::Accepted: break;
  }
  Reply rep = status_reply("Accepted");
  // The restart waits until the answer is out (or the connection is gone).
  rep.after_written = [this, who = audit::Source::of(session_.csms())] { reset_now(who); };
  return rep;
}

void AvailabilityBlock::reset_now(const audit::Source& who) {
  availability_.perform_reset(who, "RemoteReset");
  session_.restart();
}

void AvailabilityBlock::tick() {
  if (auto who = availability_.due_reset()) reset_now(*who);
}

}  // namespace cg::ocpp
