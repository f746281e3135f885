// `chargeguard firmware …`: the manufacturer's and engineer's firmware tools.
//
//   pack    builds an image from a payload (manifest.hpp)
//   sign    prints the base64 signature of an image (a key file or a PKCS#11
//           URI), the same bytes `openssl dgst -sha256 -sign KEY` writes
//   verify  checks an image exactly as a station does (verifier.hpp) against
//           a root file and says what failed or what the image is
//
// Exit status: 0 done / image valid, 1 refused or failed (the message on
// stderr names the step and the problem).
// REQ: FW-1, FW-3, COM-8
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

namespace cg::app {

struct PackOptions {
  std::filesystem::path payload, out;
  std::string model, version;
  std::int64_t security_version = -1;
};
int firmware_pack(const PackOptions& opt);

// key: a PEM private key file or a PKCS#11 URI (security/pkcs11_uri.hpp).
int firmware_sign(const std::string& key, const std::filesystem::path& cert, const std::filesystem::path& image);

int firmware_verify(const std::filesystem::path& root, const std::filesystem::path& cert,
                    const std::filesystem::path& signature, const std::filesystem::path& image);

// A signature file: base64 text, whitespace (line breaks of `openssl base64`)
// ignored, at most 4 KiB. Empty result and `error` set when unusable.
std::string read_signature_file(const std::filesystem::path& file, std::string& error);

}  // namespace cg::app
