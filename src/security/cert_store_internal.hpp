// The certificate store's shared pieces: its files and their rules, for the
// rules (cert_store.cpp) and the disk layout with its crash recovery
// (cert_store_disk.cpp). Internal to src/security/.
#pragma once
#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "security/cert_store.hpp"

namespace cg::security::cert_store_detail {
using Clock = std::chrono::system_clock;

inline constexpr const char* kStateFile = "state";
inline constexpr const char* kBundleFile = "csms-roots.pem";
inline constexpr const char* kStateMagic = "cg-cert-store-state 1";
inline constexpr std::size_t kMaxStateBytes = std::size_t{64} * 1024;
inline constexpr const char* kProfile1 =
    "root certificates are not installed over an unencrypted connection (security profile 1)";

// SHA-256 of the DER, lower-case hex: a certificate's file name.
std::string fingerprint_of(const X509* cert);
bool is_fingerprint(std::string_view s);
// A file name as it may be shown (control characters replaced).
std::string printable(std::string_view name);
std::string format_utc(Clock::time_point t);
bool self_signed_required(CertificateType t);
// CA, keyCertSign, validity, crypto policy and (optionally) self-signed.
// "" or the reason; policy warnings are appended to `warnings`.
std::string check_root(const X509* cert, Clock::time_point now, bool require_self_signed,
                       std::vector<std::string>& warnings);
bool same_name_and_key(const X509* a, const X509* b);
// A regular file of at most `max` bytes; exists=false when there is none.
std::string read_text_file(const std::filesystem::path& p, std::size_t max, bool& exists, std::string& error);
// Creates `d` (0700) when missing: "" or what failed.
std::string ensure_dir(const std::filesystem::path& d, bool* created = nullptr);

}  // namespace cg::security::cert_store_detail
