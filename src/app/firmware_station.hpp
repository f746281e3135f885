// The station side of firmware, on the command line:
//
//   chargeguard firmware install-factory --config F --image I --cert C --signature S
//   chargeguard firmware install --config F --image I --cert C --signature S
//   chargeguard firmware status --config F
//   chargeguard boot --config F [run flags…]
//
// All of them go through the firmware service (services/firmware.hpp) with
// the console user as an engineer (installs) and need the station stopped
// (the state directory's lock), except `status`, which only reads.
//
// `boot` is the simulated bootloader and init: it asks the service for the
// slot to boot (verified whole, FW-4), runs the slot's payload from a sealed
// copy of the verified bytes as `PAYLOAD run [run flags…]`, and boots again
// when the payload exits with kRebootExitCode (Reset, a firmware install) or,
// while a new image is tried, when it fails. SIGTERM/SIGINT go to the payload;
// the boot stage then exits with the payload's status.
// REQ: FW-3, FW-4, FW-5
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "services/gate.hpp"

namespace cg::app {

// The payload's exit status that asks the boot stage for a reboot.
inline constexpr int kRebootExitCode = 100;

// What the boot stage tells the payload it booted (environment variables
// CG_BOOT_SLOT, CG_BOOT_VERSION, CG_BOOT_SECURITY_VERSION, CG_BOOT_TRYING).
struct BootEnv {
  std::string slot;  // "a" or "b"
  std::string version;
  std::uint32_t security_version = 0;
  bool trying = false;  // a new image on trial: it must confirm itself
};
// nullopt when not started by `chargeguard boot` (plain `chargeguard run`).
std::optional<BootEnv> boot_env_from_environment();

struct FirmwareFiles {
  std::filesystem::path image, cert, signature;
};

int firmware_install(const config::Config& cfg, const FirmwareFiles& f, bool factory,
                     const services::PolicyFn& policy = &policy::authorize);
int firmware_status(const config::Config& cfg, const services::PolicyFn& policy = &policy::authorize);

// `run_args`: the arguments after `boot`, passed on as `PAYLOAD run <run_args>`.
int firmware_boot(const config::Config& cfg, const std::vector<std::string>& run_args);

}  // namespace cg::app
