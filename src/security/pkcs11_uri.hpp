// REQ: FW-1 (manufacturer's signing key in a token), COM-4
//
// PKCS#11 URIs (RFC 7512) naming a private key, for tools that take "a key
// file or a PKCS#11 URI" (`chargeguard firmware sign --key`):
//
//   pkcs11:token=<token label>;object=<key label>?module-path=<module>&pin-source=<PIN file>
//
// Path attributes: token and object (required), type=private (optional).
// Query attributes: module-path (required: which PKCS#11 library to load) and
// pin-source (required: a file holding the user PIN, mode 0600; a "file:" URI
// or a plain absolute path). pin-value is refused (a PIN on the command line
// is visible to every process); every other attribute is refused by name.
// Values are percent-decoded; the decoded labels follow the key store's rules.
// At most 1024 characters.
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "security/key_store.hpp"

namespace cg::security {

struct Pkcs11KeyUri {
  Pkcs11KeyStoreOptions store;  // module, token, PIN file
  std::string object;           // the key's label
};

inline bool is_pkcs11_uri(std::string_view s) { return s.substr(0, 7) == "pkcs11:"; }

Result<Pkcs11KeyUri> parse_pkcs11_key_uri(std::string_view uri);

// The private key the URI names, used in place (the token signs). The
// returned key keeps the module loaded.
Result<PrivateKey> load_pkcs11_private_key(std::string_view uri);

}  // namespace cg::security
