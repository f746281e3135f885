// REQ: FW-1, FW-3, FW-4, FW-7, COM-7, COM-8 — the firmware verifier, see verifier.hpp.
#include "firmware/verifier.hpp"

#include "core/span_worker.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

#include "security/base64.hpp"
#include "security/crypto_policy.hpp"
#include "security/ossl.hpp"

namespace cg::firmware {
namespace {

Error cert_error(std::string message) {
  return Error{Errc::Rejected, "signing certificate: " + std::move(message), std::string(kReasonInvalidCertificate)};
}
Error sig_error(std::string message) {
  return Error{Errc::Rejected, std::move(message), std::string(kReasonInvalidSignature)};
}
Error image_error(std::string message) {
  return Error{Errc::Rejected, std::move(message), std::string(kReasonInvalidImage)};
}

std::string openssl_name(std::string_view digest) {
  if (digest == "SHA-384") return "SHA384";
  if (digest == "SHA-512") return "SHA512";
  return "SHA256";
}

std::string key_description(const EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "EC")) {
    std::array<char, 64> group{};
    if (EVP_PKEY_get_group_name(key, group.data(), group.size(), nullptr) == 1) {
      const int nid = OBJ_txt2nid(group.data());
      if (nid == NID_X9_62_prime256v1) return "P-256";
      if (nid == NID_secp384r1) return "P-384";
      if (nid == NID_secp521r1) return "P-521";
      return group.data();
    }
    return "EC";
  }
  if (EVP_PKEY_is_a(key, "RSA")) return "RSA-" + std::to_string(EVP_PKEY_get_bits(key));
  return EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "unknown";
}

// SHA-256 of the payload on a second thread (core::SpanWorker). post() hands
// over the next bytes (after the previous ones are done); wait() returns once
// all posted bytes are hashed.
class PayloadHasher {
 public:
  PayloadHasher() : ctx_(EVP_MD_CTX_new()), worker_([this](std::span<const std::uint8_t> b) { hash(b); }) {
    if (ctx_ && EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) ctx_.reset();
  }
  bool ok() const { return ctx_ != nullptr && !failed_; }
  void post(std::span<const std::uint8_t> bytes) { worker_.submit(bytes); }
  void wait() { worker_.wait(); }

  std::array<std::uint8_t, 32> final() {
    wait();
    std::array<std::uint8_t, 32> out{};
    unsigned int n = 0;
    if (!ctx_ || EVP_DigestFinal_ex(ctx_.get(), out.data(), &n) != 1 || n != out.size()) failed_ = true;
    return out;
  }

 private:
  void hash(std::span<const std::uint8_t> bytes) {
    if (ctx_ && !bytes.empty() && EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size()) != 1) failed_ = true;
  }

  security::MdCtxPtr ctx_;
  bool failed_ = false;
  core::SpanWorker worker_;  // last: stopped (joined) before the context goes
};

}  // namespace

Result<std::string> digest_for_key(const EVP_PKEY* key) {
  if (key == nullptr) return sig_error("no public key");
  const security::PolicyResult policy = security::check_public_key(key);
  if (!policy.ok()) return fail(Errc::Rejected, policy.error);
  if (EVP_PKEY_is_a(key, "EC")) {
    const std::string curve = key_description(key);
    if (curve == "P-256") return std::string("SHA-256");
    if (curve == "P-384") return std::string("SHA-384");
    if (curve == "P-521") return std::string("SHA-512");
    return fail(Errc::Rejected, "EC curve " + curve + " not allowed for firmware signatures");
  }
  if (EVP_PKEY_is_a(key, "RSA")) return std::string("SHA-256");
  if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448")) {
    return fail(Errc::Rejected, key_description(key) +
                                    " keys cannot sign firmware here (their signature needs the whole image in "
                                    "memory); use ECDSA P-256/P-384 or RSA");
  }
  return fail(Errc::Rejected, key_description(key) + " keys cannot sign firmware (ECDSA P-256/P-384/P-521 or RSA ≥ 2048)");
}

Result<SigningCertificate> check_signing_certificate(std::string_view pem, const std::vector<const X509*>& roots,
                                                     std::optional<std::chrono::system_clock::time_point> at) {
  if (pem.size() > kMaxSigningCertificatePem) {
    return cert_error(std::to_string(pem.size()) + " characters (at most " +
                      std::to_string(kMaxSigningCertificatePem) + ")");
  }
  std::string err;
  security::CertChain chain = security::parse_pem_chain(pem, 3, err);
  if (chain.empty()) return cert_error(err.empty() ? "no certificate" : err);
  if (roots.empty()) {
    return cert_error(
        "no ManufacturerRootCertificate is installed to check it against (pki install-root --type "
        "ManufacturerRootCertificate)");
  }
  security::VerifyOptions opt;
  opt.purpose = security::VerifyOptions::Purpose::CodeSigning;
  opt.at = at;
  security::VerifyResult vr = security::verify_chain_detailed(chain, roots, opt);
  if (!vr.ok()) {
    if (vr.error.find("unable to get local issuer certificate") != std::string::npos ||
        vr.error.find("unable to get issuer certificate") != std::string::npos) {
      return cert_error("it does not chain to a pinned ManufacturerRootCertificate (" + vr.error + ")");
    }
    return cert_error(vr.error);
  }
  const X509* leaf = chain.front().get();
  const std::string who = "leaf (" + security::subject_text(leaf) + ")";
  if (X509_check_ca(const_cast<X509*>(leaf)) != 0) return cert_error(who + ": a CA certificate cannot sign firmware");
  if (!(X509_get_extension_flags(const_cast<X509*>(leaf)) & EXFLAG_XKUSAGE)) {
    return cert_error(who + ": no extendedKeyUsage (codeSigning is required)");
  }
  auto digest = digest_for_key(X509_get0_pubkey(leaf));
  if (!digest) return cert_error(who + ": " + digest.error().message);
  SigningCertificate out;
  out.chain = std::move(vr.chain);
  out.subject = security::subject_text(leaf);
  out.digest = std::move(*digest);
  out.warnings = std::move(vr.warnings);
  return out;
}

// ---- ImageVerifier

struct ImageVerifier::Impl {
  security::PkeyPtr key;
  std::string digest;
  std::string signer;
  std::string key_text;
  std::vector<std::uint8_t> signature;
  std::uint64_t max_bytes = 0;
  std::uint64_t seen = 0;
  security::MdCtxPtr whole;
  std::string head;
  bool head_done = false;
  std::optional<ParsedManifest> manifest;
  std::optional<Error> manifest_error;
  PayloadHasher payload;
  bool failed = false;
  bool finished = false;
  // Hashing::Background: the whole-file digest on a third thread, the caller
  // only hands chunks over (a download receives the next chunk meanwhile).
  bool offload_whole = false;
  bool whole_failed = false;
  core::SpanWorker whole_worker{[this](std::span<const std::uint8_t> b) {
    if (EVP_DigestUpdate(whole.get(), b.data(), b.size()) != 1) whole_failed = true;
  }};
};

ImageVerifier::ImageVerifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ImageVerifier::ImageVerifier(ImageVerifier&&) noexcept = default;
ImageVerifier& ImageVerifier::operator=(ImageVerifier&&) noexcept = default;
ImageVerifier::~ImageVerifier() = default;

Result<ImageVerifier> ImageVerifier::create(const SigningCertificate& signer, std::string_view signature_b64,
                                            std::uint64_t max_image_bytes, Hashing hashing) {
  if (signer.chain.empty()) return cert_error("none given");
  if (signature_b64.empty()) return sig_error("the signature is empty");
  if (signature_b64.size() > kMaxSignatureBase64) {
    return sig_error("the signature has " + std::to_string(signature_b64.size()) + " characters (at most " +
                     std::to_string(kMaxSignatureBase64) + ")");
  }
  auto decoded = security::base64_decode(signature_b64);
  if (!decoded || decoded->empty()) return sig_error("the signature is not base64 (RFC 4648, no line breaks)");
  auto impl = std::make_unique<Impl>();
  EVP_PKEY* pub = X509_get0_pubkey(signer.chain.front().get());
  if (pub == nullptr || EVP_PKEY_up_ref(pub) != 1) return fail(Errc::Internal, "cannot read the signing key");
  impl->key.reset(pub);
  if (decoded->size() > static_cast<std::size_t>(EVP_PKEY_get_size(pub))) {
    return sig_error("the signature has " + std::to_string(decoded->size()) + " bytes, more than a " +
                     key_description(pub) + " signature can have");
  }
  impl->signature.assign(decoded->begin(), decoded->end());
  impl->digest = signer.digest;
  impl->signer = signer.subject;
  impl->key_text = key_description(pub);
  impl->max_bytes = max_image_bytes;
  impl->offload_whole = hashing == Hashing::Background;
  impl->whole.reset(EVP_MD_CTX_new());
  const security::MdPtr md(EVP_MD_fetch(nullptr, openssl_name(signer.digest).c_str(), nullptr));
  if (!impl->whole || !md || EVP_DigestInit_ex(impl->whole.get(), md.get(), nullptr) != 1 || !impl->payload.ok()) {
    return fail(Errc::Internal, security::openssl_error("cannot start the image digest"));
  }
  impl->head.reserve(kMaxManifestBytes);
  return ImageVerifier(std::move(impl));
}

Result<void> ImageVerifier::update(std::span<const std::uint8_t> bytes) {
  Impl& s = *impl_;
  if (s.finished || s.failed) return fail(Errc::Conflict, "image verification already ended");
  if (bytes.empty()) return {};
  if (bytes.size() > s.max_bytes - std::min(s.seen, s.max_bytes)) {
    s.failed = true;
    return Error{Errc::Rejected,
                 "the image is larger than the allowed " + std::to_string(s.max_bytes) + " bytes",
                 std::string(kReasonTooLarge)};
  }
  const std::uint64_t start = s.seen;
  s.seen += bytes.size();
  if (!s.head_done) {
    const std::size_t take = std::min(bytes.size(), kMaxManifestBytes - s.head.size());
    s.head.append(reinterpret_cast<const char*>(bytes.data()), take);
    if (auto parsed = parse_manifest(s.head)) {
      s.head_done = true;
      if (parsed->ok()) {
        s.manifest = std::move(parsed->value());
      } else {
        s.manifest_error = parsed->error();
      }
      s.head.clear();
      s.head.shrink_to_fit();
    }
    if (s.manifest) {
      const std::uint64_t off = s.manifest->length > start ? s.manifest->length - start : 0;
      if (off < bytes.size()) s.payload.post(bytes.subspan(static_cast<std::size_t>(off)));
    }
  } else if (s.manifest) {
    s.payload.post(bytes);
  }
  if (s.offload_whole) {
    s.whole_worker.submit(bytes);
  } else if (EVP_DigestUpdate(s.whole.get(), bytes.data(), bytes.size()) != 1) {
    s.whole_failed = true;
  }
  if (s.whole_failed) {
    s.failed = true;
    return fail(Errc::Internal, "image digest failed");
  }
  return {};
}

Result<ImageInfo> ImageVerifier::finish() {
  Impl& s = *impl_;
  if (s.finished || s.failed) return fail(Errc::Conflict, "image verification already ended");
  s.finished = true;
  const std::array<std::uint8_t, 32> payload_hash = s.payload.final();
  s.whole_worker.wait();
  if (s.whole_failed) return fail(Errc::Internal, "image digest failed");

  std::array<unsigned char, EVP_MAX_MD_SIZE> dg{};
  unsigned int dl = 0;
  if (EVP_DigestFinal_ex(s.whole.get(), dg.data(), &dl) != 1) {
    return fail(Errc::Internal, security::openssl_error("image digest failed"));
  }
  const security::MdPtr md(EVP_MD_fetch(nullptr, openssl_name(s.digest).c_str(), nullptr));
  const auto verify_with = [&](int padding) {
    using CtxPtr = security::OsslPtr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
    const CtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, s.key.get(), nullptr));
    bool ok = ctx && md && EVP_PKEY_verify_init(ctx.get()) == 1 &&
              EVP_PKEY_CTX_set_signature_md(ctx.get(), md.get()) == 1;
    if (ok && padding != 0) ok = EVP_PKEY_CTX_set_rsa_padding(ctx.get(), padding) == 1;
    if (ok && padding == RSA_PKCS1_PSS_PADDING) ok = EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(), RSA_PSS_SALTLEN_AUTO) == 1;
    ok = ok && EVP_PKEY_verify(ctx.get(), s.signature.data(), s.signature.size(), dg.data(), dl) == 1;
    ERR_clear_error();
    return ok;
  };
  const bool rsa = EVP_PKEY_is_a(s.key.get(), "RSA");
  const bool good = rsa ? (verify_with(RSA_PKCS1_PADDING) || verify_with(RSA_PKCS1_PSS_PADDING)) : verify_with(0);
  if (!good) {
    std::string cmd = s.digest;
    cmd.erase(std::remove(cmd.begin(), cmd.end(), '-'), cmd.end());
    std::transform(cmd.begin(), cmd.end(), cmd.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return sig_error("wrong signature: it does not match this image and the signing certificate's " + s.key_text +
                     " key (" + std::to_string(s.seen) + " bytes checked; the signature must be over the whole file "
                     "with " + s.digest + ", as `openssl dgst -" + cmd + " -sign KEY` makes it)");
  }
  if (s.manifest_error) return image_error("signed, but " + s.manifest_error->message);
  if (!s.manifest) return image_error("signed, but the file ends inside the firmware manifest");
  const ParsedManifest& m = *s.manifest;
  const std::uint64_t payload_bytes = s.seen - m.length;
  if (payload_bytes != m.manifest.payload_size) {
    return image_error("signed, but the image holds " + std::to_string(payload_bytes) +
                       " payload bytes and its manifest says " + std::to_string(m.manifest.payload_size));
  }
  if (!s.payload.ok()) return fail(Errc::Internal, "payload digest failed");
  if (CRYPTO_memcmp(payload_hash.data(), m.manifest.payload_sha256.data(), payload_hash.size()) != 0) {
    return image_error("signed, but the payload's SHA-256 differs from the manifest's payload-sha256");
  }
  ImageInfo info;
  info.manifest = m.manifest;
  info.manifest_length = m.length;
  info.image_size = s.seen;
  info.signer = s.signer;
  info.digest = s.digest;
  info.image_digest_hex = security::hex_encode(dg.data(), dl);
  return info;
}

void ImageVerifier::cancel() noexcept {
  if (!impl_) return;
  impl_->payload.wait();
  impl_->whole_worker.wait();
  impl_->failed = true;
}

std::uint64_t ImageVerifier::bytes_seen() const noexcept { return impl_->seen; }
const std::optional<ParsedManifest>& ImageVerifier::unverified_manifest() const noexcept { return impl_->manifest; }

// ---- files

Result<ImageInfo> verify_fd(int fd, ImageVerifier& v, const ChunkSink& sink) {
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::array<std::vector<std::uint8_t>, 2> bufs{std::vector<std::uint8_t>(kChunkBytes),
                                                std::vector<std::uint8_t>(kChunkBytes)};
  for (std::size_t turn = 0;; turn ^= 1) {
    std::vector<std::uint8_t>& buf = bufs[turn];
    std::size_t filled = 0;
    while (filled < buf.size()) {
      const ssize_t n = ::read(fd, buf.data() + filled, buf.size() - filled);
      if (n < 0) {
        if (errno == EINTR) continue;
        v.cancel();
        return Error{Errc::Storage, std::string("cannot read the image: ") + std::strerror(errno),
                     std::string(kReasonReadFailed)};
      }
      if (n == 0) break;
      filled += static_cast<std::size_t>(n);
    }
    if (filled == 0) break;
    const std::span<const std::uint8_t> chunk(buf.data(), filled);
    if (auto r = v.update(chunk); !r) {
      v.cancel();
      return r.error();
    }
    if (sink) {
      if (auto r = sink(chunk); !r) {
        v.cancel();
        return r.error();
      }
    }
    if (filled < buf.size()) break;
  }
  return v.finish();
}

Result<ImageInfo> verify_file(const std::filesystem::path& image, const SigningCertificate& signer,
                              std::string_view signature_b64, std::uint64_t max_image_bytes) {
  const int fd = ::open(image.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return Error{Errc::NotFound, "cannot open " + image.string() + ": " + std::strerror(errno),
                 std::string(kReasonReadFailed)};
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return Error{Errc::InvalidArgument, image.string() + " is not a regular file", std::string(kReasonReadFailed)};
  }
  if (static_cast<std::uint64_t>(st.st_size) > max_image_bytes) {
    return Error{Errc::Rejected,
                 image.string() + " has " + std::to_string(st.st_size) + " bytes, more than the allowed " +
                     std::to_string(max_image_bytes),
                 std::string(kReasonTooLarge)};
  }
  auto v = ImageVerifier::create(signer, signature_b64, max_image_bytes);
  if (!v) return v.error();
  return verify_fd(fd, *v);
}

}  // namespace cg::firmware
