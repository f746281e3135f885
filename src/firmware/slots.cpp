// REQ: FW-4, FW-5, FW-6 — A/B slots, see slots.hpp.
#include "firmware/slots.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>

#include "security/secret_file.hpp"

namespace cg::firmware {
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {
constexpr std::size_t kMaxStateBytes = 64 * 1024;
}

std::string_view to_string(Slot s) noexcept { return s == Slot::A ? "a" : "b"; }

std::optional<Slot> slot_from_string(std::string_view s) noexcept {
  if (s == "a") return Slot::A;
  if (s == "b") return Slot::B;
  return std::nullopt;
}

std::string_view to_string(SlotHealth h) noexcept {
  switch (h) {
    case SlotHealth::Empty: return "empty";
    case SlotHealth::Staged: return "staged";
    case SlotHealth::Trying: return "trying";
    case SlotHealth::Good: return "good";
    case SlotHealth::Bad: return "bad";
  }
  return "empty";
}

namespace {
std::optional<SlotHealth> health_from_string(std::string_view s) {
  for (auto h : {SlotHealth::Empty, SlotHealth::Staged, SlotHealth::Trying, SlotHealth::Good, SlotHealth::Bad})
    if (to_string(h) == s) return h;
  return std::nullopt;
}
}  // namespace

// ---- transitions

Result<Slot> install_target(const SlotsState& s) {
  if (s.trying) {
    return fail(Errc::Conflict, "the image in slot " + std::string(to_string(s.trying->slot)) +
                                    " is still being tried; it must confirm itself or roll back first");
  }
  if (s.pending) {
    return fail(Errc::Conflict, "another update is being written into slot " + std::string(to_string(s.pending->slot)));
  }
  const Slot base = s.booted ? *s.booted : s.active ? *s.active : Slot::A;
  const Slot target = other(base);
  if (s.active == target) return fail(Errc::Conflict, "slot " + std::string(to_string(target)) + " is the active slot");
  return target;
}

void begin_write(SlotsState& s, Slot slot, UpdateRef ref) {
  s[slot] = SlotRecord{SlotHealth::Empty, std::nullopt};
  s.pending = PendingWrite{slot, std::move(ref)};
}

void abandon(SlotsState& s, const std::string& status, const std::string& reason, std::int64_t now) {
  if (!s.pending) return;
  const Slot slot = s.pending->slot;
  const std::string version = s[slot].image ? s[slot].image->version : std::string();
  if (s[slot].health == SlotHealth::Empty || s[slot].health == SlotHealth::Staged) s[slot] = SlotRecord{};
  if (!status.empty()) s.last_update = UpdateOutcome{s.pending->update, version, status, reason, now, false};
  s.pending.reset();
}

void staged(SlotsState& s, Slot slot, SlotImage image) { s[slot] = SlotRecord{SlotHealth::Staged, std::move(image)}; }

Result<void> activate(SlotsState& s, Slot slot, int attempts, UpdateRef ref) {
  if (s[slot].health != SlotHealth::Staged || !s[slot].image) {
    return fail(Errc::Conflict, "slot " + std::string(to_string(slot)) + " holds no staged image");
  }
  if (s.trying) return fail(Errc::Conflict, "another image is being tried");
  if (attempts < 1) return fail(Errc::InvalidArgument, "boot attempts must be at least 1");
  s[slot].health = SlotHealth::Trying;
  s.trying = TryingInfo{slot, attempts, attempts, std::move(ref)};
  if (s.pending && s.pending->slot == slot) s.pending.reset();
  return {};
}

void refuse(SlotsState& s, Slot slot, const std::string& reason, std::int64_t now) {
  s[slot].health = SlotHealth::Bad;
  if (s.trying && s.trying->slot == slot) {
    s.last_update = UpdateOutcome{s.trying->update, s[slot].image ? s[slot].image->version : std::string(),
                                  "InstallationFailed", reason, now, false};
    s.trying.reset();
  }
  if (s.active == slot) s.active.reset();
  if (s.booted == slot) s.booted.reset();
}

BootChoice select_boot(SlotsState& s, std::int64_t now) {
  BootChoice c;
  if (s.trying) {
    TryingInfo& t = *s.trying;
    if (t.attempts_left > 0 && s[t.slot].health == SlotHealth::Trying) {
      --t.attempts_left;
      s.booted = t.slot;
      c.slot = t.slot;
      c.trying = true;
      return c;
    }
    refuse(s, t.slot, "not confirmed after " + std::to_string(t.attempts) + " boot(s)", now);
    c.rolled_back = true;
  }
  const auto good = [&](Slot x) { return s[x].health == SlotHealth::Good; };
  std::optional<Slot> pick;
  if (s.active && good(*s.active)) {
    pick = s.active;
  } else if (s.active && good(other(*s.active))) {
    pick = other(*s.active);
  } else if (good(Slot::A)) {
    pick = Slot::A;
  } else if (good(Slot::B)) {
    pick = Slot::B;
  }
  if (pick && !s.active) s.active = pick;
  s.booted = pick;
  c.slot = pick;
  return c;
}

Result<void> confirm(SlotsState& s, Slot slot, std::int64_t now) {
  if (!s.trying || s.trying->slot != slot || s[slot].health != SlotHealth::Trying) {
    return fail(Errc::Conflict, "slot " + std::string(to_string(slot)) + " is not being tried");
  }
  if (s.booted != slot) return fail(Errc::Conflict, "slot " + std::string(to_string(slot)) + " is not the booted slot");
  s[slot].health = SlotHealth::Good;
  s.active = slot;
  s.last_update = UpdateOutcome{s.trying->update, s[slot].image ? s[slot].image->version : std::string(), "Installed",
                                "confirmed after boot", now, false};
  s.trying.reset();
  return {};
}

void factory_installed(SlotsState& s, SlotImage image, std::int64_t now, UpdateRef ref) {
  const std::string version = image.version;
  s[Slot::A] = SlotRecord{SlotHealth::Good, std::move(image)};
  s.active = Slot::A;
  if (s.trying && s.trying->slot == Slot::A) s.trying.reset();
  if (s.pending && s.pending->slot == Slot::A) s.pending.reset();
  s.last_update = UpdateOutcome{std::move(ref), version, "Installed", "factory image", now, true};
}

// ---- JSON

namespace {

json::value opt_slot(const std::optional<Slot>& s) {
  return s ? json::value(json::string(to_string(*s))) : json::value(nullptr);
}

json::object ref_json(const UpdateRef& r) {
  json::object o{{"origin", r.origin}, {"requested_by", r.requested_by}};
  o["request_id"] = r.request_id ? json::value(*r.request_id) : json::value(nullptr);
  return o;
}

struct Reader {
  std::string error;
  const json::value* field(const json::object& o, std::string_view k, json::kind kind, bool nullable = false) {
    const auto* v = o.if_contains(k);
    if (!v) {
      if (error.empty()) error = "missing \"" + std::string(k) + "\"";
      return nullptr;
    }
    if (nullable && v->is_null()) return v;
    if (v->kind() != kind && !(kind == json::kind::int64 && v->is_uint64())) {
      if (error.empty()) error = "\"" + std::string(k) + "\" has the wrong type";
      return nullptr;
    }
    return v;
  }
  std::string str(const json::object& o, std::string_view k) {
    const auto* v = field(o, k, json::kind::string);
    return v ? std::string(v->as_string()) : std::string();
  }
  std::int64_t i64(const json::object& o, std::string_view k) {
    const auto* v = field(o, k, json::kind::int64);
    if (!v) return 0;
    if (v->is_uint64()) {
      if (v->as_uint64() > static_cast<std::uint64_t>(INT64_MAX)) error = "\"" + std::string(k) + "\" out of range";
      return static_cast<std::int64_t>(v->as_uint64());
    }
    return v->as_int64();
  }
  std::optional<Slot> slot(const json::object& o, std::string_view k) {
    const auto* v = field(o, k, json::kind::string, true);
    if (!v || v->is_null()) return std::nullopt;
    auto s = slot_from_string(v->as_string());
    if (!s && error.empty()) error = "\"" + std::string(k) + "\" is not a slot";
    return s;
  }
  UpdateRef ref(const json::object& o) {
    UpdateRef r;
    r.origin = str(o, "origin");
    r.requested_by = str(o, "requested_by");
    if (const auto* v = field(o, "request_id", json::kind::int64, true); v && !v->is_null()) r.request_id = i64(o, "request_id");
    return r;
  }
  const json::object* obj(const json::object& o, std::string_view k, bool nullable = false) {
    const auto* v = field(o, k, json::kind::object, nullable);
    return v && v->is_object() ? &v->as_object() : nullptr;
  }
};

}  // namespace

std::string to_json(const SlotsState& s) {
  json::object slots;
  for (const Slot x : {Slot::A, Slot::B}) {
    json::object o{{"state", to_string(s[x].health)}};
    if (const auto& im = s[x].image) {
      o["image"] = json::object{{"model", im->model},
                                {"version", im->version},
                                {"security_version", im->security_version},
                                {"size", im->size},
                                {"digest", im->digest},
                                {"signer", im->signer},
                                {"installed_at", im->installed_at}};
    } else {
      o["image"] = nullptr;
    }
    slots[to_string(x)] = std::move(o);
  }
  json::object root{{"format", 1}, {"slots", std::move(slots)}, {"active", opt_slot(s.active)},
                    {"booted", opt_slot(s.booted)}};
  root["pending"] = s.pending ? json::value(json::object{{"slot", to_string(s.pending->slot)},
                                                          {"update", ref_json(s.pending->update)}})
                               : json::value(nullptr);
  if (s.trying) {
    root["trying"] = json::object{{"slot", to_string(s.trying->slot)},
                                  {"attempts", s.trying->attempts},
                                  {"attempts_left", s.trying->attempts_left},
                                  {"update", ref_json(s.trying->update)}};
  } else {
    root["trying"] = nullptr;
  }
  if (const auto& u = s.last_update) {
    root["last_update"] = json::object{{"update", ref_json(u->update)}, {"version", u->version},
                                       {"status", u->status},           {"detail", u->detail},
                                       {"at", u->at},                   {"reported", u->reported}};
  } else {
    root["last_update"] = nullptr;
  }
  return json::serialize(root) + "\n";
}

Result<SlotsState> from_json(std::string_view text) {
  if (text.size() > kMaxStateBytes) return fail(Errc::Storage, "larger than 64 KiB");
  boost::system::error_code ec;
  json::parse_options po;
  po.max_depth = 8;
  const json::value v = json::parse(text, ec, {}, po);
  if (ec || !v.is_object()) return fail(Errc::Storage, "not a JSON object");
  const json::object& root = v.as_object();
  Reader r;
  SlotsState s;
  if (r.i64(root, "format") != 1 && r.error.empty()) r.error = "unknown format";
  if (const auto* slots = r.obj(root, "slots")) {
    for (const Slot x : {Slot::A, Slot::B}) {
      const auto* o = r.obj(*slots, to_string(x));
      if (!o) break;
      const auto h = health_from_string(r.str(*o, "state"));
      if (!h) {
        if (r.error.empty()) r.error = "unknown slot state";
        break;
      }
      s[x].health = *h;
      if (const auto* im = r.obj(*o, "image", true)) {
        SlotImage i;
        i.model = r.str(*im, "model");
        i.version = r.str(*im, "version");
        const std::int64_t sv = r.i64(*im, "security_version");
        if (sv < 0 || sv > 0x7fffffff) r.error = "security_version out of range";
        i.security_version = static_cast<std::uint32_t>(sv);
        i.size = static_cast<std::uint64_t>(r.i64(*im, "size"));
        i.digest = r.str(*im, "digest");
        i.signer = r.str(*im, "signer");
        i.installed_at = r.i64(*im, "installed_at");
        s[x].image = std::move(i);
      }
      if (s[x].health != SlotHealth::Empty && !s[x].image && r.error.empty()) r.error = "a non-empty slot without image";
    }
  }
  s.active = r.slot(root, "active");
  s.booted = r.slot(root, "booted");
  if (const auto* p = r.obj(root, "pending", true)) {
    PendingWrite pw;
    const auto slot = r.slot(*p, "slot");
    pw.slot = slot.value_or(Slot::B);
    if (const auto* u = r.obj(*p, "update")) pw.update = r.ref(*u);
    if (!slot && r.error.empty()) r.error = "pending without a slot";
    s.pending = std::move(pw);
  }
  if (const auto* t = r.obj(root, "trying", true)) {
    TryingInfo ti;
    const auto slot = r.slot(*t, "slot");
    ti.slot = slot.value_or(Slot::B);
    ti.attempts = static_cast<int>(r.i64(*t, "attempts"));
    ti.attempts_left = static_cast<int>(r.i64(*t, "attempts_left"));
    if (const auto* u = r.obj(*t, "update")) ti.update = r.ref(*u);
    if (!slot && r.error.empty()) r.error = "trying without a slot";
    if ((ti.attempts < 1 || ti.attempts > 100 || ti.attempts_left < 0 || ti.attempts_left > ti.attempts) &&
        r.error.empty()) {
      r.error = "boot attempts out of range";
    }
    s.trying = std::move(ti);
  }
  if (const auto* u = r.obj(root, "last_update", true)) {
    UpdateOutcome o;
    if (const auto* ref = r.obj(*u, "update")) o.update = r.ref(*ref);
    o.version = r.str(*u, "version");
    o.status = r.str(*u, "status");
    o.detail = r.str(*u, "detail");
    o.at = r.i64(*u, "at");
    if (const auto* rep = r.field(*u, "reported", json::kind::bool_)) o.reported = rep->as_bool();
    s.last_update = std::move(o);
  }
  if (!r.error.empty()) return fail(Errc::Storage, r.error);
  return s;
}

// ---- SlotStore

SlotStore::SlotStore(fs::path dir) : dir_(std::move(dir)) {}

fs::path SlotStore::slot_dir(Slot s) const { return dir_ / (std::string("slot-") + std::string(to_string(s))); }

Result<void> SlotStore::ensure_dirs() const {
  for (const fs::path& d : {dir_, slot_dir(Slot::A), slot_dir(Slot::B)}) {
    if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) {
      return fail(Errc::Storage, "cannot create " + d.string() + ": " + std::strerror(errno));
    }
  }
  return {};
}

Result<SlotsState> SlotStore::load() const {
  const fs::path file = dir_ / "slots.json";
  if (::access(file.c_str(), F_OK) != 0 && errno == ENOENT) return SlotsState{};
  // One byte over the limit is read, so that from_json names the size.
  auto text = security::read_file_bounded(file, kMaxStateBytes + 1);
  if (!text) return fail(Errc::Storage, text.error().message);
  auto s = from_json(*text);
  if (!s) return fail(Errc::Storage, file.string() + " is damaged (" + s.error().message + ")");
  return s;
}

Result<void> SlotStore::save(const SlotsState& s) const {
  if (auto r = ensure_dirs(); !r) return r;
  return security::write_file_durably((dir_ / "slots.json").string(), to_json(s));
}

Result<SlotsState> SlotStore::update(const std::function<Result<void>(SlotsState&)>& change) {
  if (auto r = ensure_dirs(); !r) return r.error();
  const fs::path lock_file = dir_ / "lock";
  const int lock = ::open(lock_file.c_str(), O_CREAT | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock < 0) return fail(Errc::Storage, "cannot open " + lock_file.string() + ": " + std::strerror(errno));
  while (::flock(lock, LOCK_EX) != 0 && errno == EINTR) {
  }
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }
  } unlock{lock};
  auto s = load();
  if (!s) return s.error();
  if (auto r = change(*s); !r) return r.error();
  if (auto r = save(*s); !r) return r.error();
  return s;
}

Result<void> SlotStore::clear_slot(Slot s) {
  if (auto r = ensure_dirs(); !r) return r;
  const fs::path d = slot_dir(s);
  for (const char* name : {"image", "signature", "certificate.pem", "image.partial", "signature.tmp", "certificate.pem.tmp"}) {
    if (::unlink((d / name).c_str()) != 0 && errno != ENOENT) {
      return fail(Errc::Storage, "cannot remove " + (d / name).string() + ": " + std::strerror(errno));
    }
  }
  security::fsync_dir(d.string());
  return {};
}

Result<void> SlotStore::write_credentials(Slot s, std::string_view signature_b64, std::string_view certificate_pem) {
  if (auto r = security::write_file_durably(signature_path(s).string(), std::string(signature_b64) + "\n"); !r) return r;
  return security::write_file_durably(certificate_path(s).string(), certificate_pem);
}

}  // namespace cg::firmware
