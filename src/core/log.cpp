#include "core/log.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>

#include "core/clock.hpp"

namespace cg::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::Info)};
std::mutex g_mu;
constexpr const char* kNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};
}  // namespace

void set_level(Level l) { g_level.store(static_cast<int>(l)); }

bool parse_level(std::string_view s, Level& out) {
  if (s == "debug") out = Level::Debug;
  else if (s == "info") out = Level::Info;
  else if (s == "warn") out = Level::Warn;
  else if (s == "error") out = Level::Error;
  else return false;
  return true;
}

bool enabled(Level l) { return static_cast<int>(l) >= g_level.load(std::memory_order_relaxed); }

void write(Level l, std::string_view component, const std::string& msg) {
  const std::string ts = clock::format_rfc3339(clock::now_utc(), true);
  // One line per entry: control characters from peers cannot forge lines.
  std::string clean;
  clean.reserve(msg.size());
  for (unsigned char c : msg) {
    if (c < 0x20 || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      clean += "\\x";
      clean += hex[c >> 4];
      clean += hex[c & 15];
    } else {
      clean += static_cast<char>(c);
    }
  }
  std::lock_guard lk(g_mu);
  std::fprintf(stderr, "%s %-5s [%.*s] %s\n", ts.c_str(), kNames[static_cast<int>(l)],
               static_cast<int>(component.size()), component.data(), clean.c_str());
  std::fflush(stderr);
}

}  // namespace cg::log
