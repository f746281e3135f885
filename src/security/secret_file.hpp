// Bounded reads and durable file replacement, and the type of the 32-byte device secrets (which
// are kept sealed by the key store: sealed_secret.hpp).
#pragma once
#include "core/result.hpp"
#include <array>
#include <filesystem>
#include <cstdint>
#include <string>
#include <string_view>

namespace cg::security {

using Secret32 = std::array<std::uint8_t, 32>;

// Replaces FILE with DATA so that a crash or power loss leaves either the old
// or the new content: FILE.tmp (0600, O_EXCL), write, fsync, rename, fsync of
// the directory.
Result<void> write_file_durably(const std::string& file, std::string_view data);
// fsync of a directory, so that a rename or unlink in it survives a power loss.
void fsync_dir(const std::string& dir);
// The whole content of FILE when it has at most MAX bytes. Errors name the
// file: Errc::NotFound (missing or unreadable), Errc::InvalidArgument (larger
// than MAX). A symbolic link is refused unless follow_symlinks (files a user
// names on the command line).
Result<std::string> read_file_bounded(const std::filesystem::path& file, std::size_t max, bool follow_symlinks = false);

}  // namespace cg::security
