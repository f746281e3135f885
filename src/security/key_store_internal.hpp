// Helpers shared by the key-store backends (not part of the public API).
#pragma once
#include <string>
#include <string_view>

#include "security/key_store.hpp"

namespace cg::security::detail {

// The OpenSSL error queue as text (it is emptied); "" when empty.
std::string openssl_errors();

// A label or file name made safe for an error message (printable ASCII, ≤ 64).
std::string printable(std::string_view s);

// Throws InvalidArgument naming the label when !is_valid_key_label(label).
void require_label(std::string_view label);

// The KeyType of a key, or nullopt for anything else.
std::optional<KeyType> key_type_of(const EVP_PKEY* pkey);

}  // namespace cg::security::detail
