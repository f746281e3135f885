#include "audit/chain.hpp"

namespace cg::audit::detail {

void to_hex(const unsigned char* in, std::size_t n, char* out) {
  static const char* hex = "0123456789abcdef";
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = hex[in[i] >> 4];
    out[2 * i + 1] = hex[in[i] & 15];
  }
}

std::string hex(const unsigned char* in, std::size_t n) {
  std::string s(2 * n, '\0');
  to_hex(in, n, s.data());
  return s;
}

// Length of the valid UTF-8 sequence at the start of s (RFC 3629: no overlong
// forms, no surrogates, <= U+10FFFF), 0 when it is not one.
std::size_t utf8_seq(std::string_view s) {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
  else if (c >= 0xF0 && c <= 0xF4) n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
  else return 0;
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (std::size_t i = 2; i < n; ++i)
    if ((b(i) & 0xC0) != 0x80) return 0;
  return n;
}

// Printable, bounded text: control characters and bytes that are not valid
// UTF-8 become '?' (so every record parses as JSON again), cut at kMaxText
// bytes on a UTF-8 character boundary.
std::string clean_text(std::string_view v) {
  std::string out;
  out.reserve(std::min(v.size(), kMaxText));
  for (std::size_t i = 0; i < v.size();) {
    const std::size_t n = utf8_seq(v.substr(i));
    if (out.size() + std::max<std::size_t>(n, 1) > kMaxText) break;
    if (n == 0 || (n == 1 && (static_cast<unsigned char>(v[i]) < 0x20 || v[i] == 0x7f))) {
      out += '?';
      ++i;
    } else {
      out.append(v.substr(i, n));
      i += n;
    }
  }
  return out;
}

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// "<word> <seq, 20 digits> <hash> <mac>\n", mac = HMAC(device key, "<word> <seq> <hash>"):
// the anchor, the continuation line and the exported mark.
std::string signed_text(Crypto& c, std::string_view word, std::uint64_t seq, std::string_view hash) {
  char buf[21];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(seq));
  std::string msg(word);
  msg.append(" ").append(buf).append(" ").append(hash);
  unsigned char mac[32];
  c.hmac(reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac);
  return msg + " " + hex(mac, 32) + "\n";
}

// Parses a signed_text line (with or without its newline). The MAC is checked
// when the crypto holds the key. nullopt when it is not such a line or forged.
std::optional<Signed> parse_signed(Crypto& c, std::string_view word, std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  // word, 20 digits, 64 hex, 64 hex, separated by single spaces
  if (line.size() != word.size() + 1 + 20 + 1 + kHashHex + 1 + kHashHex || line.substr(0, word.size()) != word ||
      line[word.size()] != ' ')
    return std::nullopt;
  const std::string_view seq = line.substr(word.size() + 1, 20);
  const std::string_view hash = line.substr(word.size() + 22, kHashHex);
  if (seq.find_first_not_of("0123456789") != std::string_view::npos || seq > "18446744073709551615" ||
      line[word.size() + 21] != ' ' || line[word.size() + 22 + kHashHex] != ' ')
    return std::nullopt;
  for (char ch : hash)
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return std::nullopt;
  Signed out{std::stoull(std::string(seq)), std::string(hash)};
  if (c.has_key()) {
    const std::string expect = signed_text(c, word, out.seq, out.hash);
    if (expect.size() != line.size() + 1 || CRYPTO_memcmp(expect.data(), line.data(), line.size()) != 0)
      return std::nullopt;
  }
  return out;
}

std::string anchor_text(Crypto& c, std::uint64_t seq, const std::string& hash) {
  return signed_text(c, "anchor", seq, hash);
}

bool parse_seq(std::string_view body, std::uint64_t& seq) {
  if (body.rfind("{\"seq\":", 0) != 0) return false;
  std::size_t i = 7;
  seq = 0;
  std::size_t digits = 0;
  while (i < body.size() && body[i] >= '0' && body[i] <= '9' && digits < 20) {
    seq = seq * 10 + static_cast<std::uint64_t>(body[i] - '0');
    ++i;
    ++digits;
  }
  return digits > 0 && i < body.size() && body[i] == ',';
}

}  // namespace cg::audit::detail
