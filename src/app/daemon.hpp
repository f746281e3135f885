#pragma once
#include "core/config.hpp"

namespace cg::app {
// Runs the station until SIGINT/SIGTERM. Returns the process exit code.
// On an OCPP Reset the daemon re-executes itself with argv (a software reboot).
int run_daemon(const config::Config& cfg, char** argv);
}  // namespace cg::app
