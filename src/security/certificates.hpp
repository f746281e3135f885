// REQ: COM-2, COM-8, COM-10; OCPP A02/A03 (renewal), M03/M04/M05 (install,
// delete, list), L01 (firmware signing certificate); digest §1.5, §3
//
// X.509 helpers for the certificate features: RAII, strict PEM parsing, chain
// verification against an explicit set of roots (plus the crypto policy of
// crypto_policy.hpp), the OCPP CertificateHashData of a certificate, and small
// accessors (subject attributes, CA flag, validity, key match, "signed by").
//
// Limits: PEM input at most kMaxPemBytes (64 KiB) and a caller-given number of
// certificates; only CERTIFICATE blocks (no headers, no other block types, no
// text around them except whitespace), each one DER certificate with nothing
// after it. Verification never uses OpenSSL's default paths or the system
// bundle, never accepts a partial chain (the chain must end at one of the given
// roots) and runs with X509_V_FLAG_X509_STRICT. Revocation (CRL/OCSP) is not
// checked.
//
// Errors: functions that can fail return an error text ("" when fine) or take
// a std::string& error; texts name the problem and, for chains, the position
// and subject of the certificate concerned. Subjects in texts are RFC 2253 with
// control and non-ASCII characters escaped (safe to log). Nothing throws
// except std::bad_alloc.
#pragma once
#include <openssl/x509.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "security/ossl.hpp"

namespace cg::security {

// Leaf first, then its issuers (OCPP certificateChain order).
using CertChain = std::vector<X509Ptr>;

inline constexpr std::size_t kMaxPemBytes = std::size_t{64} * 1024;

// A new reference to `cert` (X509_up_ref).
X509Ptr share(const X509* cert);

// Parses a PEM chain: 1 … max_certs CERTIFICATE blocks separated by whitespace.
// Refuses (empty result, `error` set): empty input, input over kMaxPemBytes,
// more than max_certs certificates, any other block type (e.g. a private key),
// PEM headers, anything that is not whitespace before, between or after the
// blocks, bad base64, DER that is not exactly one certificate.
CertChain parse_pem_chain(std::string_view pem, std::size_t max_certs, std::string& error);
// Exactly one certificate.
X509Ptr parse_pem_certificate(std::string_view pem, std::string& error);

// Files: a regular file of at most kMaxPemBytes, then as parse_pem_*.
CertChain load_chain_file(const std::filesystem::path& path, std::size_t max_certs, std::string& error);
X509Ptr load_pem_file(const std::filesystem::path& path, std::string& error);

// PEM text ("-----BEGIN CERTIFICATE-----" blocks, '\n' line ends).
std::string to_pem(const X509* cert);
std::string to_pem(const CertChain& chain);

struct VerifyOptions {
  enum class Purpose { Any, TlsClient, TlsServer, CodeSigning };
  Purpose purpose = Purpose::Any;
  // Time at which validity is checked; now when empty.
  std::optional<std::chrono::system_clock::time_point> at;
  // Apply check_certificate (crypto_policy.hpp) to every certificate of the
  // built chain, the root included.
  bool check_policy = true;
};

struct VerifyResult {
  std::string error;                  // "" when the chain verified
  std::vector<std::string> warnings;  // crypto policy warnings (e.g. RSA-2048), with positions
  CertChain chain;                    // the built chain, leaf … root (only when verified)
  bool ok() const { return error.empty(); }
};

// Verifies chain[0] (the leaf) up to one of `roots`, with chain[1…] as the only
// intermediates: X509_STORE holding only `roots`, X509_V_FLAG_X509_STRICT, no
// partial chains, validity at `opt.at` (or now), the purpose (TlsClient /
// TlsServer: OpenSSL's sslclient / sslserver purposes for the whole chain;
// CodeSigning: the leaf's extendedKeyUsage, when present, must contain
// codeSigning and its keyUsage, when present, digitalSignature; Any: no
// purpose check), then the crypto policy. Errors, e.g.
// "certificate has expired (leaf CN=CS001,O=Op)",
// "unable to get local issuer certificate (certificate 1 CN=Sub CA)",
// "leaf (CN=CS001): RSA key of 1024 bits (minimum 2048)", "no trusted root".
std::string verify_chain(const CertChain& chain, const std::vector<const X509*>& roots, const VerifyOptions& opt = {});
VerifyResult verify_chain_detailed(const CertChain& chain, const std::vector<const X509*>& roots,
                                   const VerifyOptions& opt = {});

// OCPP CertificateHashDataType (RFC 6960 CertID as OCPP uses it).
enum class HashAlgorithm { SHA256, SHA384, SHA512 };
std::string_view to_string(HashAlgorithm a) noexcept;                   // "SHA256", …
std::optional<HashAlgorithm> parse_hash_algorithm(std::string_view s);  // exact OCPP spelling

struct CertificateHashData {
  std::string hash_algorithm;    // "SHA256" | "SHA384" | "SHA512"
  std::string issuer_name_hash;  // hex (lower case) of hash(DER of cert's issuer Name)
  std::string issuer_key_hash;   // hex (lower case) of hash(issuer's subjectPublicKey BIT STRING value)
  std::string serial_number;     // cert's serial, lower-case hex without leading zeros ("0" for zero;
                                 // "-…" for a negative serial); may exceed OCPP's 40 characters
                                 // for serials over 20 octets (RFC 5280 forbids those)
};
// `issuer` is the certificate that signed `cert` (for a self-signed root: cert
// itself). All fields empty when an argument is null or hashing fails.
CertificateHashData hash_data(const X509* cert, const X509* issuer, HashAlgorithm alg = HashAlgorithm::SHA256);
// Same certificate id: algorithms equal and hashes equal ignoring case, serial
// numbers equal ignoring case and leading zeros (CSMSs send upper case, some
// with leading zeros).
bool same_hash_data(const CertificateHashData& a, const CertificateHashData& b);

// The one value of a subject attribute (e.g. NID_commonName,
// NID_organizationName) as UTF-8; "" when absent, present more than once, not
// convertible to UTF-8 or holding a NUL character.
std::string subject_attribute(const X509* cert, int nid);
// The subject in RFC 2253 form, ASCII only (control and non-ASCII characters
// escaped), at most 256 characters ("..." at the end when cut).
std::string subject_text(const X509* cert);

// basicConstraints cA = TRUE.
bool is_ca(const X509* cert);
// Issuer name = subject name and the certificate's signature verifies with its own key.
bool is_self_signed(const X509* cert);
// Validity bounds. Times beyond system_clock's range are clamped to its
// min()/max(); an undecodable notBefore gives max() (never valid), an
// undecodable notAfter gives min() (always expired).
std::chrono::system_clock::time_point not_before(const X509* cert);
std::chrono::system_clock::time_point not_after(const X509* cert);

// The certificate's public key equals the key of a DER SubjectPublicKeyInfo
// (e.g. KeyStore::public_key_der); compared as keys (EVP_PKEY_eq), so EC point
// encodings do not matter. False for undecodable DER or DER with trailing bytes.
bool public_key_matches(const X509* cert, std::span<const std::uint8_t> spki_der);

// `cert` names `issuer`'s subject as its issuer and its signature verifies with
// issuer's public key. Does not apply the crypto policy, validity or CA checks:
// callers use check_certificate / verify_chain for those.
bool signed_by(const X509* cert, const X509* issuer);

}  // namespace cg::security
