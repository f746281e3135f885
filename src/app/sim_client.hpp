#pragma once
#include <filesystem>
#include <string>

namespace cg::app {
// Sends one simulator command to the station running on state_dir; prints the
// answer. Returns 0 when the station took the event, 1 when it refused it, 2
// when no station runs there.
int sim_command(const std::filesystem::path& state_dir, const std::string& line);
}  // namespace cg::app
