// REQ: FW-1…FW-3, FW-5, FW-7, COM-7, COM-8, AUTHZ-1, LOG-1 — see firmware.hpp.
// The installing half of the firmware service; booting and the running image: firmware_boot.cpp.
#include "services/firmware.hpp"

#include "services/firmware_internal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>

#include "core/log.hpp"
#include "security/cert_store.hpp"

namespace cg::services {
namespace fs = std::filesystem;
using detail::ref_details;
using audit::Details;
using audit::Event;
using audit::Outcome;
using firmware::Slot;
using firmware::SlotsState;
using policy::Operation;

namespace {

std::int64_t system_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

firmware::SlotImage slot_image(const firmware::ImageInfo& info, std::int64_t now) {
  firmware::SlotImage im;
  im.model = info.manifest.model;
  im.version = info.manifest.version;
  im.security_version = info.manifest.security_version;
  im.size = info.image_size;
  im.digest = info.image_digest_hex;
  im.signer = info.signer;
  im.installed_at = now;
  return im;
}

// The OCPP status a failed check reports.
std::string status_for(const Error& e) {
  if (e.reason == firmware::kReasonInvalidSignature) return "InvalidSignature";
  if (e.reason == firmware::kReasonInvalidCertificate) return "InvalidCertificate";
  if (e.reason == kReasonInstallVerificationFailed || e.reason == firmware::kReasonInvalidImage ||
      e.reason == firmware::kReasonTooLarge)
    return "InstallVerificationFailed";
  return "InstallationFailed";
}

}  // namespace

FirmwareService::FirmwareService(Gate& gate, firmware::SlotStore& slots, firmware::SecurityFloor& floor,
                                 const security::CertStore& certs, FirmwareRules rules, Now now)
    : gate_(gate), slots_(slots), floor_(floor), certs_(certs), rules_(std::move(rules)),
      now_(now ? std::move(now) : Now(&system_now)) {}

// ---- helpers

Result<firmware::ImageVerifier> FirmwareService::verifier_for(const firmware::SigningCertificate& signer,
                                                              std::string_view sig,
                                                              firmware::ImageVerifier::Hashing hashing) {
  return firmware::ImageVerifier::create(signer, sig, rules_.max_image_bytes, hashing);
}

Result<void> FirmwareService::apply_rules(const firmware::ImageInfo& info) {
  const auto& m = info.manifest;
  if (m.model != rules_.model) {
    return Error{Errc::Rejected,
                 "the image is for model '" + m.model + "', this station is a '" + rules_.model + "'",
                 std::string(kReasonInstallVerificationFailed)};
  }
  auto floor = floor_.value();
  if (!floor) return floor.error();
  if (m.security_version < *floor) {
    return Error{Errc::Rejected,
                 "security version " + std::to_string(m.security_version) + " is below this station's floor " +
                     std::to_string(*floor) + " (anti-rollback)",
                 std::string(kReasonInstallVerificationFailed)};
  }
  return {};
}

void FirmwareService::record_failure(const policy::Principal& who, const Error& e, const firmware::UpdateRef& ref) {
  Details d = ref_details(ref);
  d.text("reason", e.message).text("status", status_for(e));
  if (e.reason == firmware::kReasonInvalidSignature) {
    gate_.record(who, Event::InvalidFirmwareSignature, Outcome::Failure, d);
  } else if (e.reason == firmware::kReasonInvalidCertificate) {
    gate_.record(who, Event::InvalidFirmwareSigningCertificate, Outcome::Failure, d);
  } else {
    gate_.record(who, Event::FirmwareUpdateProgress, Outcome::Failure, d);
  }
}

// ---- installing

Result<Slot> FirmwareService::reserve_slot(const firmware::UpdateRef& ref) {
  Slot target = Slot::B;
  auto st = slots_.update([&](SlotsState& s) -> Result<void> {
    auto t = firmware::install_target(s);
    if (!t) return t.error();
    target = *t;
    firmware::begin_write(s, target, ref);
    return {};
  });
  if (!st) return st.error();
  return target;
}

Result<firmware::SigningCertificate> FirmwareService::check_signer(const policy::Principal& who, std::string_view pem,
                                                                   std::string_view request) {
  if (auto ok = gate_.admit(who, Operation::UpdateFirmware, request); !ok) return ok.error();
  return guarded("check the firmware signing certificate", [&]() -> Result<firmware::SigningCertificate> {
    const auto owned = certs_.roots(security::CertificateType::ManufacturerRootCertificate);
    std::vector<const X509*> anchors;
    for (const auto& r : owned) anchors.push_back(r.get());
    auto signer = firmware::check_signing_certificate(pem, anchors);
    if (!signer) {
      Error e = signer.error();
      if (anchors.empty()) e.message = "no ManufacturerRootCertificate is installed (pki install-root); " + e.message;
      gate_.record(who, Event::InvalidFirmwareSigningCertificate, Outcome::Failure,
                   Details().text("request", request).text("reason", e.message));
      return e;
    }
    return signer;
  });
}

Result<void> FirmwareService::refuse_unsigned(const policy::Principal& who, std::optional<std::int64_t> request_id) {
  if (auto ok = gate_.admit(who, Operation::UpdateFirmware, "UpdateFirmware"); !ok) return ok;
  const Error e{Errc::Rejected, "unsigned firmware is never installed: signature and signingCertificate are required",
                "UnsignedFirmware"};
  Details d = ref_details(firmware::UpdateRef{request_id, "ocpp", who.name});
  d.text("status", "Rejected").text("reason", e.message);
  gate_.record(who, Event::FirmwareUpdateProgress, Outcome::Failure, d);
  return e;
}

Result<void> FirmwareService::refuse_location(const policy::Principal& who, std::optional<std::int64_t> request_id,
                                              const std::string& why) {
  if (auto ok = gate_.admit(who, Operation::UpdateFirmware, "UpdateFirmware"); !ok) return ok;
  const Error e{Errc::Rejected, "firmware location refused: " + why, "InvalidURL"};
  Details d = ref_details(firmware::UpdateRef{request_id, "ocpp", who.name});
  d.text("status", "Rejected").text("reason", e.message);
  gate_.record(who, Event::FirmwareUpdateProgress, Outcome::Failure, d);
  return e;
}

Result<firmware::SlotWriter> FirmwareService::begin_write(const policy::Principal& who,
                                                          const firmware::SigningCertificate& signer,
                                                          std::string signature_b64, std::string certificate_pem,
                                                          firmware::UpdateRef ref) {
  if (auto ok = gate_.admit(who, Operation::UpdateFirmware, "write a firmware image"); !ok) return ok.error();
  return guarded("begin a firmware write", [&]() -> Result<firmware::SlotWriter> {
    // A download decrypts on this thread: both hashes go to workers.
    auto v = verifier_for(signer, signature_b64, firmware::ImageVerifier::Hashing::Background);
    if (!v) {
      record_failure(who, v.error(), ref);
      return v.error();
    }
    auto target = reserve_slot(ref);
    if (!target) return target.error();
    auto w = firmware::SlotWriter::open(slots_, *target, std::move(*v), std::move(signature_b64),
                                        std::move(certificate_pem));
    if (!w) {
      (void)slots_.update([&](SlotsState& s) -> Result<void> {
        firmware::abandon(s, "InstallationFailed", w.error().message, now_());
        return {};
      });
      return w.error();
    }
    return w;
  });
}

Result<FirmwareService::Staged> FirmwareService::finish_write(const policy::Principal& who,
                                                              firmware::SlotWriter& writer) {
  return guarded("finish a firmware write", [&]() -> Result<Staged> {
    const Slot slot = writer.slot();
    auto info = writer.finish();
    Result<void> rules = info ? apply_rules(*info) : Result<void>(info.error());
    firmware::UpdateRef ref;
    auto st = slots_.update([&](SlotsState& s) -> Result<void> {
      if (!s.pending || s.pending->slot != slot) return fail(Errc::Conflict, "the write was canceled");
      ref = s.pending->update;
      if (!rules) {
        firmware::abandon(s, status_for(rules.error()), rules.error().message, now_());
        return {};
      }
      firmware::staged(s, slot, slot_image(*info, now_()));
      return {};
    });
    if (!st) return st.error();
    if (!rules) {
      (void)slots_.clear_slot(slot);
      record_failure(who, rules.error(), ref);
      return rules.error();
    }
    Details d = ref_details(ref);
    d.text("status", "SignatureVerified")
        .text("slot", firmware::to_string(slot))
        .text("version", info->manifest.version)
        .number("securityVersion", info->manifest.security_version)
        .text("signer", info->signer)
        .text("digest", info->image_digest_hex);
    gate_.record(who, Event::FirmwareUpdateProgress, Outcome::Success, d);
    return Staged{slot, std::move(*info)};
  });
}

void FirmwareService::abandon_write(const policy::Principal& who, const std::string& status, const std::string& reason) {
  (void)guarded("abandon a firmware write", [&]() -> Result<void> {
    std::optional<firmware::UpdateRef> ref;
    std::optional<Slot> slot;
    auto st = slots_.update([&](SlotsState& s) -> Result<void> {
      if (!s.pending) return {};
      ref = s.pending->update;
      slot = s.pending->slot;
      firmware::abandon(s, status, reason, now_());
      return {};
    });
    if (!st) return st.error();
    if (!slot) return {};
    (void)slots_.clear_slot(*slot);
    Details d = ref_details(*ref);
    d.text("status", status.empty() ? "Canceled" : status).text("reason", reason);
    gate_.record(who, Event::FirmwareUpdateProgress, Outcome::Failure, d);
    return {};
  });
}

void FirmwareService::install_scheduled(const policy::Principal& who, const std::string& why) {
  (void)guarded("schedule a firmware install", [&]() -> Result<void> {
    auto s = slots_.load();
    if (!s) return s.error();
    Details d = s->pending ? ref_details(s->pending->update) : Details();
    d.text("status", "InstallScheduled").text("waitsFor", why);
    gate_.record(who, Event::FirmwareUpdateProgress, Outcome::Success, d);
    return {};
  });
}

Result<FirmwareService::Staged> FirmwareService::activate(const policy::Principal& who) {
  if (auto ok = gate_.admit(who, Operation::UpdateFirmware, "activate a firmware image"); !ok) return ok.error();
  return guarded("activate a firmware image", [&]() -> Result<Staged> {
    Staged out{Slot::B, {}};
    firmware::UpdateRef ref;
    auto st = slots_.update([&](SlotsState& s) -> Result<void> {
      if (!s.pending) return fail(Errc::Conflict, "no firmware image is staged");
      const Slot slot = s.pending->slot;
      ref = s.pending->update;
      if (auto r = firmware::activate(s, slot, rules_.boot_attempts, ref); !r) return r;
      out.slot = slot;
      out.info.manifest.version = s[slot].image->version;
      out.info.manifest.security_version = s[slot].image->security_version;
      out.info.manifest.model = s[slot].image->model;
      out.info.signer = s[slot].image->signer;
      out.info.image_digest_hex = s[slot].image->digest;
      return {};
    });
    if (!st) return st.error();
    Details d = ref_details(ref);
    d.text("status", "InstallRebooting")
        .text("slot", firmware::to_string(out.slot))
        .text("version", out.info.manifest.version)
        .number("bootAttempts", rules_.boot_attempts);
    gate_.record(who, Event::FirmwareUpdateProgress, Outcome::Success, d);
    return out;
  });
}

Result<FirmwareService::Staged> FirmwareService::write_file(const policy::Principal& who, const fs::path& image,
                                                            std::string_view certificate_pem,
                                                            std::string_view signature_b64, bool factory) {
  const char* request = factory ? "firmware install-factory" : "firmware install";
  auto signer = check_signer(who, certificate_pem, request);
  if (!signer) return signer.error();
  return guarded(request, [&]() -> Result<Staged> {
    const firmware::UpdateRef ref{std::nullopt, factory ? "factory" : "local", who.name};
    auto v = verifier_for(*signer, signature_b64);
    if (!v) {
      record_failure(who, v.error(), ref);
      return v.error();
    }
    const int fd = ::open(image.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return fail(Errc::NotFound, "cannot open " + image.string() + ": " + std::strerror(errno));
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    Slot target = Slot::A;
    if (factory) {
      // Slot A is overwritten only by an image known to pass: checked first.
      auto pre = firmware::verify_file(image, *signer, signature_b64, rules_.max_image_bytes);
      Result<void> ok = pre ? apply_rules(*pre) : Result<void>(pre.error());
      if (!ok) {
        record_failure(who, ok.error(), ref);
        return ok.error();
      }
      // A damaged slots.json is what a factory install repairs: start afresh.
      if (auto s = slots_.load(); !s) log::warn("firmware", s.error().message, "; the factory install starts afresh");
    } else {
      auto reserved = reserve_slot(ref);
      if (!reserved) return reserved.error();
      target = *reserved;
    }
    auto info = firmware::write_image_file(slots_, target, fd, std::move(*v), std::string(signature_b64),
                                           std::string(certificate_pem));
    Result<void> rules = info ? apply_rules(*info) : Result<void>(info.error());
    if (!rules) {
      if (!factory) {
        (void)slots_.update([&](SlotsState& s) -> Result<void> {
          firmware::abandon(s, "", "", now_());
          return {};
        });
      }
      (void)slots_.clear_slot(target);
      record_failure(who, rules.error(), ref);
      return rules.error();
    }
    const std::int64_t now = now_();
    Result<SlotsState> st = fail(Errc::Internal, "not written");
    if (factory) {
      auto fresh = slots_.load();
      SlotsState s = fresh ? *fresh : SlotsState{};
      firmware::factory_installed(s, slot_image(*info, now), now, ref);
      st = slots_.update([&](SlotsState& cur) -> Result<void> {
        cur = s;
        return {};
      });
      if (!st && !fresh) {
        // slots.json was damaged: replace it outright.
        (void)::unlink((slots_.dir() / "slots.json").c_str());
        st = slots_.update([&](SlotsState& cur) -> Result<void> {
          cur = s;
          return {};
        });
      }
    } else {
      st = slots_.update([&](SlotsState& s) -> Result<void> {
        firmware::staged(s, target, slot_image(*info, now));
        return firmware::activate(s, target, rules_.boot_attempts, ref);
      });
    }
    if (!st) return st.error();
    // The factory image is good by definition: the floor starts at its security version.
    if (factory) {
      if (auto f = floor_.raise(info->manifest.security_version); !f) return f.error();
    }
    Details d = ref_details(ref);
    d.text("status", factory ? "Installed" : "InstallRebooting")
        .text("slot", firmware::to_string(target))
        .text("version", info->manifest.version)
        .number("securityVersion", info->manifest.security_version)
        .text("signer", info->signer)
        .text("digest", info->image_digest_hex);
    if (!factory) d.number("bootAttempts", rules_.boot_attempts);
    gate_.record(who, Event::FirmwareUpdateProgress, Outcome::Success, d);
    return Staged{target, std::move(*info)};
  });
}

Result<FirmwareService::Staged> FirmwareService::install_local(const policy::Principal& who, const fs::path& image,
                                                               std::string_view certificate_pem,
                                                               std::string_view signature_b64) {
  return write_file(who, image, certificate_pem, signature_b64, false);
}

Result<FirmwareService::Staged> FirmwareService::install_factory(const policy::Principal& who, const fs::path& image,
                                                                 std::string_view certificate_pem,
                                                                 std::string_view signature_b64) {
  return write_file(who, image, certificate_pem, signature_b64, true);
}

}  // namespace cg::services
