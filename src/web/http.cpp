#include "web/http.hpp"

namespace cg::web {
namespace {

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent and '+' decoding; false for a bad escape or a NUL / control byte.
bool decode(std::string_view in, bool plus_is_space, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
      if (h < 0 || l < 0) return false;
      c = static_cast<char>(h * 16 + l);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 && c != '\t' && c != '\r' && c != '\n') return false;
    if (u == 0x7f) return false;
    out += c;
  }
  return true;
}

}  // namespace

std::optional<Fields> parse_urlencoded(std::string_view text, std::string& error) {
  Fields f;
  if (text.size() > kMaxFormBytes) {
    error = "the form is larger than " + std::to_string(kMaxFormBytes / 1024) + " KiB";
    return std::nullopt;
  }
  while (!text.empty()) {
    const auto amp = text.find('&');
    const std::string_view pair = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view{} : text.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    std::string name, value;
    if (!decode(pair.substr(0, eq), true, name) ||
        !decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), true, value)) {
      error = "malformed form encoding";
      return std::nullopt;
    }
    if (name.empty() || name.size() > kMaxFieldName) {
      error = "a field name is empty or longer than " + std::to_string(kMaxFieldName) + " characters";
      return std::nullopt;
    }
    if (value.size() > kMaxFieldValue) {
      error = "field '" + name + "' is longer than " + std::to_string(kMaxFieldValue) + " characters";
      return std::nullopt;
    }
    if (f.size() >= kMaxFields) {
      error = "more than " + std::to_string(kMaxFields) + " fields";
      return std::nullopt;
    }
    if (!f.emplace(std::move(name), std::move(value)).second) {
      error = "a field appears twice";
      return std::nullopt;
    }
  }
  return f;
}

std::optional<std::string> decode_path(std::string_view raw) {
  std::string out;
  if (!decode(raw, false, out)) return std::nullopt;
  for (unsigned char c : out)
    if (c < 0x21 || c > 0x7e) return std::nullopt;
  return out;
}

std::string cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const auto semi = header.find(';');
    std::string_view item = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    const auto eq = item.find('=');
    if (eq != std::string_view::npos && item.substr(0, eq) == name) return std::string(item.substr(eq + 1));
  }
  return {};
}

std::string html(std::string_view t) {
  std::string out;
  out.reserve(t.size());
  for (char c : t) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace cg::web
