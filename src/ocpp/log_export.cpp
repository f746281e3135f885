#include "ocpp/log_export.hpp"

#include <openssl/rand.h>

#include <array>
#include <cctype>

#include <boost/url/parse.hpp>

namespace cg::ocpp {

namespace {
constexpr std::size_t kMaxUrl = 512;  // GetLogRequest.log.remoteLocation
constexpr std::size_t kMaxBoundary = 70;  // RFC 2046 §5.1.1

bool is_boundary_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}
bool is_ctl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}
}  // namespace

Result<UploadUrl> parse_upload_url(std::string_view url) {
  auto bad = [](std::string w) -> Result<UploadUrl> { return fail(Errc::InvalidArgument, std::move(w)); };
  if (url.size() > kMaxUrl) return bad("URL longer than 512 characters");
  auto u = boost::urls::parse_uri(url);
  if (!u) return bad("not a valid URL");
  std::string scheme(u->scheme());
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "https") return bad("only https:// upload locations are accepted (COM-9)");
  if (!u->has_authority() || u->encoded_host_address().empty()) return bad("URL without a host");
  if (u->has_userinfo()) return bad("credentials in the URL are not supported");
  UploadUrl r;
  switch (u->host_type()) {
    case boost::urls::host_type::ipv4:
    case boost::urls::host_type::ipv6:
      r.host = std::string(u->host_address());
      break;
    case boost::urls::host_type::name: {
      // Unreserved characters only: the name goes into the Host header and to the resolver.
      const std::string_view h = u->encoded_host_address();
      for (char c : h) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_' && c != '~')
          return bad("invalid host name");
      }
      r.host = std::string(h);
      break;
    }
    default:
      return bad("unsupported host");
  }
  if (u->has_port() && !u->port().empty()) {
    const auto n = u->port_number();
    if (n == 0) return bad("invalid port");
    r.port = std::to_string(n);
  } else {
    r.port = "443";
  }
  r.target = std::string(u->encoded_path());
  // After an authority the path is empty or begins with "/" (RFC 3986 §3.3); Boost.URL
  // 1.81 also takes "https://h:44a/x" (port 44, path "a/x"): refused here.
  if (!r.target.empty() && r.target.front() != '/') return bad("not a valid URL");
  if (r.target.empty()) r.target = "/";
  if (u->has_query()) r.target += "?" + std::string(u->encoded_query());
  return r;
}

std::optional<MultipartForm> build_multipart_form(std::string_view boundary, std::string_view filename,
                                                  std::string_view part_content_type, std::string_view content) {
  if (boundary.empty() || boundary.size() > kMaxBoundary) return std::nullopt;
  for (char c : boundary)
    if (!is_boundary_char(c)) return std::nullopt;
  for (char c : part_content_type)
    if (is_ctl(c)) return std::nullopt;
  if (content.find(boundary) != std::string_view::npos || part_content_type.find(boundary) != std::string_view::npos)
    return std::nullopt;

  std::string name;
  for (char c : filename) {
    if (c == '"' || is_ctl(c)) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      const auto u = static_cast<unsigned char>(c);
      name += '%';
      name += kHex[u >> 4];
      name += kHex[u & 0xf];
    } else {
      name += c;
    }
  }
  if (name.find(boundary) != std::string::npos) return std::nullopt;
  MultipartForm f;
  f.content_type = "multipart/form-data; boundary=" + std::string(boundary);
  std::string head;
  head.reserve(160 + 2 * boundary.size() + name.size() + part_content_type.size());
  head += "--";
  head += boundary;
  head += "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"";
  head += name;
  head += "\"\r\nContent-Type: ";
  head += part_content_type;
  head += "\r\n\r\n";
  f.body.reserve(head.size() + content.size() + boundary.size() + 8);
  f.body += head;
  f.body += content;
  f.body += "\r\n--";
  f.body += boundary;
  f.body += "--\r\n";
  return f;
}

std::optional<MultipartForm> make_multipart_form(std::string_view filename, std::string_view part_content_type,
                                                 std::string_view content) {
  // 128 random bits: a collision with the content is practically impossible, but checked.
  for (int attempt = 0; attempt < 4; ++attempt) {
    std::array<unsigned char, 16> r{};
    if (RAND_bytes(r.data(), static_cast<int>(r.size())) != 1) return std::nullopt;
    std::string boundary = "chargeguard-";
    static constexpr char kHex[] = "0123456789abcdef";
    for (unsigned char b : r) {
      boundary += kHex[b >> 4];
      boundary += kHex[b & 0xf];
    }
    if (auto f = build_multipart_form(boundary, filename, part_content_type, content)) return f;
  }
  return std::nullopt;
}

std::string log_upload_filename(bool diagnostics, long long request_id) {
  return diagnostics ? "diagnostics-log-" + std::to_string(request_id) + ".log"
                     : "security-log-" + std::to_string(request_id) + ".ndjson";
}

std::string http_host(const UploadUrl& url) {
  std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  if (url.port != "443") host += ":" + url.port;
  return host;
}

}  // namespace cg::ocpp
