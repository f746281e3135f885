// REQ: FW-1 (manufacturer side)
//
// The manufacturer's tools behind `chargeguard firmware pack|sign`: building
// an image from a payload, and signing an image exactly as
// `openssl dgst -<digest> -sign KEY` does (so either tool can be used; the
// station cannot tell them apart).
//
// Errors: Result with a sentence naming the file and the problem. Nothing
// throws except std::bad_alloc.
#pragma once
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <filesystem>
#include <string>

#include "core/result.hpp"
#include "firmware/manifest.hpp"

namespace cg::firmware {

// Writes manifest + payload to `out` (a new file next to it, then renamed over
// it: never a half-written image). `fields` gives model, version and security
// version; payload size and SHA-256 come from the payload file (a regular file
// of 1 byte … kMaxPayloadBytes, which must not change while it is packed).
// Returns the manifest written.
Result<Manifest> pack_image(const std::filesystem::path& payload, const Manifest& fields,
                            const std::filesystem::path& out);

// The base64 signature of the whole file `image` with `key` and the digest
// digest_for_key() gives for it (ECDSA: DER signature; RSA: PKCS#1 v1.5).
// `cert`, when given, must hold the key's public half (a mismatch is an error,
// not a signature nobody can verify).
Result<std::string> sign_image(const std::filesystem::path& image, EVP_PKEY* key, const X509* cert);

}  // namespace cg::firmware
