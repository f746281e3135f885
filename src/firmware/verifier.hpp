// REQ: FW-1, FW-3, FW-4, FW-7, COM-7, COM-8; OCPP L01 (digest §4)
//
// The one firmware verifier: the station (OCPP UpdateFirmware, local install,
// the boot stage) and the manufacturer's tools (`chargeguard firmware verify`)
// all go through it.
//
// What makes an image acceptable:
//  1. The signing certificate (PEM, the leaf first, then at most two
//     intermediate CAs; at most 5500 characters as OCPP's signingCertificate)
//     chains to one of the pinned ManufacturerRootCertificates, is valid now,
//     passes the crypto policy (COM-8: no MD5/SHA-1, RSA ≥ 2048, EC P-256,
//     P-384 or P-521 only) and is meant for code signing: it is not a CA, its
//     extendedKeyUsage is present and holds codeSigning, and its keyUsage, when
//     present, holds digitalSignature. The extended key usage is required (not
//     only checked when present) so that no other certificate the manufacturer
//     root ever issued — a device or TLS certificate without that extension —
//     can sign firmware.
//  2. The signature (base64, at most 800 characters as OCPP's signature) is one
//     detached signature over the whole image file, exactly what
//     `openssl dgst -<digest> -sign KEY -out SIG IMAGE` writes. The digest
//     follows the key: SHA-256 for P-256 and RSA, SHA-384 for P-384, SHA-512
//     for P-521. RSA signatures may be PKCS#1 v1.5 (openssl's default) or PSS
//     (any salt length, MGF1 with the same digest). Ed25519/Ed448 keys are
//     refused: their signatures need the whole image in memory.
//  3. Only then the content: the manifest parses (manifest.hpp), the file ends
//     exactly after payload-size payload bytes and their SHA-256 is
//     payload-sha256. So a random file is reported as a wrong signature, not
//     as a bad manifest.
// Model, security-version floor and slots are the caller's rules (they read
// ImageInfo).
//
// Speed and memory (FW-7): the image streams through in chunks; the
// whole-image digest runs on the caller's thread (or a third one, Hashing) and
// the payload SHA-256 on a second thread, so verifying costs about one hash
// pass of wall time and a constant ~0.5 MiB.
//
// Errors: Result with Error::reason one of the kReason* below and a sentence
// naming what failed (certificate position and subject, expected digest, byte
// counts). Nothing throws except std::bad_alloc.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "firmware/manifest.hpp"
#include "security/certificates.hpp"

namespace cg::firmware {

inline constexpr std::size_t kMaxSigningCertificatePem = 5500;  // OCPP signingCertificate
inline constexpr std::size_t kMaxSignatureBase64 = 800;          // OCPP signature
inline constexpr std::size_t kChunkBytes = std::size_t{256} * 1024;

// Error::reason values.
inline constexpr std::string_view kReasonInvalidCertificate = "InvalidCertificate";  // step 1
inline constexpr std::string_view kReasonInvalidSignature = "InvalidSignature";      // step 2 (or a malformed signature)
inline constexpr std::string_view kReasonInvalidImage = "InvalidImage";              // step 3
inline constexpr std::string_view kReasonTooLarge = "TooLarge";                      // over the caller's size cap
inline constexpr std::string_view kReasonReadFailed = "ReadFailed";                  // the file could not be read

// A signing certificate that passed step 1.
struct SigningCertificate {
  security::CertChain chain;          // leaf … root as verified
  std::string subject;                // the leaf's subject (RFC 2253, safe to log)
  std::string digest;                 // "SHA-256", "SHA-384" or "SHA-512"
  std::vector<std::string> warnings;  // crypto policy warnings (e.g. RSA-2048 below the 3072 goal)
};

// Step 1. `roots`: the pinned ManufacturerRootCertificates (none: refused).
// `at`: the time validity is checked at (now when empty).
Result<SigningCertificate> check_signing_certificate(
    std::string_view pem, const std::vector<const X509*>& roots,
    std::optional<std::chrono::system_clock::time_point> at = std::nullopt);

// What a verified image is.
struct ImageInfo {
  Manifest manifest;
  std::size_t manifest_length = 0;  // the payload starts at this offset
  std::uint64_t image_size = 0;
  std::string signer;               // subject of the signing certificate
  std::string digest;               // "SHA-256", …
  std::string image_digest_hex;     // the whole file's digest (what was signed)
};

// Steps 2 and 3 over a stream of bytes.
class ImageVerifier {
 public:
  // `signature_b64`: the base64 text (no whitespace). `max_image_bytes`: the
  // caller's cap; more bytes fail update() with kReasonTooLarge.
  // Hashing: the payload SHA-256 always runs on a second thread; the
  // whole-file digest runs on the caller's thread (CallerAndOne: best when the
  // caller only reads a file) or on a third (Background: best when the caller
  // has its own work per chunk, e.g. TLS decryption of a download).
  enum class Hashing { CallerAndOne, Background };
  static Result<ImageVerifier> create(const SigningCertificate& signer, std::string_view signature_b64,
                                      std::uint64_t max_image_bytes, Hashing hashing = Hashing::CallerAndOne);
  ImageVerifier(ImageVerifier&&) noexcept;
  ImageVerifier& operator=(ImageVerifier&&) noexcept;
  ~ImageVerifier();

  // The next bytes of the image. They must stay valid and unchanged until the
  // next update() or finish() returns (the payload hash may still be reading
  // them): callers alternate between two buffers.
  Result<void> update(std::span<const std::uint8_t> bytes);
  // Waits for the payload hash, then checks signature, manifest, size and
  // payload hash, in that order. Call once.
  Result<ImageInfo> finish();
  // Stops without a result: returns once no bytes given to update() are read
  // any more. Call it before freeing the buffers when stopping early.
  void cancel() noexcept;

  std::uint64_t bytes_seen() const noexcept;
  // The manifest once its bytes went through update() (not yet verified:
  // only for progress messages and early size hints, never for decisions).
  const std::optional<ParsedManifest>& unverified_manifest() const noexcept;

 private:
  struct Impl;
  explicit ImageVerifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Each chunk read from the file, in order (e.g. to copy the image while it is
// verified). An error stops the verification and is returned.
using ChunkSink = std::function<Result<void>(std::span<const std::uint8_t>)>;

// Reads `fd` from its current offset to the end through `v` (two kChunkBytes
// buffers), passing each chunk to `sink` as well, then finish().
Result<ImageInfo> verify_fd(int fd, ImageVerifier& v, const ChunkSink& sink = {});

// The whole check of an image file: a regular file (symlinks not followed) of
// at most max_image_bytes.
Result<ImageInfo> verify_file(const std::filesystem::path& image, const SigningCertificate& signer,
                              std::string_view signature_b64, std::uint64_t max_image_bytes);

// The digest the key signs with ("SHA-256", "SHA-384", "SHA-512"), or an error
// for a key firmware signatures do not use (Ed25519, DSA, other curves).
Result<std::string> digest_for_key(const EVP_PKEY* key);

}  // namespace cg::firmware
