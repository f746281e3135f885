#include "station/auth.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <stdexcept>

#include "core/clock.hpp"
#include "security/redact.hpp"
#include "security/sealed_secret.hpp"

namespace cg::station {
namespace json = boost::json;

json::object IdToken::to_json() const { return json::object{{"idToken", id}, {"type", type}}; }

std::string IdToken::masked() const { return type + ":" + security::mask_identifier(id); }

AuthStore::AuthStore(storage::Db& db, std::array<std::uint8_t, 32> key) : db_(db), key_(key) {}

std::string AuthStore::token_key(const IdToken& t) const {
  const std::string msg = t.type + '\x1f' + t.id;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()), reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(), mac, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[mac[i] >> 4];
    out += hex[mac[i] & 15];
  }
  return out;
}

void AuthStore::redact_id_tokens(json::value& v) const {
  if (auto* a = v.if_array()) {
    for (auto& e : *a) redact_id_tokens(e);
    return;
  }
  auto* o = v.if_object();
  if (!o) return;
  auto* id = o->if_contains("idToken");
  auto* type = o->if_contains("type");
  // Once: an object that carries its hash was redacted before.
  if (id && id->is_string() && type && type->is_string() && !o->contains("hash")) {
    const IdToken t{std::string(id->as_string()), std::string(type->as_string())};
    (*o)["idToken"] = security::mask_identifier(t.id);
    (*o)["hash"] = token_key(t);
  }
  for (auto& [k, child] : *o) {
    if (child.is_object() || child.is_array()) redact_id_tokens(child);
  }
}

std::string AuthStore::redact_id_tokens(std::string_view json_text) const {
  json::error_code ec;
  auto v = json::parse(json_text, ec);
  if (ec) return "(unreadable; removed)";  // never keep what cannot be checked
  redact_id_tokens(v);
  return json::serialize(v);
}

std::optional<json::object> AuthStore::from_list(const IdToken& t) {
  auto st = db_.prepare("SELECT info FROM auth_list WHERE token_key=?");
  st.bind(1, token_key(t));
  if (!st.step()) return std::nullopt;
  return json::parse(st.col_text(0)).as_object();
}

std::optional<json::object> AuthStore::from_cache(const IdToken& t, long long lifetime_s) {
  auto st = db_.prepare("SELECT info, updated_at FROM auth_cache WHERE token_key=?");
  st.bind(1, token_key(t));
  if (!st.step()) return std::nullopt;
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(clock::now_utc().time_since_epoch()).count();
  if (now_s - st.col_int(1) > lifetime_s) return std::nullopt;
  auto info = json::parse(st.col_text(0)).as_object();
  if (auto* exp = info.if_contains("cacheExpiryDateTime"); exp && exp->is_string()) {
    auto t_exp = clock::parse_rfc3339(exp->as_string());
    if (t_exp && *t_exp < clock::now_utc()) return std::nullopt;
  }
  return info;
}

void AuthStore::cache_put(const IdToken& t, const json::object& info) {
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(clock::now_utc().time_since_epoch()).count();
  auto st = db_.prepare(
      "INSERT INTO auth_cache(token_key,info,updated_at) VALUES(?,?,?) "
      "ON CONFLICT(token_key) DO UPDATE SET info=excluded.info, updated_at=excluded.updated_at");
  json::value kept = info;  // groupIdToken only as masked id + keyed hash (CHG-2)
  redact_id_tokens(kept);
  st.bind(1, token_key(t)).bind(2, json::serialize(kept)).bind(3, static_cast<std::int64_t>(now_s)).run();
}

void AuthStore::clear_cache() { db_.exec("DELETE FROM auth_cache"); }

int AuthStore::list_version() {
  auto v = db_.meta("auth_list.version");
  return v ? std::stoi(*v) : 0;
}

int AuthStore::list_entries() {
  auto st = db_.prepare("SELECT COUNT(*) FROM auth_list");
  st.step();
  return static_cast<int>(st.col_int(0));
}

AuthStore::UpdateStatus AuthStore::update_list(int version, bool full, const std::vector<Entry>& entries) {
  if (!full && version <= list_version()) return UpdateStatus::VersionMismatch;
  storage::Db::Tx tx(db_);
  if (full) db_.exec("DELETE FROM auth_list");
  auto ins = db_.prepare(
      "INSERT INTO auth_list(token_key,info) VALUES(?,?) ON CONFLICT(token_key) DO UPDATE SET info=excluded.info");
  auto del = db_.prepare("DELETE FROM auth_list WHERE token_key=?");
  for (const auto& e : entries) {
    if (e.info) {
      json::value kept = *e.info;  // groupIdToken only as masked id + keyed hash (CHG-2)
      redact_id_tokens(kept);
      ins.bind(1, token_key(e.token)).bind(2, json::serialize(kept)).run();
    } else {
      del.bind(1, token_key(e.token)).run();
    }
  }
  db_.set_meta("auth_list.version", std::to_string(version));
  tx.commit();
  return UpdateStatus::Accepted;
}

std::array<std::uint8_t, 32> AuthStore::load_or_create_key(security::KeyStore& keys, const std::filesystem::path& state_dir) {
  return security::load_or_create_sealed_secret(keys, state_dir / "token.key.sealed", security::kTokenHashKeyPurpose,
                                                state_dir / "token.key");
}

}  // namespace cg::station
