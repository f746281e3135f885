// REQ: FW-1, FW-5 (the security version), FW-7 (bounded parsing)
//
// The firmware image format: one file, a text manifest then the payload, all
// of it covered by one detached signature (verifier.hpp).
//
//   chargeguard-firmware 1\n
//   model: CG-SIM\n
//   version: 1.4.2\n
//   security-version: 3\n
//   payload-size: 10485760\n
//   payload-sha256: <64 lower-case hex digits>\n
//   \n
//   <payload-size bytes of payload>
//
// Strict: exactly these lines in this order, "key: value" with one space,
// '\n' line ends, nothing before or after. The file ends exactly after the
// payload. The payload is what the station runs (on the simulated platform an
// executable started by `chargeguard boot`; on hardware, e.g. a RAUC bundle).
//
// Limits: the manifest is at most kMaxManifestBytes (it is found within the
// first kMaxManifestBytes of the image or the image is refused); model 1 … 20
// characters (OCPP's model), printable ASCII, no space at either end; version
// 1 … 50 characters (OCPP's firmwareVersion), printable ASCII without spaces;
// security version 0 … 2^31-1; payload size 1 … kMaxPayloadBytes; decimal
// numbers without sign or leading zeros.
//
// Errors: a sentence naming the line and what is wrong with it; nothing throws
// except std::bad_alloc.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace cg::firmware {

inline constexpr std::string_view kMagicLine = "chargeguard-firmware 1";
inline constexpr std::size_t kMaxManifestBytes = 4096;
inline constexpr std::uint64_t kMaxPayloadBytes = std::uint64_t{1} << 40;  // 1 TiB: a bound, not a goal
inline constexpr std::size_t kMaxModelLength = 20;
inline constexpr std::size_t kMaxVersionLength = 50;
inline constexpr std::uint32_t kMaxSecurityVersion = 0x7fffffff;

struct Manifest {
  std::string model;
  std::string version;
  std::uint32_t security_version = 0;
  std::uint64_t payload_size = 0;
  std::array<std::uint8_t, 32> payload_sha256{};
};

// The field rules of the header comment; "" when fine, else what is wrong
// (e.g. "model: 21 characters (at most 20)").
std::string check_model(std::string_view model);
std::string check_version(std::string_view version);

// The manifest text of `m` (the blank line included). Checks the fields first.
Result<std::string> format_manifest(const Manifest& m);

struct ParsedManifest {
  Manifest manifest;
  std::size_t length = 0;  // bytes of the manifest, the blank line included: the payload starts here
};

// Parses the manifest at the start of `head` (the first bytes of an image).
// nullopt: `head` holds no complete manifest yet and is shorter than
// kMaxManifestBytes (give more bytes). Otherwise the manifest or an error
// (Errc::InvalidArgument) naming the first problem.
std::optional<Result<ParsedManifest>> parse_manifest(std::string_view head);

}  // namespace cg::firmware
