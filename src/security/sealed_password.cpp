#include "security/sealed_password.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>


#include <cerrno>
#include <cstring>

#include "security/base64.hpp"
#include "security/secret_file.hpp"

namespace cg::security {
namespace fs = std::filesystem;

std::optional<std::string> check_basic_auth_password(std::string_view pw) {
  if (pw.size() < kMinBasicAuthPassword || pw.size() > kMaxBasicAuthPassword) return std::string("InvalidLength");
  for (unsigned char c : pw) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::strchr("*-_=:+|@.", c) != nullptr;
    if (!ok || c == 0) return std::string("InvalidCharacters");
  }
  return std::nullopt;
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

std::vector<std::uint8_t> SealedPassword::read_blob(const fs::path& f) const {
  const int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) throw KeyStoreError(KeyStoreErrc::KeyNotFound, f.string() + ": no sealed password");
    throw KeyStoreError(KeyStoreErrc::Backend, f.string() + ": cannot read (" + std::strerror(errno) + ")");
  }
  std::string text(2 * kMaxSealBlob + 16, '\0');
  const auto n = ::read(fd, text.data(), text.size());
  ::close(fd);
  if (n <= 0 || static_cast<std::size_t>(n) >= text.size())
    throw KeyStoreError(KeyStoreErrc::UnsealFailed, f.string() + ": damaged sealed password");
  text.resize(static_cast<std::size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  const auto raw = text.empty() ? std::nullopt : base64_decode(text);
  if (!raw) throw KeyStoreError(KeyStoreErrc::UnsealFailed, f.string() + ": damaged sealed password");
  std::vector<std::uint8_t> blob(raw->begin(), raw->end());
  return blob;
}

void SealedPassword::write_blob(const fs::path& f, std::span<const std::uint8_t> blob) const {
  const std::string text =
      base64_encode(std::string_view(reinterpret_cast<const char*>(blob.data()), blob.size())) + "\n";
  // The rename itself must survive a power loss before we answer Accepted.
  if (auto err = write_file_durably(f.string(), text); !err.empty()) throw KeyStoreError(KeyStoreErrc::Backend, err);
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
