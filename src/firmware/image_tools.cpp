// REQ: FW-1 — firmware pack and sign, see image_tools.hpp.
#include "firmware/image_tools.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include "firmware/verifier.hpp"
#include "security/base64.hpp"
#include "security/ossl.hpp"

namespace cg::firmware {
namespace {

namespace fs = std::filesystem;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Error io_error(const std::string& what, const fs::path& p) {
  return fail(Errc::Storage, what + " " + p.string() + ": " + std::strerror(errno));
}

// Opens a regular file for reading (no symlink at the last component).
Result<int> open_regular(const fs::path& p, std::uint64_t& size) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return io_error("cannot open", p);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail(Errc::InvalidArgument, p.string() + " is not a regular file");
  }
  size = static_cast<std::uint64_t>(st.st_size);
  return fd;
}

// Calls fn(chunk) for each chunk of fd from its current offset; the byte count.
template <class Fn>
Result<std::uint64_t> each_chunk(int fd, const fs::path& p, Fn&& fn) {
  std::vector<std::uint8_t> buf(kChunkBytes);
  std::uint64_t total = 0;
  while (true) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot read", p);
    }
    if (n == 0) return total;
    total += static_cast<std::uint64_t>(n);
    if (auto r = fn(std::span<const std::uint8_t>(buf.data(), static_cast<std::size_t>(n))); !r) return r.error();
  }
}

Result<void> write_all(int fd, const fs::path& p, std::span<const std::uint8_t> b) {
  while (!b.empty()) {
    const ssize_t n = ::write(fd, b.data(), b.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot write", p);
    }
    b = b.subspan(static_cast<std::size_t>(n));
  }
  return {};
}

Result<std::array<std::uint8_t, 32>> sha256_of(int fd, const fs::path& p, std::uint64_t& size) {
  const security::MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) return fail(Errc::Internal, "SHA-256 unavailable");
  auto n = each_chunk(fd, p, [&](std::span<const std::uint8_t> c) -> Result<void> {
    if (EVP_DigestUpdate(ctx.get(), c.data(), c.size()) != 1) return fail(Errc::Internal, "SHA-256 failed");
    return {};
  });
  if (!n) return n.error();
  size = *n;
  std::array<std::uint8_t, 32> out{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1) return fail(Errc::Internal, "SHA-256 failed");
  return out;
}

}  // namespace

Result<Manifest> pack_image(const fs::path& payload, const Manifest& fields, const fs::path& out) {
  std::uint64_t size = 0;
  auto fd_r = open_regular(payload, size);
  if (!fd_r) return fd_r.error();
  const Fd in(*fd_r);
  if (size == 0) return fail(Errc::InvalidArgument, payload.string() + " is empty");
  if (size > kMaxPayloadBytes) return fail(Errc::InvalidArgument, payload.string() + " is larger than 1 TiB");

  Manifest m = fields;
  std::uint64_t hashed = 0;
  auto sha = sha256_of(in.get(), payload, hashed);
  if (!sha) return sha.error();
  m.payload_sha256 = *sha;
  m.payload_size = hashed;
  auto text = format_manifest(m);
  if (!text) return text.error();

  // Second pass: copy into a temporary file next to `out`, hashing again so a
  // payload changed in between is noticed.
  if (::lseek(in.get(), 0, SEEK_SET) != 0) return io_error("cannot rewind", payload);
  const fs::path tmp = out.string() + ".partial";
  ::unlink(tmp.c_str());
  Fd o(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (o.get() < 0) return io_error("cannot create", tmp);
  const auto cleanup = [&tmp](Error e) -> Result<Manifest> {
    ::unlink(tmp.c_str());
    return e;
  };
  const auto* mt = reinterpret_cast<const std::uint8_t*>(text->data());
  if (auto r = write_all(o.get(), tmp, {mt, text->size()}); !r) return cleanup(r.error());
  const security::MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) return cleanup(fail(Errc::Internal, "SHA-256"));
  auto copied = each_chunk(in.get(), payload, [&](std::span<const std::uint8_t> c) -> Result<void> {
    if (EVP_DigestUpdate(ctx.get(), c.data(), c.size()) != 1) return fail(Errc::Internal, "SHA-256 failed");
    return write_all(o.get(), tmp, c);
  });
  if (!copied) return cleanup(copied.error());
  std::array<std::uint8_t, 32> again{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), again.data(), &len);
  if (*copied != m.payload_size || again != m.payload_sha256) {
    return cleanup(fail(Errc::Conflict, payload.string() + " changed while it was packed"));
  }
  if (::fsync(o.get()) != 0) return cleanup(io_error("cannot sync", tmp));
  if (::close(o.release()) != 0) return cleanup(io_error("cannot close", tmp));
  if (::rename(tmp.c_str(), out.c_str()) != 0) return cleanup(io_error("cannot rename to", out));
  return m;
}

Result<std::string> sign_image(const fs::path& image, EVP_PKEY* key, const X509* cert) {
  if (key == nullptr) return fail(Errc::InvalidArgument, "no signing key");
  if (cert != nullptr && EVP_PKEY_eq(X509_get0_pubkey(cert), key) != 1) {
    ERR_clear_error();
    return fail(Errc::InvalidArgument, "the key does not belong to the signing certificate");
  }
  auto digest = digest_for_key(key);
  if (!digest) return digest.error();
  // EVP_MD objects, not names: keys of the PKCS#11 engine take the legacy path.
  const EVP_MD* md = *digest == "SHA-384" ? EVP_sha384() : *digest == "SHA-512" ? EVP_sha512() : EVP_sha256();
  std::uint64_t size = 0;
  auto fd_r = open_regular(image, size);
  if (!fd_r) return fd_r.error();
  const Fd in(*fd_r);
  const security::MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key) != 1) {
    return fail(Errc::Internal, security::openssl_error("cannot start signing"));
  }
  auto n = each_chunk(in.get(), image, [&](std::span<const std::uint8_t> c) -> Result<void> {
    if (EVP_DigestSignUpdate(ctx.get(), c.data(), c.size()) != 1) {
      return fail(Errc::Internal, security::openssl_error("signing failed"));
    }
    return {};
  });
  if (!n) return n.error();
  std::size_t len = 0;
  if (EVP_DigestSignFinal(ctx.get(), nullptr, &len) != 1) return fail(Errc::Internal, security::openssl_error("signing failed"));
  std::string sig(len, '\0');
  if (EVP_DigestSignFinal(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len) != 1) {
    return fail(Errc::Internal, security::openssl_error("signing failed"));
  }
  sig.resize(len);
  return security::base64_encode(sig);
}

}  // namespace cg::firmware
