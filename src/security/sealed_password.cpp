#include "security/sealed_password.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>


#include <cerrno>
#include <cstring>

#include "security/sealed_secret.hpp"
#include "security/secret_file.hpp"

namespace cg::security {
namespace fs = std::filesystem;

Result<void> check_basic_auth_password(std::string_view pw) {
  if (pw.size() < kMinBasicAuthPassword || pw.size() > kMaxBasicAuthPassword)
    return refuse("InvalidLength", "length must be 16-40 characters");
  for (unsigned char c : pw) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::strchr("*-_=:+|@.", c) != nullptr;
    if (!ok || c == 0) return refuse("InvalidCharacters", "allowed characters: a-z A-Z 0-9 * - _ = : + | @ .");
  }
  return {};
}

SealedPassword::SealedPassword(KeyStore& store, fs::path state_dir) : store_(store), dir_(std::move(state_dir)) {}

bool SealedPassword::has_current() const {
  std::error_code ec;
  return fs::exists(current_file(), ec);
}

bool SealedPassword::has_previous() const {
  std::error_code ec;
  return fs::exists(previous_file(), ec);
}

std::vector<std::uint8_t> SealedPassword::read_blob(const fs::path& f) const { return read_sealed_file(f); }

void SealedPassword::write_blob(const fs::path& f, std::span<const std::uint8_t> blob) const {
  write_sealed_file(f, blob);
}

void SealedPassword::remove_file(const fs::path& f) const {
  if (::unlink(f.c_str()) != 0 && errno != ENOENT)
    throw KeyStoreError(KeyStoreErrc::Backend, "cannot remove " + f.string());
  fsync_dir(dir_.string());
}

void SealedPassword::store(std::string_view plaintext) {
  const auto blob = store_.seal(kCsmsPasswordPurpose, plaintext);
  // The fallback first: a crash in between leaves previous == current, harmless.
  if (has_current() && !has_previous()) write_blob(previous_file(), read_blob(current_file()));
  write_blob(current_file(), blob);
}

SecretBytes SealedPassword::current() const { return store_.unseal(kCsmsPasswordPurpose, read_blob(current_file())); }

SecretBytes SealedPassword::previous() const { return store_.unseal(kCsmsPasswordPurpose, read_blob(previous_file())); }

void SealedPassword::confirm() { remove_file(previous_file()); }

void SealedPassword::roll_back() {
  if (!has_previous()) return;
  write_blob(current_file(), read_blob(previous_file()));
  remove_file(previous_file());
}

}  // namespace cg::security
