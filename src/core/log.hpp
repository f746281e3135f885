// Diagnostics log (LOG-6: separate from the security audit log, which lives in audit/).
// Lines go to stderr (the service manager's journal). Never pass secrets here.
#pragma once
#include <sstream>
#include <string>
#include <string_view>

namespace cg::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void set_level(Level l);
// Also writes every line to FILE (created 0600), keeping at most max_bytes in
// it and one previous generation (FILE.1): the diagnostics log that GetLog
// (DiagnosticsLog) uploads. LOG-6: separate from the security audit log.
bool set_file(const std::string& file, std::size_t max_bytes);
bool parse_level(std::string_view s, Level& out);
bool enabled(Level l);
void write(Level l, std::string_view component, const std::string& msg);

template <typename... Args>
void emit(Level l, std::string_view component, const Args&... args) {
  if (!enabled(l)) return;
  std::ostringstream os;
  (os << ... << args);
  write(l, component, os.str());
}

template <typename... A> void debug(std::string_view c, const A&... a) { emit(Level::Debug, c, a...); }
template <typename... A> void info(std::string_view c, const A&... a) { emit(Level::Info, c, a...); }
template <typename... A> void warn(std::string_view c, const A&... a) { emit(Level::Warn, c, a...); }
template <typename... A> void error(std::string_view c, const A&... a) { emit(Level::Error, c, a...); }

}  // namespace cg::log
