// A streaming reader of multipart/form-data bodies (RFC 7578) for uploads:
// the bytes arrive in pieces and leave as part events, so a firmware image
// is never held in memory. Strict: the body starts with the first delimiter
// (no preamble), every part has a Content-Disposition: form-data with a
// name of [a-z_] (≤ 32) and headers of at most 1 KiB, at most 8 parts, and
// the close delimiter ends it; anything else is an error naming the problem.
// REQ: NET-4
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace cg::web {

class MultipartReader {
 public:
  static constexpr std::size_t kMaxParts = 8;
  static constexpr std::size_t kMaxPartHeader = 1024;

  struct Events {
    std::function<Result<void>(std::string_view name, std::string_view filename)> begin;
    std::function<Result<void>(std::span<const std::uint8_t>)> data;
    std::function<Result<void>()> end;
  };
  // The boundary of a Content-Type "multipart/form-data; boundary=…" (1-70 characters).
  static std::optional<std::string> boundary_of(std::string_view content_type);

  MultipartReader(std::string_view boundary, Events events);
  Result<void> feed(std::span<const std::uint8_t> bytes);
  // The body ended: an error unless the close delimiter was seen.
  Result<void> finish();

 private:
  enum class State { Start, Headers, Body, AfterDelimiter, Done };
  Result<void> step();
  Result<void> part_headers(std::string_view headers);

  std::string delimiter_;  // "\r\n--" + boundary
  Events ev_;
  State state_ = State::Start;
  std::string buf_;
  std::size_t parts_ = 0;
};

}  // namespace cg::web
