// Small secrets kept in files of the state directory until the key store
// (PKCS#11) takes them over: 32 random bytes, mode 0600, created atomically.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace cg::security {

using Secret32 = std::array<std::uint8_t, 32>;

// Loads FILE; creates it from OpenSSL's CSPRNG when it does not exist. Throws
// when it exists but cannot be read or is damaged: a key is never replaced,
// because what it protects (badge hashes, the audit chain) depends on it.
Secret32 load_or_create_secret(const std::string& file);

// Replaces FILE with DATA so that a crash or power loss leaves either the old
// or the new content: FILE.tmp (0600, O_EXCL), write, fsync, rename, fsync of
// the directory. Returns an empty string, or what failed.
std::string write_file_durably(const std::string& file, std::string_view data);
// fsync of a directory, so that a rename or unlink in it survives a power loss.
void fsync_dir(const std::string& dir);

}  // namespace cg::security
