// REQ: FW-4, FW-5, LOG-1 — the booting half of the firmware service (see
// firmware.hpp): the boot decision, the confirmation of a new image, recovery
// at start, outcomes for the CSMS, `firmware status`.
#include <unistd.h>

#include <boost/json.hpp>

#include "core/log.hpp"
#include "security/cert_store.hpp"
#include "services/firmware.hpp"
#include "services/firmware_internal.hpp"

namespace cg::services {
namespace json = boost::json;
using audit::Details;
using audit::Event;
using audit::Outcome;
using detail::ref_details;
using firmware::Slot;
using firmware::SlotsState;
using policy::Operation;

// ---- booting

Result<FirmwareService::BootDecision> FirmwareService::boot() {
  return guarded("boot", [&]() -> Result<BootDecision> {
    const auto owned = certs_.roots(security::CertificateType::ManufacturerRootCertificate);
    std::vector<const X509*> anchors;
    for (const auto& r : owned) anchors.push_back(r.get());
    std::optional<BootDecision> chosen;
    std::string why_none;
    // At most: a rollback plus one refusal per slot.
    for (int round = 0; round < 4 && !chosen; ++round) {
      firmware::BootChoice c;
      firmware::SlotsState state;
      auto st = slots_.update([&](SlotsState& s) -> Result<void> {
        c = firmware::select_boot(s, now_());
        state = s;
        return {};
      });
      if (!st) return st.error();
      if (c.rolled_back && state.last_update) {
        const auto& u = *state.last_update;
        Details d = ref_details(u.update);
        d.text("version", u.version).text("reason", u.detail).text("status", u.status);
        if (c.slot) d.text("bootSlot", firmware::to_string(*c.slot));
        gate_.record(system_source(), Event::FirmwareRolledBack, Outcome::Failure, d);
      }
      if (!c.slot) {
        why_none = "no slot holds a good image (slot a: " + std::string(firmware::to_string(state[Slot::A].health)) +
                   ", slot b: " + std::string(firmware::to_string(state[Slot::B].health)) + ")";
        break;
      }
      const Slot slot = *c.slot;
      const firmware::SlotImage image = *state[slot].image;
      auto payload = firmware::load_for_boot(slots_, slot, anchors, image.installed_at, rules_.max_image_bytes);
      Result<void> ok = payload ? apply_rules(payload->info) : Result<void>(payload.error());
      if (ok && payload->info.image_digest_hex != image.digest) {
        ok = fail(Errc::Rejected, "the image is not the one installed in this slot (digest differs)");
      }
      if (!ok) {
        if (payload) ::close(payload->fd);
        const std::string reason = ok.error().message;
        log::error("boot", "slot ", firmware::to_string(slot), " refused: ", reason);
        auto r = slots_.update([&](SlotsState& s) -> Result<void> {
          firmware::refuse(s, slot, reason, now_());
          return {};
        });
        if (!r) return r.error();
        gate_.record(system_source(), Event::SecureBootFailed, Outcome::Failure,
                     Details()
                         .text("slot", firmware::to_string(slot))
                         .text("version", image.version)
                         .text("reason", reason));
        continue;
      }
      if (c.trying) {
        const auto& t = *state.trying;
        Details d = ref_details(t.update);
        d.text("status", "Installing")
            .text("slot", firmware::to_string(slot))
            .text("version", image.version)
            .number("attempt", t.attempts - t.attempts_left)
            .number("attempts", t.attempts);
        gate_.record(system_source(), Event::FirmwareUpdateProgress, Outcome::Success, d);
      }
      chosen = BootDecision{slot, c.trying, image, payload->fd};
    }
    if (!chosen) {
      if (why_none.empty()) why_none = "every slot was refused";
      return fail(Errc::Unavailable, why_none);
    }
    return *chosen;
  });
}

// ---- the running image

Result<firmware::SlotImage> FirmwareService::confirm(Slot slot) {
  return guarded("confirm the firmware", [&]() -> Result<firmware::SlotImage> {
    firmware::SlotImage image;
    firmware::UpdateRef ref;
    auto st = slots_.update([&](SlotsState& s) -> Result<void> {
      if (s.trying && s.trying->slot == slot) ref = s.trying->update;
      if (auto r = firmware::confirm(s, slot, now_()); !r) return r;
      image = *s[slot].image;
      return {};
    });
    if (!st) return st.error();
    // FW-5: the floor rises only now, when the new image has proven itself.
    auto floor = floor_.raise(image.security_version);
    Details d = ref_details(ref);
    d.text("slot", firmware::to_string(slot)).text("version", image.version).number("securityVersion",
                                                                                     image.security_version);
    if (floor) d.number("securityFloor", *floor);
    else d.text("floorError", floor.error().message);
    gate_.record(system_source(), Event::FirmwareUpdated, floor ? Outcome::Success : Outcome::Failure, d);
    if (!floor) return floor.error();
    return image;
  });
}

void FirmwareService::recover() {
  (void)guarded("recover the firmware slots", [&]() -> Result<void> {
    // Most starts have nothing to recover: no write (no slots.json for a station without slots).
    if (auto cur = slots_.load(); !cur || !cur->pending) return {};
    std::optional<firmware::PendingWrite> was;
    auto st = slots_.update([&](SlotsState& s) -> Result<void> {
      if (!s.pending) return {};
      was = s.pending;
      const bool staged = s[s.pending->slot].health == firmware::SlotHealth::Staged;
      firmware::abandon(s, staged ? "InstallationFailed" : "DownloadFailed", "interrupted by a restart", now_());
      return {};
    });
    if (!st) return st.error();
    if (!was) return {};
    (void)slots_.clear_slot(was->slot);
    Details d = ref_details(was->update);
    d.text("status", "interrupted").text("reason", "interrupted by a restart").text("slot",
                                                                                    firmware::to_string(was->slot));
    gate_.record(system_source(), Event::FirmwareUpdateProgress, Outcome::Failure, d);
    return {};
  });
}

std::optional<firmware::UpdateOutcome> FirmwareService::unreported_outcome() {
  auto s = slots_.load();
  if (!s || !s->last_update || s->last_update->reported) return std::nullopt;
  return s->last_update;
}

void FirmwareService::mark_reported() {
  (void)slots_.update([](SlotsState& s) -> Result<void> {
    if (s.last_update) s.last_update->reported = true;
    return {};
  });
}

Result<std::string> FirmwareService::status_json(const policy::Principal& who) {
  if (auto ok = gate_.admit(who, Operation::ReadStatus, "firmware status"); !ok) return ok.error();
  return guarded("firmware status", [&]() -> Result<std::string> {
    auto s = slots_.load();
    if (!s) return s.error();
    auto floor = floor_.value();
    if (!floor) return floor.error();
    json::value v = json::parse(firmware::to_json(*s));
    json::object& o = v.as_object();
    o.erase("format");
    o["security_floor"] = *floor;
    o["model"] = rules_.model;
    return json::serialize(v);
  });
}

}  // namespace cg::services
