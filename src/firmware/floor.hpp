// REQ: FW-5 — the anti-rollback floor (the lowest security version that may
// be installed or booted).
//
// Kept twice, and the higher of the two counts:
//  - in the state: write-once records firmware/floor/<N> (content "N\n"),
//    each written to a temporary file, fsynced and renamed, so a power loss
//    leaves a complete record or none; a record whose content is not its
//    name is ignored;
//  - in the key store's monotonic counter "firmware.security-floor": with a
//    PKCS#11 token the value lives outside the state directory, so copying an
//    old state directory back does not lower it.
// The floor is raised only when a new image has confirmed itself (slots.hpp)
// and never lowered; raise() writes the key store first, then the record.
#pragma once
#include <cstdint>
#include <filesystem>

#include "core/result.hpp"

namespace cg::security {
class KeyStore;
}

namespace cg::firmware {

inline constexpr const char* kFloorCounter = "firmware.security-floor";

class SecurityFloor {
 public:
  // `dir`: state_dir/"firmware"/"floor"; `keys` may be null (no key store at hand:
  // only the records count, and raise() refuses, so that the two never disagree downwards).
  SecurityFloor(std::filesystem::path dir, security::KeyStore* keys);

  // 0 on a new device.
  Result<std::uint32_t> value() const;
  // Raises the floor to `version` (no-op when it is that high already).
  Result<std::uint32_t> raise(std::uint32_t version);

 private:
  Result<std::uint32_t> records() const;
  std::filesystem::path dir_;
  security::KeyStore* keys_;
};

}  // namespace cg::firmware
