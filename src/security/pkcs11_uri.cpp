// REQ: FW-1, COM-4 — PKCS#11 key URIs, see pkcs11_uri.hpp.
#include "security/pkcs11_uri.hpp"

#include <optional>
#include <vector>

namespace cg::security {
namespace {

Error bad(std::string text) { return fail(Errc::InvalidArgument, "PKCS#11 URI: " + std::move(text)); }

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    const auto p = s.find(sep);
    out.push_back(s.substr(0, p));
    if (p == std::string_view::npos) return out;
    s.remove_prefix(p + 1);
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] != '%') {
      out += v[i];
      continue;
    }
    if (i + 2 >= v.size()) return std::nullopt;
    const int hi = hex_value(v[i + 1]);
    const int lo = hex_value(v[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    const char c = static_cast<char>(hi << 4 | lo);
    if (c == '\0') return std::nullopt;
    out += c;
    i += 2;
  }
  return out;
}

}  // namespace

Result<Pkcs11KeyUri> parse_pkcs11_key_uri(std::string_view uri) {
  if (uri.size() > 1024) return bad("longer than 1024 characters");
  if (!is_pkcs11_uri(uri)) return bad("does not start with \"pkcs11:\"");
  uri.remove_prefix(7);
  const auto q = uri.find('?');
  const std::string_view path = uri.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? std::string_view{} : uri.substr(q + 1);
  Pkcs11KeyUri out;
  bool have_token = false, have_object = false, have_module = false, have_pin = false;
  const auto attribute = [](std::string_view a, std::string& name, std::string& value) -> Result<void> {
    const auto eq = a.find('=');
    if (eq == std::string_view::npos) return bad("attribute \"" + std::string(a) + "\" has no value");
    name = std::string(a.substr(0, eq));
    auto v = percent_decode(a.substr(eq + 1));
    if (!v) return bad("attribute " + name + ": bad percent-encoding");
    value = std::move(*v);
    return {};
  };
  for (const std::string_view a : split(path, ';')) {
    if (a.empty()) continue;
    std::string name, value;
    if (auto r = attribute(a, name, value); !r) return r.error();
    if (name == "token") {
      if (have_token) return bad("token given twice");
      if (value.empty() || value.size() > 32) return bad("token label must have 1 to 32 characters");
      out.store.token_label = value;
      have_token = true;
    } else if (name == "object") {
      if (have_object) return bad("object given twice");
      if (!is_valid_key_label(value)) return bad("object: not a valid key label ([A-Za-z0-9._-], 1 to 64)");
      out.object = value;
      have_object = true;
    } else if (name == "type") {
      if (value != "private") return bad("type must be \"private\" (a signing key)");
    } else {
      return bad("unsupported path attribute \"" + name + "\" (token, object, type)");
    }
  }
  if (!query.empty()) {
    for (const std::string_view a : split(query, '&')) {
      if (a.empty()) continue;
      std::string name, value;
      if (auto r = attribute(a, name, value); !r) return r.error();
      if (name == "module-path") {
        if (have_module) return bad("module-path given twice");
        if (value.empty() || value.front() != '/') return bad("module-path must be an absolute path");
        out.store.module_path = value;
        have_module = true;
      } else if (name == "pin-source") {
        if (have_pin) return bad("pin-source given twice");
        if (value.rfind("file:", 0) == 0) value.erase(0, 5);
        if (value.rfind("//", 0) == 0) value.erase(0, 2);  // file:///path
        if (value.empty() || value.front() != '/') return bad("pin-source must be an absolute file path (file:/path)");
        out.store.pin_file = value;
        have_pin = true;
      } else if (name == "pin-value") {
        return bad("pin-value is refused (a PIN on the command line is visible to every process); use pin-source");
      } else {
        return bad("unsupported query attribute \"" + name + "\" (module-path, pin-source)");
      }
    }
  }
  if (!have_token) return bad("token=… is missing");
  if (!have_object) return bad("object=… is missing");
  if (!have_module) return bad("module-path=… is missing");
  if (!have_pin) return bad("pin-source=… is missing (a file with the user PIN, mode 0600)");
  return out;
}

Result<PrivateKey> load_pkcs11_private_key(std::string_view uri) {
  auto parsed = parse_pkcs11_key_uri(uri);
  if (!parsed) return parsed.error();
  try {
    auto store = open_pkcs11_key_store(parsed->store);
    if (!store->find_key(parsed->object)) {
      return fail(Errc::NotFound, "no key '" + parsed->object + "' in PKCS#11 token '" + parsed->store.token_label + "'");
    }
    return store->private_key(parsed->object);
  } catch (const KeyStoreError& e) {
    return fail(e.code() == KeyStoreErrc::KeyNotFound ? Errc::NotFound : Errc::Unavailable, e.what());
  }
}

}  // namespace cg::security
