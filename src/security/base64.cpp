#include "security/base64.hpp"

#include <openssl/evp.h>

namespace cg::security {
std::string base64_encode(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string hex_encode(const unsigned char* p, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out += kHex[p[i] >> 4];
    out += kHex[p[i] & 15];
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
  if (in.empty()) return std::string();
  if (in.size() % 4 != 0) return std::nullopt;
  // Only the alphabet, with at most two '=' at the very end (EVP_DecodeBlock
  // alone would skip whitespace and take '=' in the middle).
  const std::size_t pad = in.ends_with("==") ? 2 : in.ends_with('=') ? 1 : 0;
  for (std::size_t i = 0; i + pad < in.size(); ++i) {
    const char c = in[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/'))
      return std::nullopt;
  }
  std::string out(in.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as zero bytes.
  std::size_t len = static_cast<std::size_t>(n);
  if (in.back() == '=') --len;
  if (in[in.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}
}  // namespace cg::security
