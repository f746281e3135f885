// File backend of the key store (development): one PKCS#8 PEM file per key
// pair (<label>.pem, mode 0600) and a 32-byte AES-256-GCM sealing key
// (seal.key, mode 0600) in a directory of mode 0700. All access goes through a
// descriptor of the directory (openat, O_NOFOLLOW); files are written to a
// temporary name, synced, then linked into place (never overwriting).
#include <dirent.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "security/key_store.hpp"
#include "security/key_store_internal.hpp"

namespace cg::security {
namespace {

using detail::require_label;

constexpr const char* kSealKeyFile = "seal.key";
constexpr std::size_t kSealKeySize = 32;
constexpr off_t kMaxKeyFileSize = 65536;

std::string errno_text() {
  return std::strerror(errno);
}

std::string mode_text(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

int no_passphrase(char*, int, int, void*) {
  return 0;
}  // never prompt for a PEM pass phrase

class FileKeyStore final : public KeyStore {
 public:
  explicit FileKeyStore(const FileKeyStoreOptions& opt) : dir_(opt.dir) {
    if (dir_.empty()) throw KeyStoreError(KeyStoreErrc::StoreDirectory, "file key store: no directory configured");
    if (::mkdir(dir_.c_str(), 0700) == 0) {
      if (::chmod(dir_.c_str(), 0700) != 0)
        throw KeyStoreError(KeyStoreErrc::StoreDirectory, "key store directory " + dir_.string() + ": chmod failed");
    } else if (errno != EEXIST) {
      throw KeyStoreError(KeyStoreErrc::StoreDirectory,
                          "cannot create key store directory " + dir_.string() + " (" + errno_text() + ")");
    }
    dfd_ = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd_ < 0)
      throw KeyStoreError(KeyStoreErrc::StoreDirectory,
                          "cannot open key store directory " + dir_.string() + " (" + errno_text() + ")");
    struct stat st {};
    if (::fstat(dfd_, &st) != 0 || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
      const std::string why = st.st_uid != ::geteuid() ? "is not owned by this user"
                                                       : "must have mode 0700 (has " + mode_text(st.st_mode) + ")";
      ::close(dfd_);
      throw KeyStoreError(KeyStoreErrc::StoreDirectory, "key store directory " + dir_.string() + " " + why);
    }
  }
  ~FileKeyStore() override { ::close(dfd_); }

  std::string_view backend() const noexcept override { return "file"; }

  KeyInfo generate_key(std::string_view label, KeyType type) override {
    require_label(label);
    std::lock_guard lk(mu_);
    if (exists(key_file(label)))
      throw KeyStoreError(KeyStoreErrc::KeyExists, "key '" + std::string(label) + "' exists already");
    EVP_PKEY* raw = nullptr;
    switch (type) {
      case KeyType::EcP256:
        raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
        break;
      case KeyType::EcP384:
        raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
        break;
      case KeyType::Rsa3072:
        raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(3072));
        break;
    }
    PrivateKey pk(raw);
    if (!pk) throw KeyStoreError(KeyStoreErrc::Backend, "key generation failed: " + detail::openssl_errors());
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_secmem()), BIO_free);
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), pk.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
      throw KeyStoreError(KeyStoreErrc::Backend, "cannot encode the new key: " + detail::openssl_errors());
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    write_new_file(key_file(label),
                   std::span<const std::uint8_t>(reinterpret_cast<std::uint8_t*>(data), static_cast<std::size_t>(n)));
    return KeyInfo{std::string(label), type, false};
  }

  std::optional<KeyInfo> find_key(std::string_view label) override {
    require_label(label);
    std::lock_guard lk(mu_);
    if (!exists(key_file(label))) return std::nullopt;
    PrivateKey pk = load_key(label);
    const auto type = detail::key_type_of(pk.get());
    if (!type) throw KeyStoreError(KeyStoreErrc::Backend, "key '" + std::string(label) + "' has an unsupported type");
    return KeyInfo{std::string(label), *type, false};
  }

  std::vector<std::string> list_keys() override {
    std::lock_guard lk(mu_);
    std::vector<std::string> out;
    const int fd = ::openat(dfd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* d = fd >= 0 ? ::fdopendir(fd) : nullptr;
    if (!d) {
      if (fd >= 0) ::close(fd);
      throw KeyStoreError(KeyStoreErrc::StoreDirectory, "cannot list " + dir_.string() + " (" + errno_text() + ")");
    }
    while (const dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name.size() > 4 && name.ends_with(".pem")) {
        name.remove_suffix(4);
        if (is_valid_key_label(name)) out.emplace_back(name);
      }
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
  }

  bool delete_key(std::string_view label) override {
    require_label(label);
    std::lock_guard lk(mu_);
    if (::unlinkat(dfd_, key_file(label).c_str(), 0) != 0) {
      if (errno == ENOENT) return false;
      throw KeyStoreError(KeyStoreErrc::Backend,
                          "cannot delete key '" + std::string(label) + "' (" + errno_text() + ")");
    }
    ::fsync(dfd_);
    return true;
  }

  void rename_key(std::string_view from, std::string_view to) override {
    require_label(from);
    require_label(to);
    std::lock_guard lk(mu_);
    const std::string f = key_file(from), t = key_file(to);
    if (::linkat(dfd_, f.c_str(), dfd_, t.c_str(), 0) != 0) {
      if (errno == ENOENT) throw KeyStoreError(KeyStoreErrc::KeyNotFound, "no key '" + std::string(from) + "'");
      if (errno == EEXIST) throw KeyStoreError(KeyStoreErrc::KeyExists, "key '" + std::string(to) + "' exists already");
      throw KeyStoreError(KeyStoreErrc::Backend,
                          "cannot rename key '" + std::string(from) + "' (" + errno_text() + ")");
    }
    ::unlinkat(dfd_, f.c_str(), 0);
    ::fsync(dfd_);
  }

  PrivateKey private_key(std::string_view label) override {
    require_label(label);
    std::lock_guard lk(mu_);
    return load_key(label);
  }

  std::optional<std::uint64_t> read_counter(std::string_view label) override {
    require_label(label);
    std::lock_guard lk(mu_);
    return counter_value(label);
  }

  std::uint64_t raise_counter(std::string_view label, std::uint64_t value) override {
    require_label(label);
    std::lock_guard lk(mu_);
    const auto now = counter_value(label);
    if (now && *now >= value) return *now;
    const std::string text = std::to_string(value) + "\n";
    const std::string name = "counter." + std::string(label) + "." + std::to_string(value);
    // A record of this value torn by a power loss did not count: replace it.
    if (exists(name) && ::unlinkat(dfd_, name.c_str(), 0) != 0) {
      throw KeyStoreError(KeyStoreErrc::StoreDirectory, "cannot replace " + name + " (" + errno_text() + ")");
    }
    try {
      write_new_file(name,
                     {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
    } catch (const KeyStoreError& e) {
      if (e.code() != KeyStoreErrc::KeyExists) throw;  // written before: same value
    }
    ::fsync(dfd_);
    return value;
  }

 protected:
  std::uint8_t sealer_id() const noexcept override { return 1; }

  std::vector<std::uint8_t> aead_seal(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
                                      std::span<const std::uint8_t> pt) override {
    std::lock_guard lk(mu_);
    SecretBytes key = seal_key(true);
    std::vector<std::uint8_t> out(pt.size() + 16);
    int len = 0, fin = 0;
    Ctx ctx;
    const bool ok = ctx.c && EVP_EncryptInit_ex2(ctx.c, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
                    EVP_CIPHER_CTX_ctrl(ctx.c, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()), nullptr) == 1 &&
                    EVP_EncryptInit_ex2(ctx.c, nullptr, key.data(), nonce.data(), nullptr) == 1 &&
                    EVP_EncryptUpdate(ctx.c, nullptr, &len, aad.data(), static_cast<int>(aad.size())) == 1 &&
                    EVP_EncryptUpdate(ctx.c, out.data(), &len, pt.data(), static_cast<int>(pt.size())) == 1 &&
                    EVP_EncryptFinal_ex(ctx.c, out.data() + len, &fin) == 1 &&
                    EVP_CIPHER_CTX_ctrl(ctx.c, EVP_CTRL_GCM_GET_TAG, 16, out.data() + pt.size()) == 1;
    if (!ok) throw KeyStoreError(KeyStoreErrc::Backend, "seal: AES-GCM failed: " + detail::openssl_errors());
    return out;
  }

  SecretBytes aead_open(std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> aad,
                        std::span<const std::uint8_t> ct) override {
    std::lock_guard lk(mu_);
    SecretBytes key = seal_key(false);
    const std::size_t n = ct.size() - 16;
    SecretBytes out(n);
    int len = 0, fin = 0;
    Ctx ctx;
    std::uint8_t tag[16];
    std::memcpy(tag, ct.data() + n, 16);
    const bool ok = ctx.c && EVP_DecryptInit_ex2(ctx.c, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
                    EVP_CIPHER_CTX_ctrl(ctx.c, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()), nullptr) == 1 &&
                    EVP_DecryptInit_ex2(ctx.c, nullptr, key.data(), nonce.data(), nullptr) == 1 &&
                    EVP_DecryptUpdate(ctx.c, nullptr, &len, aad.data(), static_cast<int>(aad.size())) == 1 &&
                    EVP_DecryptUpdate(ctx.c, out.data(), &len, ct.data(), static_cast<int>(n)) == 1 &&
                    EVP_CIPHER_CTX_ctrl(ctx.c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1 &&
                    EVP_DecryptFinal_ex(ctx.c, out.data() + len, &fin) == 1;
    if (!ok) {
      ERR_clear_error();
      OPENSSL_cleanse(out.data(), out.size());
      throw KeyStoreError(KeyStoreErrc::UnsealFailed,
                          "unseal failed: the blob is damaged or tampered with, or was sealed for another purpose or "
                          "by another key store");
    }
    return out;
  }

 private:
  struct Ctx {
    EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
    Ctx() = default;
    Ctx(const Ctx&) = delete;
    Ctx& operator=(const Ctx&) = delete;
    ~Ctx() { EVP_CIPHER_CTX_free(c); }
  };

  static std::string key_file(std::string_view label) { return std::string(label) + ".pem"; }

  // The highest "counter.<label>.<value>" file whose content is "<value>\n".
  std::optional<std::uint64_t> counter_value(std::string_view label) const {
    const std::string prefix = "counter." + std::string(label) + ".";
    const int fd = ::openat(dfd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* d = fd >= 0 ? ::fdopendir(fd) : nullptr;
    if (!d) {
      if (fd >= 0) ::close(fd);
      throw KeyStoreError(KeyStoreErrc::StoreDirectory, "cannot list " + dir_.string() + " (" + errno_text() + ")");
    }
    std::vector<std::string> names;
    while (const dirent* e = ::readdir(d)) {
      const std::string_view name = e->d_name;
      if (name.size() > prefix.size() && name.substr(0, prefix.size()) == prefix) names.emplace_back(name);
    }
    ::closedir(d);
    std::optional<std::uint64_t> best;
    for (const auto& name : names) {
      const std::string digits = name.substr(prefix.size());
      if (digits.empty() || digits.size() > 19 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
      const std::uint64_t v = std::stoull(digits);
      const auto content = read_private_file(name);
      if (!content || content->view() != std::to_string(v) + "\n") continue;  // torn or foreign: ignored
      if (!best || v > *best) best = v;
    }
    return best;
  }

  bool exists(const std::string& name) const {
    struct stat st {};
    return ::fstatat(dfd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  }

  // Reads a whole private file: regular, ours, mode without group/other bits,
  // at most kMaxKeyFileSize bytes. nullopt when it does not exist.
  std::optional<SecretBytes> read_private_file(const std::string& name) const {
    Fd fd(::openat(dfd_, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (fd.fd < 0) {
      if (errno == ENOENT) return std::nullopt;
      throw KeyStoreError(KeyStoreErrc::Backend, "cannot open " + (dir_ / name).string() + " (" + errno_text() + ")");
    }
    struct stat st {};
    if (::fstat(fd.fd, &st) != 0 || !S_ISREG(st.st_mode))
      throw KeyStoreError(KeyStoreErrc::Backend, (dir_ / name).string() + " is not a regular file");
    if ((st.st_mode & 077) != 0 || st.st_uid != ::geteuid())
      throw KeyStoreError(
          KeyStoreErrc::StoreDirectory,
          (dir_ / name).string() + " must be owned by this user with mode 0600 (has " + mode_text(st.st_mode) + ")");
    if (st.st_size > kMaxKeyFileSize)
      throw KeyStoreError(KeyStoreErrc::Backend, (dir_ / name).string() + " is too large for a key file");
    SecretBytes buf(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < buf.size()) {
      const ssize_t r = ::read(fd.fd, buf.data() + got, buf.size() - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) throw KeyStoreError(KeyStoreErrc::Backend, "cannot read " + (dir_ / name).string());
      got += static_cast<std::size_t>(r);
    }
    return buf;
  }

  // Creates `name` with the given content; KeyExists when it exists.
  void write_new_file(const std::string& name, std::span<const std::uint8_t> data) {
    std::uint8_t rnd[8];
    if (RAND_bytes(rnd, sizeof rnd) != 1) throw KeyStoreError(KeyStoreErrc::Backend, "CSPRNG failure");
    std::string tmp = ".tmp-";
    for (auto b : rnd) tmp += "0123456789abcdef"[b >> 4], tmp += "0123456789abcdef"[b & 15];
    {
      Fd fd(::openat(dfd_, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (fd.fd < 0)
        throw KeyStoreError(KeyStoreErrc::Backend,
                            "cannot create a file in " + dir_.string() + " (" + errno_text() + ")");
      std::size_t done = 0;
      bool ok = true;
      while (ok && done < data.size()) {
        const ssize_t w = ::write(fd.fd, data.data() + done, data.size() - done);
        if (w < 0 && errno == EINTR) continue;
        ok = w > 0;
        if (ok) done += static_cast<std::size_t>(w);
      }
      if (!ok || ::fsync(fd.fd) != 0) {
        ::unlinkat(dfd_, tmp.c_str(), 0);
        throw KeyStoreError(KeyStoreErrc::Backend, "cannot write " + (dir_ / name).string());
      }
    }
    const int r = ::linkat(dfd_, tmp.c_str(), dfd_, name.c_str(), 0);
    const int err = errno;
    ::unlinkat(dfd_, tmp.c_str(), 0);
    if (r != 0) {
      if (err == EEXIST) throw KeyStoreError(KeyStoreErrc::KeyExists, (dir_ / name).string() + " exists already");
      throw KeyStoreError(KeyStoreErrc::Backend,
                          "cannot create " + (dir_ / name).string() + " (" + std::strerror(err) + ")");
    }
    ::fsync(dfd_);
  }

  PrivateKey load_key(std::string_view label) const {
    auto pem = read_private_file(key_file(label));
    if (!pem) throw KeyStoreError(KeyStoreErrc::KeyNotFound, "no key '" + std::string(label) + "' in " + dir_.string());
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())),
                                                  BIO_free);
    PrivateKey pk(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr) : nullptr);
    if (!pk) {
      ERR_clear_error();
      throw KeyStoreError(KeyStoreErrc::Backend,
                          "key file of '" + std::string(label) + "' in " + dir_.string() + " is damaged");
    }
    return pk;
  }

  SecretBytes seal_key(bool create) {
    auto key = read_private_file(kSealKeyFile);
    if (!key && create) {
      SecretBytes fresh(kSealKeySize);
      if (RAND_bytes(fresh.data(), static_cast<int>(fresh.size())) != 1)
        throw KeyStoreError(KeyStoreErrc::Backend, "CSPRNG failure");
      try {
        write_new_file(kSealKeyFile, fresh.span());
      } catch (const KeyStoreError& e) {
        if (e.code() != KeyStoreErrc::KeyExists) throw;  // another store instance was first
      }
      key = read_private_file(kSealKeyFile);
    }
    if (!key)
      throw KeyStoreError(KeyStoreErrc::UnsealFailed, "unseal failed: the key store in " + dir_.string() +
                                                          " has no sealing key (sealed by another store?)");
    if (key->size() != kSealKeySize)
      throw KeyStoreError(KeyStoreErrc::Backend, "sealing key " + (dir_ / kSealKeyFile).string() + " is damaged");
    return std::move(*key);
  }

  std::filesystem::path dir_;
  int dfd_ = -1;
  std::mutex mu_;
};

}  // namespace

std::unique_ptr<KeyStore> open_file_key_store(const FileKeyStoreOptions& opt) {
  return std::make_unique<FileKeyStore>(opt);
}

}  // namespace cg::security
