#include "security/sealed_password.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <cerrno>
#include <cstring>

#include "security/base64.hpp"

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
  if (text.empty() || text.size() % 4 != 0)
    throw KeyStoreError(KeyStoreErrc::UnsealFailed, f.string() + ": damaged sealed password");
  std::vector<std::uint8_t> blob(text.size() / 4 * 3);
  const int len = EVP_DecodeBlock(blob.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                  static_cast<int>(text.size()));
  if (len < 0) throw KeyStoreError(KeyStoreErrc::UnsealFailed, f.string() + ": damaged sealed password");
  // EVP_DecodeBlock counts the padding as zero bytes.
  std::size_t out = static_cast<std::size_t>(len);
  if (text.size() >= 1 && text[text.size() - 1] == '=') --out;
  if (text.size() >= 2 && text[text.size() - 2] == '=') --out;
  blob.resize(out);
  return blob;
}

void SealedPassword::write_blob(const fs::path& f, std::span<const std::uint8_t> blob) const {
  const std::string text =
      base64_encode(std::string_view(reinterpret_cast<const char*>(blob.data()), blob.size())) + "\n";
  const fs::path tmp = f.string() + ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) throw KeyStoreError(KeyStoreErrc::Backend, "cannot create " + tmp.string() + " (" + std::strerror(errno) + ")");
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), f.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw KeyStoreError(KeyStoreErrc::Backend, "cannot write " + f.string());
  }
  // The rename itself must survive a power loss before we answer Accepted.
  const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void SealedPassword::remove_file(const fs::path& f) const {
  if (::unlink(f.c_str()) != 0 && errno != ENOENT)
    throw KeyStoreError(KeyStoreErrc::Backend, "cannot remove " + f.string());
  const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
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
