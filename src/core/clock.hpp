// Time helpers: UTC wall clock (adjustable from the CSMS, NET-6) and RFC 3339 text.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cg::clock {

using SysTime = std::chrono::time_point<std::chrono::system_clock, std::chrono::milliseconds>;

// Wall clock as the station believes it: system clock plus an offset learned from
// the CSMS (Heartbeat/BootNotification currentTime). The process does not set the
// host clock; it keeps the offset, which later issues audit (NET-6).
SysTime now_utc();
// now_utc() in whole seconds since the Unix epoch (lock and session times).
std::int64_t unix_seconds();
std::chrono::milliseconds offset();
void set_offset(std::chrono::milliseconds off);

std::string format_rfc3339(SysTime t, bool millis = false);
std::optional<SysTime> parse_rfc3339(std::string_view s);

}  // namespace cg::clock
