#include "web/multipart.hpp"

#include <cctype>

namespace cg::web {
namespace {

Error bad(std::string what) { return fail(Errc::InvalidArgument, "malformed upload: " + std::move(what)); }

std::string lower(std::string_view s) {
  std::string o(s);
  for (auto& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

// The value of `key="…"` in a header value (quoted, no escapes), nullopt when absent.
std::optional<std::string> param(std::string_view v, std::string_view key) {
  const std::string needle = std::string("; ") + std::string(key) + "=\"";
  const auto p = v.find(needle);
  if (p == std::string_view::npos) return std::nullopt;
  const auto start = p + needle.size();
  const auto end = v.find('"', start);
  if (end == std::string_view::npos) return std::nullopt;
  return std::string(v.substr(start, end - start));
}

}  // namespace

std::optional<std::string> MultipartReader::boundary_of(std::string_view ct) {
  if (lower(ct.substr(0, 20)) != "multipart/form-data;") return std::nullopt;
  const auto p = ct.find("boundary=");
  if (p == std::string_view::npos) return std::nullopt;
  std::string_view b = ct.substr(p + 9);
  if (b.size() >= 2 && b.front() == '"' && b.back() == '"') b = b.substr(1, b.size() - 2);
  if (b.empty() || b.size() > 70) return std::nullopt;
  for (char c : b)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos))
      return std::nullopt;
  return std::string(b);
}

MultipartReader::MultipartReader(std::string_view boundary, Events events)
    : delimiter_("\r\n--" + std::string(boundary)), ev_(std::move(events)) {}

Result<void> MultipartReader::feed(std::span<const std::uint8_t> bytes) {
  if (state_ == State::Done) return {};  // the epilogue is ignored
  buf_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return step();
}

Result<void> MultipartReader::finish() {
  if (state_ != State::Done) return bad("the body ended before the closing boundary");
  return {};
}

Result<void> MultipartReader::part_headers(std::string_view h) {
  if (++parts_ > kMaxParts) return bad("more than " + std::to_string(kMaxParts) + " parts");
  std::optional<std::string> name, filename;
  while (!h.empty()) {
    const auto eol = h.find("\r\n");
    const std::string_view line = h.substr(0, eol);
    h = eol == std::string_view::npos ? std::string_view{} : h.substr(eol + 2);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return bad("a part header without ':'");
    if (lower(line.substr(0, colon)) != "content-disposition") continue;
    std::string_view v = line.substr(colon + 1);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    if (lower(v.substr(0, 9)) != "form-data") return bad("a part that is not form-data");
    name = param(v, "name");
    filename = param(v, "filename");
  }
  if (!name || name->empty() || name->size() > 32) return bad("a part without a valid name");
  for (char c : *name)
    if (!((c >= 'a' && c <= 'z') || c == '_')) return bad("a part name outside [a-z_]");
  if (filename && filename->size() > 255) return bad("a file name longer than 255 characters");
  return ev_.begin(*name, filename.value_or(""));
}

Result<void> MultipartReader::step() {
  for (;;) {
    switch (state_) {
      case State::Start: {
        // The body starts with the first delimiter (without its leading CRLF).
        const std::string_view first = std::string_view(delimiter_).substr(2);
        if (buf_.size() < first.size()) return {};
        if (std::string_view(buf_).substr(0, first.size()) != first) return bad("the body does not start with the boundary");
        buf_.erase(0, first.size());
        state_ = State::AfterDelimiter;
        break;
      }
      case State::AfterDelimiter: {
        if (buf_.size() < 2) return {};
        if (buf_.compare(0, 2, "--") == 0) {
          state_ = State::Done;
          buf_.clear();
          return {};
        }
        if (buf_.compare(0, 2, "\r\n") != 0) return bad("garbage after a boundary");
        buf_.erase(0, 2);
        state_ = State::Headers;
        break;
      }
      case State::Headers: {
        const auto end = buf_.find("\r\n\r\n");
        if (end == std::string::npos) {
          if (buf_.size() > kMaxPartHeader) return bad("part headers longer than 1 KiB");
          return {};
        }
        if (end > kMaxPartHeader) return bad("part headers longer than 1 KiB");
        if (auto r = part_headers(std::string_view(buf_).substr(0, end)); !r) return r;
        buf_.erase(0, end + 4);
        state_ = State::Body;
        break;
      }
      case State::Body: {
        const auto at = buf_.find(delimiter_);
        if (at == std::string::npos) {
          // Everything but a possible start of the delimiter is data.
          if (buf_.size() >= delimiter_.size()) {
            const std::size_t n = buf_.size() - (delimiter_.size() - 1);
            if (auto r = ev_.data({reinterpret_cast<const std::uint8_t*>(buf_.data()), n}); !r) return r;
            buf_.erase(0, n);
          }
          return {};
        }
        if (at > 0) {
          if (auto r = ev_.data({reinterpret_cast<const std::uint8_t*>(buf_.data()), at}); !r) return r;
        }
        if (auto r = ev_.end(); !r) return r;
        buf_.erase(0, at + delimiter_.size());
        state_ = State::AfterDelimiter;
        break;
      }
      case State::Done:
        return {};
    }
  }
}

}  // namespace cg::web
