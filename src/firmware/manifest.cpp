// REQ: FW-1, FW-5, FW-7 — the firmware manifest, see manifest.hpp.
#include "firmware/manifest.hpp"

#include <algorithm>
#include <charconv>

namespace cg::firmware {
namespace {

constexpr std::string_view kHex = "0123456789abcdef";

bool printable(char c) { return c >= 0x20 && c <= 0x7e; }

// Decimal without sign or leading zeros, at most `max`.
std::optional<std::uint64_t> parse_decimal(std::string_view s, std::uint64_t max) {
  if (s.empty() || s.size() > 20 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v > max) return std::nullopt;
  return v;
}

bool parse_hex32(std::string_view s, std::array<std::uint8_t, 32>& out) {
  if (s.size() != 64) return false;
  for (std::size_t i = 0; i < 32; ++i) {
    const auto hi = kHex.find(s[2 * i]);
    const auto lo = kHex.find(s[2 * i + 1]);
    if (hi == std::string_view::npos || lo == std::string_view::npos) return false;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return true;
}

// The value of "key: value" on `line`, or nullopt when the line is another key
// or not of that shape.
std::optional<std::string_view> value_of(std::string_view line, std::string_view key) {
  if (line.size() < key.size() + 2 || line.substr(0, key.size()) != key || line.substr(key.size(), 2) != ": ") {
    return std::nullopt;
  }
  return line.substr(key.size() + 2);
}

Error bad(std::string text) { return fail(Errc::InvalidArgument, "firmware manifest: " + std::move(text)); }

}  // namespace

std::string check_model(std::string_view model) {
  if (model.empty()) return "model: empty";
  if (model.size() > kMaxModelLength) {
    return "model: " + std::to_string(model.size()) + " characters (at most " + std::to_string(kMaxModelLength) + ")";
  }
  for (const char c : model) {
    if (!printable(c)) return "model: not printable ASCII";
  }
  if (model.front() == ' ' || model.back() == ' ') return "model: space at the start or end";
  return {};
}

std::string check_version(std::string_view version) {
  if (version.empty()) return "version: empty";
  if (version.size() > kMaxVersionLength) {
    return "version: " + std::to_string(version.size()) + " characters (at most " +
           std::to_string(kMaxVersionLength) + ")";
  }
  for (const char c : version) {
    if (!printable(c) || c == ' ') return "version: not printable ASCII without spaces";
  }
  return {};
}

Result<std::string> format_manifest(const Manifest& m) {
  if (auto e = check_model(m.model); !e.empty()) return bad(e);
  if (auto e = check_version(m.version); !e.empty()) return bad(e);
  if (m.security_version > kMaxSecurityVersion) return bad("security-version: above 2147483647");
  if (m.payload_size == 0 || m.payload_size > kMaxPayloadBytes) return bad("payload-size: 0 or above 1 TiB");
  std::string out;
  out.reserve(256);
  out.append(kMagicLine).append("\nmodel: ").append(m.model);
  out.append("\nversion: ").append(m.version);
  out.append("\nsecurity-version: ").append(std::to_string(m.security_version));
  out.append("\npayload-size: ").append(std::to_string(m.payload_size));
  out.append("\npayload-sha256: ");
  for (const std::uint8_t b : m.payload_sha256) {
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
  out.append("\n\n");
  return out;
}

std::optional<Result<ParsedManifest>> parse_manifest(std::string_view head) {
  // A file that does not start with the magic line is refused at once.
  const std::string magic = std::string(kMagicLine) + "\n";
  const std::size_t n = std::min(head.size(), magic.size());
  if (head.substr(0, n) != std::string_view(magic).substr(0, n)) {
    return Result<ParsedManifest>(bad("not a chargeguard firmware image (the first line is not \"" +
                                      std::string(kMagicLine) + "\")"));
  }
  const std::size_t end = head.substr(0, kMaxManifestBytes).find("\n\n");
  if (end == std::string_view::npos) {
    if (head.size() < kMaxManifestBytes) return std::nullopt;
    return Result<ParsedManifest>(bad("no blank line ending the manifest within its first " +
                                      std::to_string(kMaxManifestBytes) + " bytes"));
  }
  ParsedManifest out;
  out.length = end + 2;
  std::string_view text = head.substr(magic.size(), end + 1 - magic.size());  // the lines after the magic one
  const auto next_line = [&text]() {
    const std::size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    return line;
  };
  const auto get = [&](std::string_view key, int line_no) -> Result<std::string_view> {
    if (text.empty()) return bad("line " + std::to_string(line_no) + ": missing (expected \"" + std::string(key) + ": …\")");
    const std::string_view line = next_line();
    const auto v = value_of(line, key);
    if (!v) return bad("line " + std::to_string(line_no) + ": expected \"" + std::string(key) + ": …\"");
    return *v;
  };
  auto model = get("model", 2);
  if (!model) return Result<ParsedManifest>(model.error());
  if (auto e = check_model(*model); !e.empty()) return Result<ParsedManifest>(bad("line 2: " + e));
  out.manifest.model = std::string(*model);

  auto version = get("version", 3);
  if (!version) return Result<ParsedManifest>(version.error());
  if (auto e = check_version(*version); !e.empty()) return Result<ParsedManifest>(bad("line 3: " + e));
  out.manifest.version = std::string(*version);

  auto sv = get("security-version", 4);
  if (!sv) return Result<ParsedManifest>(sv.error());
  const auto sv_num = parse_decimal(*sv, kMaxSecurityVersion);
  if (!sv_num) {
    return Result<ParsedManifest>(
        bad("line 4: security-version: expected a decimal number from 0 to 2147483647 without leading zeros"));
  }
  out.manifest.security_version = static_cast<std::uint32_t>(*sv_num);

  auto size = get("payload-size", 5);
  if (!size) return Result<ParsedManifest>(size.error());
  const auto size_num = parse_decimal(*size, kMaxPayloadBytes);
  if (!size_num || *size_num == 0) {
    return Result<ParsedManifest>(
        bad("line 5: payload-size: expected a decimal number from 1 to 2^40 without leading zeros"));
  }
  out.manifest.payload_size = *size_num;

  auto sha = get("payload-sha256", 6);
  if (!sha) return Result<ParsedManifest>(sha.error());
  if (!parse_hex32(*sha, out.manifest.payload_sha256)) {
    return Result<ParsedManifest>(bad("line 6: payload-sha256: expected 64 lower-case hex digits"));
  }
  if (!text.empty()) return Result<ParsedManifest>(bad("line 7: unexpected line before the blank line"));
  return Result<ParsedManifest>(std::move(out));
}

}  // namespace cg::firmware
