// The web front end's own request and response types: what a route sees of
// an HTTP request (already bounded and parsed by web/server) and what it
// answers. Routes never see Beast, so the server can later move into its own
// sandboxed process with this as the narrow interface (DESIGN.md).
// REQ: NET-4
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace cg::web {

// NET-4: limits before parsing.
inline constexpr std::size_t kMaxHeaderBytes = 8 * 1024;   // request line and headers together
inline constexpr std::size_t kMaxTargetBytes = 2048;
inline constexpr std::size_t kMaxFormBytes = 16 * 1024;    // a urlencoded form body
inline constexpr std::size_t kMaxFields = 32;
inline constexpr std::size_t kMaxFieldName = 64;
inline constexpr std::size_t kMaxFieldValue = 4096;

// __Host-: the browser keeps it only when Secure, Path=/ and without Domain.
inline constexpr std::string_view kSessionCookie = "__Host-cg_session";

using Fields = std::map<std::string, std::string, std::less<>>;

struct Request {
  std::string method;  // GET or POST (others are refused by the server)
  std::string path;    // decoded path, no query
  Fields query;
  Fields form;         // application/x-www-form-urlencoded body
  std::string session_cookie;
  std::string peer;    // client IP address
  bool cross_site = false;  // Sec-Fetch-Site says another site sent it (refused for POST)
  std::string content_type;
  std::optional<std::uint64_t> content_length;
  std::string_view field(std::string_view name) const {
    auto it = form.find(name);
    return it == form.end() ? std::string_view{} : std::string_view(it->second);
  }
  std::string_view param(std::string_view name) const {
    auto it = query.find(name);
    return it == query.end() ? std::string_view{} : std::string_view(it->second);
  }
};

struct Response {
  unsigned status = 200;
  std::string content_type = "text/html; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra ones (Location, Set-Cookie, …)
  bool cacheable = false;  // static assets only; everything else is Cache-Control: no-store

  static Response redirect(std::string location) {
    Response r;
    r.status = 303;
    r.headers.emplace_back("Location", std::move(location));
    return r;
  }
};

// An upload route's body, as it arrives (web/server streams it in pieces of
// at most 256 KiB; nothing holds the whole body).
class BodySink {
 public:
  virtual ~BodySink() = default;
  // The next bytes (valid during the call). An error stops the upload.
  virtual Result<void> data(std::span<const std::uint8_t> bytes) = 0;
  // The end: `complete` when the whole body arrived; otherwise `error` says
  // why it stopped (the client went away: nobody reads the answer). Answers once.
  virtual void finish(bool complete, const std::string& error, std::function<void(Response)> reply) = 0;
};

// What an upload route says after seeing the request head.
struct StreamStart {
  std::optional<Response> answer;  // refused before the body (the connection then closes)
  std::unique_ptr<BodySink> sink;
  std::uint64_t max_bytes = 0;     // a longer body is refused (413) before it is read
};

// application/x-www-form-urlencoded (also the query string). nullopt with
// `error` set when malformed or over the limits above.
std::optional<Fields> parse_urlencoded(std::string_view text, std::string& error);
// Percent-decoding of a path; nullopt for bad escapes, NUL or a non-ASCII byte.
std::optional<std::string> decode_path(std::string_view raw);
// The value of one cookie of a Cookie header ("" when absent).
std::string cookie_value(std::string_view header, std::string_view name);

// HTML text and attribute encoding (& < > " ').
std::string html(std::string_view text);

}  // namespace cg::web
