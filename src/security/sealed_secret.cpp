#include "security/sealed_secret.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "security/base64.hpp"

namespace cg::security {
namespace fs = std::filesystem;

std::vector<std::uint8_t> read_sealed_file(const fs::path& f) {
  const int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) throw KeyStoreError(KeyStoreErrc::KeyNotFound, f.string() + ": no sealed secret");
    throw KeyStoreError(KeyStoreErrc::Backend, f.string() + ": cannot read (" + std::strerror(errno) + ")");
  }
  std::string text(2 * kMaxSealBlob + 16, '\0');
  const auto n = ::read(fd, text.data(), text.size());
  ::close(fd);
  if (n <= 0 || static_cast<std::size_t>(n) >= text.size())
    throw KeyStoreError(KeyStoreErrc::UnsealFailed, f.string() + ": damaged sealed secret");
  text.resize(static_cast<std::size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  const auto raw = text.empty() ? std::nullopt : base64_decode(text);
  if (!raw) throw KeyStoreError(KeyStoreErrc::UnsealFailed, f.string() + ": damaged sealed secret");
  return std::vector<std::uint8_t>(raw->begin(), raw->end());
}

void write_sealed_file(const fs::path& f, std::span<const std::uint8_t> blob) {
  const std::string text =
      base64_encode(std::string_view(reinterpret_cast<const char*>(blob.data()), blob.size())) + "\n";
  // The rename itself must survive a power loss before the caller relies on it.
  if (auto r = write_file_durably(f.string(), text); !r) throw KeyStoreError(KeyStoreErrc::Backend, r.error().message);
}

namespace {

Secret32 to_secret(const SecretBytes& b, const fs::path& f) {
  if (b.size() != Secret32{}.size())
    throw KeyStoreError(KeyStoreErrc::UnsealFailed, f.string() + ": the sealed secret has the wrong size");
  Secret32 s{};
  std::memcpy(s.data(), b.data(), s.size());
  return s;
}

// A plain 32-byte key file of an older release; nullopt when absent.
std::optional<Secret32> read_legacy(const fs::path& f) {
  if (f.empty()) return std::nullopt;
  const int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw KeyStoreError(KeyStoreErrc::Backend, f.string() + ": cannot read the key (" + std::strerror(errno) + ")");
  }
  Secret32 key{};
  const auto n = ::read(fd, key.data(), key.size());
  char extra;
  const auto more = ::read(fd, &extra, 1);
  ::close(fd);
  if (n != static_cast<ssize_t>(key.size()) || more != 0)
    throw KeyStoreError(KeyStoreErrc::UnsealFailed, f.string() + ": key file is damaged");
  return key;
}

// Overwrites the plain key file with zeros, syncs and removes it. On flash the
// old blocks may survive the overwrite; the sealed copy is what counts now.
void destroy_legacy(const fs::path& f) {
  const int fd = ::open(f.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd >= 0) {
    const Secret32 zero{};
    (void)!::write(fd, zero.data(), zero.size());
    ::fsync(fd);
    ::close(fd);
  }
  if (::unlink(f.c_str()) != 0 && errno != ENOENT)
    throw KeyStoreError(KeyStoreErrc::Backend, "cannot remove the plain key file " + f.string());
  fsync_dir(f.parent_path().string());
}

}  // namespace

Secret32 load_sealed_secret(KeyStore& store, const fs::path& sealed_file, std::string_view purpose,
                            const fs::path& legacy_plain_file) {
  std::error_code ec;
  if (!fs::exists(sealed_file, ec)) {
    if (auto legacy = read_legacy(legacy_plain_file)) return *legacy;
    throw KeyStoreError(KeyStoreErrc::KeyNotFound, sealed_file.string() + ": no sealed secret");
  }
  return to_secret(store.unseal(purpose, read_sealed_file(sealed_file)), sealed_file);
}

Secret32 load_or_create_sealed_secret(KeyStore& store, const fs::path& sealed_file, std::string_view purpose,
                                      const fs::path& legacy_plain_file) {
  std::error_code ec;
  if (fs::exists(sealed_file, ec)) {
    Secret32 s = to_secret(store.unseal(purpose, read_sealed_file(sealed_file)), sealed_file);
    // A crash after sealing and before removing left the plain file: remove it now.
    if (!legacy_plain_file.empty() && fs::exists(legacy_plain_file, ec)) destroy_legacy(legacy_plain_file);
    return s;
  }
  Secret32 s{};
  if (auto legacy = read_legacy(legacy_plain_file)) {
    s = *legacy;
    OPENSSL_cleanse(legacy->data(), legacy->size());
  } else if (RAND_bytes(s.data(), static_cast<int>(s.size())) != 1) {
    throw KeyStoreError(KeyStoreErrc::Backend, "CSPRNG failure");
  }
  write_sealed_file(sealed_file, store.seal(purpose, std::span<const std::uint8_t>(s.data(), s.size())));
  if (!legacy_plain_file.empty() && fs::exists(legacy_plain_file, ec)) destroy_legacy(legacy_plain_file);
  return s;
}

}  // namespace cg::security
