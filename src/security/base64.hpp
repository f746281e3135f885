#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace cg::security {
std::string base64_encode(std::string_view in);
// Strict RFC 4648 base64 (no whitespace, padded to a multiple of 4); nullopt when not.
std::optional<std::string> base64_decode(std::string_view in);
// Lower-case hex of n bytes (digests, fingerprints).
std::string hex_encode(const unsigned char* p, std::size_t n);
}
