// Driver authorization data: local authorization list and authorization cache.
// Tokens are stored only as a keyed hash (HMAC-SHA256 with a per-device secret),
// so a copy of the database does not reveal badge ids. REQ: CHG-1, CHG-2, LOG-5
#pragma once
#include <array>
#include <boost/json/object.hpp>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/storage.hpp"

namespace cg::security {
class KeyStore;
}

namespace cg::station {

struct IdToken {
  std::string id;    // idToken (<= 36)
  std::string type;  // IdTokenEnumType
  boost::json::object to_json() const;
  bool operator==(const IdToken& o) const { return id == o.id && type == o.type; }
  // For diagnostics: "ISO14443:04**…**9A" — never the full id (LOG-5).
  std::string masked() const;
};

class AuthStore {
 public:
  AuthStore(storage::Db& db, std::array<std::uint8_t, 32> key);

  std::string token_key(const IdToken& t) const;
  // CHG-2, LOG-5: every IdTokenType object ({"idToken": id, "type": t}) in `v`,
  // at any depth (groupIdToken included), gets its id replaced by the masked
  // form and the keyed hash added ("hash"), so that what is kept after the
  // CSMS has the message can still be matched, never read.
  void redact_id_tokens(boost::json::value& v) const;
  std::string redact_id_tokens(std::string_view json_text) const;

  // idTokenInfo from the local list / the cache (cache entries older than
  // lifetime_s or past their cacheExpiryDateTime are ignored).
  std::optional<boost::json::object> from_list(const IdToken& t);
  std::optional<boost::json::object> from_cache(const IdToken& t, long long lifetime_s);
  void cache_put(const IdToken& t, const boost::json::object& info);
  void clear_cache();

  int list_version();
  int list_entries();
  struct Entry {
    IdToken token;
    std::optional<boost::json::object> info;  // absent = remove (differential)
  };
  enum class UpdateStatus { Accepted, Failed, VersionMismatch };
  UpdateStatus update_list(int version, bool full, const std::vector<Entry>& entries);

  // The per-device key of the hashes, sealed by the key store in
  // <state_dir>/token.key.sealed; created (CSPRNG) when missing; a plain
  // token.key of an older release is sealed and removed (security/sealed_secret.hpp).
  static std::array<std::uint8_t, 32> load_or_create_key(security::KeyStore& keys, const std::filesystem::path& state_dir);

 private:
  storage::Db& db_;
  std::array<std::uint8_t, 32> key_;
};

}  // namespace cg::station
