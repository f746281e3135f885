#include "core/clock.hpp"

#include <atomic>
#include <cstdio>
#include <ctime>

namespace cg::clock {
namespace {
std::atomic<long long> g_offset_ms{0};

bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}
}  // namespace

SysTime now_utc() {
  auto t = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  return t + std::chrono::milliseconds(g_offset_ms.load(std::memory_order_relaxed));
}

std::int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(now_utc().time_since_epoch()).count();
}

std::chrono::milliseconds offset() { return std::chrono::milliseconds(g_offset_ms.load()); }
void set_offset(std::chrono::milliseconds off) { g_offset_ms.store(off.count()); }

std::string format_rfc3339(SysTime t, bool millis) {
  const auto ms = t.time_since_epoch().count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  long frac = static_cast<long>(ms % 1000);
  if (frac < 0) { frac += 1000; --secs; }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  if (millis) {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  } else {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec);
  }
  return buf;
}

std::optional<SysTime> parse_rfc3339(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  int Y, M, D, h, m, sec;
  if (s.size() < 20 || s.size() > 40) return std::nullopt;
  if (!digits(s, 0, 4, Y) || s[4] != '-' || !digits(s, 5, 2, M) || s[7] != '-' || !digits(s, 8, 2, D) ||
      (s[10] != 'T' && s[10] != 't') || !digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, m) ||
      s[16] != ':' || !digits(s, 17, 2, sec))
    return std::nullopt;
  if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return std::nullopt;
  size_t pos = 19;
  long frac_ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int nd = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (nd < 3) frac_ms = frac_ms * 10 + (s[pos] - '0');
      ++nd;
      ++pos;
    }
    if (nd == 0) return std::nullopt;
    for (int i = nd; i < 3; ++i) frac_ms *= 10;
  }
  long off_min = 0;
  if (pos >= s.size()) return std::nullopt;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int oh, om;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' || !digits(s, pos + 4, 2, om) ||
        oh > 23 || om > 59)
      return std::nullopt;
    off_min = (oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  // A leap second (:60) exists only at 23:59 UTC.
  if (sec == 60) {
    constexpr long kDay = 24 * 60;
    const long utc_minute = ((h * 60L + m - off_min) % kDay + kDay) % kDay;
    if (utc_minute != 23 * 60 + 59) return std::nullopt;
  }
  using namespace std::chrono;
  const year_month_day ymd{year{Y}, month{static_cast<unsigned>(M)}, day{static_cast<unsigned>(D)}};
  if (!ymd.ok()) return std::nullopt;
  const auto days = sys_days{ymd};
  auto t = time_point_cast<milliseconds>(days) + hours{h} + minutes{m} + seconds{sec} + milliseconds{frac_ms} -
           minutes{off_min};
  return SysTime{t.time_since_epoch()};
}

}  // namespace cg::clock
