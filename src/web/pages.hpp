// Server-rendered HTML of the maintenance UI: one layout, small builders, one
// stylesheet; no external resource, no inline script or style (the CSP
// forbids them), every text from outside encoded with web::html. Pages work
// with JavaScript off.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "services/sessions.hpp"

namespace cg::web {

// The logged-in user's frame: navigation by role, the logout form.
struct Frame {
  const services::SessionInfo* session = nullptr;  // null: logged out (login page)
  std::string station;                             // station identity, in the title
  std::string active;                              // path of the current page, for the navigation
};

std::string page(const Frame& f, std::string_view title, std::string_view body);

// Building blocks.
std::string notice(std::string_view kind, std::string_view text);  // kind: ok, error, warn, info
std::string csrf_field(const services::SessionInfo& s);
std::string when(std::optional<std::int64_t> unix_seconds);       // "2026-12-07 14:05 UTC" or "never"

// The stylesheet served at /static/app.css.
std::string_view stylesheet();

}  // namespace cg::web
