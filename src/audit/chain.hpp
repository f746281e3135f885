// The security log's on-disk format, shared by the writer (audit_log.cpp)
// and the readers (verify.cpp): the hash and MAC, the signed lines (anchor,
// continuation, exported mark), record text rules. Internal to src/audit/.
// REQ: LOG-2, LOG-5
#pragma once
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/log.hpp"
#include "security/ossl.hpp"
#include "security/secret_file.hpp"

namespace cg::audit::detail {
namespace fs = std::filesystem;

inline constexpr std::size_t kHashHex = 64;
inline constexpr std::size_t kMaxText = 256;
inline const std::string kZeroHash(kHashHex, '0');
inline constexpr std::string_view kContinues = "#continues";

inline fs::path sealed_key_file(const fs::path& dir) { return dir / "audit.key.sealed"; }
inline fs::path legacy_key_file(const fs::path& dir) { return dir / "audit.key"; }

// SHA-256 and HMAC-SHA256 with contexts fetched once (OpenSSL 3 fetches are costly).
// The HMAC (RFC 2104) is computed from SHA-256 states precomputed once per key:
// the states after absorbing the one-block (key ^ ipad) and (key ^ opad); each
// hmac() continues copies of them. Same bytes as EVP_MAC "HMAC", without the
// MAC provider's init/final per call and without hashing the two pad blocks
// again (2 of the 4 compression calls of a MAC over a 32-byte hash).
class Crypto {
 public:
  explicit Crypto(const security::Secret32* key)
      : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)), md_ctx_(EVP_MD_CTX_new()) {
    if (!md_ || !md_ctx_) throw std::runtime_error("SHA-256 unavailable");
    if (key) {
      static_assert(std::tuple_size_v<security::Secret32> <= kShaBlock,
                    "HMAC keys longer than a block are hashed first");
      inner_.reset(EVP_MD_CTX_new());
      outer_.reset(EVP_MD_CTX_new());
      mac_ctx_.reset(EVP_MD_CTX_new());
      unsigned char ipad[kShaBlock], opad[kShaBlock];
      for (std::size_t i = 0; i < kShaBlock; ++i) {
        const unsigned char k = i < key->size() ? (*key)[i] : 0;
        ipad[i] = k ^ 0x36;
        opad[i] = k ^ 0x5c;
      }
      const bool ok = inner_ && outer_ && mac_ctx_ && EVP_DigestInit_ex(inner_.get(), md_.get(), nullptr) == 1 &&
                      EVP_DigestUpdate(inner_.get(), ipad, kShaBlock) == 1 &&
                      EVP_DigestInit_ex(outer_.get(), md_.get(), nullptr) == 1 &&
                      EVP_DigestUpdate(outer_.get(), opad, kShaBlock) == 1;
      OPENSSL_cleanse(ipad, sizeof ipad);
      OPENSSL_cleanse(opad, sizeof opad);
      if (!ok) throw std::runtime_error("HMAC init failed");
    }
  }
  Crypto(const Crypto&) = delete;
  Crypto& operator=(const Crypto&) = delete;

  void sha256(std::string_view data, unsigned char out[32]) {
    unsigned int n = 0;
    if (EVP_DigestInit_ex(md_ctx_.get(), md_.get(), nullptr) != 1 ||
        EVP_DigestUpdate(md_ctx_.get(), data.data(), data.size()) != 1 ||
        EVP_DigestFinal_ex(md_ctx_.get(), out, &n) != 1)
      throw std::runtime_error("SHA-256 failed");
  }
  // HMAC-SHA256(key, data) = SHA-256((key ^ opad) || SHA-256((key ^ ipad) || data)).
  void hmac(const unsigned char* data, std::size_t len, unsigned char out[32]) {
    EVP_MD_CTX* w = mac_ctx_.get();
    unsigned char in[32];
    unsigned int n = 0;
    if (!w || EVP_MD_CTX_copy_ex(w, inner_.get()) != 1 || EVP_DigestUpdate(w, data, len) != 1 ||
        EVP_DigestFinal_ex(w, in, &n) != 1 || EVP_MD_CTX_copy_ex(w, outer_.get()) != 1 ||
        EVP_DigestUpdate(w, in, sizeof in) != 1 || EVP_DigestFinal_ex(w, out, &n) != 1)
      throw std::runtime_error("HMAC failed");
  }
  bool has_key() const { return inner_ != nullptr; }

 private:
  static constexpr std::size_t kShaBlock = 64;  // SHA-256 block size
  using Ctx = security::MdCtxPtr;  // providers clear their state on free
  security::MdPtr md_;
  Ctx md_ctx_;
  Ctx inner_, outer_;  // after (key ^ ipad) and (key ^ opad); only with a key
  Ctx mac_ctx_;        // hmac()'s working copy
};

void to_hex(const unsigned char* in, std::size_t n, char* out);
std::string hex(const unsigned char* in, std::size_t n);
// Printable, bounded text: control characters and bytes that are not valid
// UTF-8 become '?' (so every record parses as JSON again), cut at kMaxText
// bytes on a UTF-8 character boundary.
std::string clean_text(std::string_view v);
bool write_all(int fd, const char* p, std::size_t n);
// "<word> <seq, 20 digits> <hash> <mac>\n", mac = HMAC(device key, "<word> <seq> <hash>"):
// the anchor, the continuation line and the exported mark.
std::string signed_text(Crypto& c, std::string_view word, std::uint64_t seq, std::string_view hash);
struct Signed {
  std::uint64_t seq = 0;
  std::string hash;
};
// Parses a signed_text line (with or without its newline). The MAC is checked
// when the crypto holds the key. nullopt when it is not such a line or forged.
std::optional<Signed> parse_signed(Crypto& c, std::string_view word, std::string_view line);
std::string anchor_text(Crypto& c, std::uint64_t seq, const std::string& hash);
// The leading "{\"seq\":N," of a record line.
bool parse_seq(std::string_view body, std::uint64_t& seq);

// The exported mark (<audit>/exported): records up to it left the station.
// Read under an exclusive flock by both the daemon and the CLI. A damaged or
// forged mark reads as 0: nothing counts as exported, nothing is dropped.
class ExportedMark {
 public:
  ExportedMark(const fs::path& dir) {
    fd_ = ::open((dir / "exported").c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~ExportedMark() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  ExportedMark(const ExportedMark&) = delete;
  ExportedMark& operator=(const ExportedMark&) = delete;
  std::uint64_t read(Crypto& c) const {
    char buf[256];
    const ssize_t n = fd_ < 0 ? -1 : ::pread(fd_, buf, sizeof buf, 0);
    if (n <= 0) return 0;
    auto v = parse_signed(c, "exported", std::string_view(buf, static_cast<std::size_t>(n)));
    return v ? v->seq : 0;
  }
  // Moves the mark when [first, last] joins the exported prefix (records
  // before log_first are gone, so they count as exported).
  void update(Crypto& c, std::uint64_t log_first, std::uint64_t first, std::uint64_t last) {
    const std::uint64_t cur = read(c);
    const std::uint64_t base = std::max(cur, log_first > 0 ? log_first - 1 : 0);
    if (fd_ < 0 || first > base + 1 || last <= cur) return;
    const std::string t = signed_text(c, "exported", last, kZeroHash);
    if (::pwrite(fd_, t.data(), t.size(), 0) != static_cast<ssize_t>(t.size()) ||
        ::ftruncate(fd_, static_cast<off_t>(t.size())) != 0 || ::fdatasync(fd_) != 0)
      log::error("audit", "cannot store the exported mark: ", std::strerror(errno));
  }

 private:
  int fd_ = -1;
};

}  // namespace cg::audit::detail
