#include "core/log.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.hpp"

namespace cg::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::Info)};
std::mutex g_mu;
int g_fd = -1;
std::string g_file;
std::size_t g_max = 0, g_size = 0;

void rotate_locked() {
  ::close(g_fd);
  const std::string old = g_file + ".1";
  ::rename(g_file.c_str(), old.c_str());
  g_fd = ::open(g_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  g_size = 0;
}
constexpr const char* kNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};
}  // namespace

void set_level(Level l) { g_level.store(static_cast<int>(l)); }

bool set_file(const std::string& file, std::size_t max_bytes) {
  std::lock_guard lk(g_mu);
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return false;
  if (g_fd >= 0) ::close(g_fd);
  g_fd = fd;
  g_file = file;
  g_max = max_bytes;
  struct stat st{};
  g_size = ::fstat(fd, &st) == 0 ? static_cast<std::size_t>(st.st_size) : 0;
  return true;
}

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
  char head[96];
  std::snprintf(head, sizeof head, "%s %-5s [%.*s] ", ts.c_str(), kNames[static_cast<int>(l)],
                static_cast<int>(std::min<std::size_t>(component.size(), 32)), component.data());
  const std::string line = head + clean + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
  if (g_fd >= 0) {
    if (g_size + line.size() > g_max) rotate_locked();
    if (g_fd >= 0 && ::write(g_fd, line.data(), line.size()) > 0) g_size += line.size();
  }
}

}  // namespace cg::log
