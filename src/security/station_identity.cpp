#include "security/station_identity.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cctype>
#include <fstream>
#include <stdexcept>

#include "security/base64.hpp"
#include "security/secret_file.hpp"

namespace cg::security {
namespace fs = std::filesystem;

namespace {
// AA:BB:… as certificate viewers print fingerprints.
std::string colon_hex(const unsigned char* p, std::size_t n) {
  const std::string h = hex_encode(p, n);
  std::string s;
  for (std::size_t i = 0; i < h.size(); i += 2) {
    if (i) s += ':';
    s += static_cast<char>(std::toupper(static_cast<unsigned char>(h[i])));
    s += static_cast<char>(std::toupper(static_cast<unsigned char>(h[i + 1])));
  }
  return s;
}

CertChain read_chain(const fs::path& f, std::size_t max) {
  std::string err;
  auto chain = load_chain_file(f, max, err);
  if (!err.empty()) throw std::runtime_error(err);  // names the file
  return chain;
}
}  // namespace

Result<void> use_client_identity(SSL_CTX* ctx, const TlsClientIdentity& id) {
  if (!id.key || id.chain.empty()) return fail(Errc::Unavailable, "no station certificate or key");
  if (SSL_CTX_use_certificate(ctx, id.chain.front().get()) != 1) {
    ERR_clear_error();
    return fail(Errc::Rejected, "the station certificate cannot be used for TLS");
  }
  for (std::size_t i = 1; i < id.chain.size(); ++i) {
    if (is_self_signed(id.chain[i].get())) continue;  // the peer has its roots
    if (SSL_CTX_add1_chain_cert(ctx, id.chain[i].get()) != 1) {
      ERR_clear_error();
      return fail(Errc::Rejected, "a sub-CA certificate of the station chain cannot be used");
    }
  }
  if (SSL_CTX_use_PrivateKey(ctx, id.key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return fail(Errc::Rejected, "the station key does not match the station certificate");
  }
  return {};
}

CertificateSummary summarize(const X509* cert) {
  CertificateSummary s;
  s.common_name = subject_attribute(cert, NID_commonName);
  s.organization = subject_attribute(cert, NID_organizationName);
  if (char* line = X509_NAME_oneline(X509_get_issuer_name(cert), nullptr, 0)) {
    s.issuer = line;
    OPENSSL_free(line);
  }
  if (const ASN1_INTEGER* sn = X509_get0_serialNumber(cert)) {
    if (BIGNUM* bn = ASN1_INTEGER_to_BN(sn, nullptr)) {
      if (char* h = BN_bn2hex(bn)) {
        s.serial_hex = h;
        OPENSSL_free(h);
      }
      BN_free(bn);
    }
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert, EVP_sha256(), md, &n) == 1) s.sha256_fingerprint = colon_hex(md, n);
  s.not_before = std::chrono::time_point_cast<std::chrono::milliseconds>(not_before(cert));
  s.not_after = std::chrono::time_point_cast<std::chrono::milliseconds>(not_after(cert));
  return s;
}

CertChain load_roots(const fs::path& file) {
  return read_chain(file, 32);
}

StationIdentity::StationIdentity(KeyStore& store, fs::path state_dir)
    : store_(store), dir_(std::move(state_dir) / "identity") {}

fs::path StationIdentity::chain_file(std::string_view label) const { return dir_ / (std::string(label) + ".pem"); }

bool StationIdentity::has_key(std::string_view label) { return store_.find_key(label).has_value(); }

bool StationIdentity::has_certificate(std::string_view label) const {
  std::error_code ec;
  return fs::is_regular_file(chain_file(label), ec);
}

void StationIdentity::recover() {
  // promote() relabels the key first, then renames the file. Crashed in
  // between: "station.next" is gone, its file is still there, and the key now
  // called "station" is the one that file certifies.
  if (!has_key(kStationNextKeyLabel)) {  // a request without its key is of no use
    std::error_code ec;
    fs::remove(dir_ / (std::string(kStationNextKeyLabel) + ".csr"), ec);
  }
  if (!has_certificate(kStationNextKeyLabel) || has_key(kStationNextKeyLabel)) return;
  if (!has_key(kStationKeyLabel)) return;
  std::string err;
  auto next = load_chain_file(chain_file(kStationNextKeyLabel), kMaxChainCertificates, err);
  if (!err.empty() || next.empty()) return;
  if (public_key_matches(next.front().get(), store_.public_key_der(kStationKeyLabel))) {
    std::error_code ec;
    fs::rename(chain_file(kStationNextKeyLabel), chain_file(kStationKeyLabel), ec);
    if (ec) throw std::runtime_error("cannot complete the certificate promotion: " + ec.message());
    fsync_dir(dir_.string());
  } else {
    // A candidate whose key is gone cannot be used by anyone.
    std::error_code ec;
    fs::remove(chain_file(kStationNextKeyLabel), ec);
  }
}

std::shared_ptr<const TlsClientIdentity> StationIdentity::load(std::string_view label) {
  auto id = std::make_shared<TlsClientIdentity>();
  id->chain = read_chain(chain_file(label), kMaxChainCertificates);
  if (!public_key_matches(id->chain.front().get(), store_.public_key_der(label)))
    throw std::runtime_error(chain_file(label).string() + " does not certify the key '" + std::string(label) +
                             "' of the key store");
  id->key = store_.private_key(label);
  return id;
}

std::optional<CertificateSummary> StationIdentity::summary(std::string_view label) const {
  if (!has_certificate(label)) return std::nullopt;
  std::string err;
  auto chain = load_chain_file(chain_file(label), kMaxChainCertificates, err);
  if (!err.empty() || chain.empty()) return std::nullopt;
  return summarize(chain.front().get());
}

Result<void> StationIdentity::check(const CertChain& chain, std::string_view label, std::string_view serial,
                                   std::string_view organization, const std::vector<const X509*>& roots) {
  if (chain.empty()) return fail(Errc::Rejected, "empty certificate chain");
  if (chain.size() > kMaxChainCertificates)
    return fail(Errc::Rejected, "more than " + std::to_string(kMaxChainCertificates) + " certificates in the chain");
  const X509* leaf = chain.front().get();
  if (is_ca(leaf)) return fail(Errc::Rejected, "the leaf certificate is a CA certificate");
  const auto kp = store_.find_key(label);
  if (!kp) return fail(Errc::Rejected, "no key pair '" + std::string(label) + "' to certify (no renewal in progress)");
  if (!public_key_matches(leaf, store_.public_key_der(label)))
    return fail(Errc::Rejected, "the certificate is not for the key pair of the signing request");
  const auto cn = subject_attribute(leaf, NID_commonName);
  if (cn != serial) return fail(Errc::Rejected, "subject CN '" + cn + "' is not the serial number '" + std::string(serial) + "'");
  const auto o = subject_attribute(leaf, NID_organizationName);
  if (o != organization) return fail(Errc::Rejected, "subject O '" + o + "' is not the organization '" + std::string(organization) + "'");
  VerifyOptions opt;
  opt.purpose = VerifyOptions::Purpose::TlsClient;
  if (auto e = verify_chain(chain, roots, opt); !e.empty()) return fail(Errc::Rejected, e);
  return {};
}

void StationIdentity::store_chain(std::string_view label, const CertChain& chain) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  ::chmod(dir_.c_str(), 0700);
  if (auto e = write_file_durably(chain_file(label).string(), to_pem(chain)); !e)
    throw std::runtime_error("cannot store the station certificate: " + e.error().message);
  ::chmod(chain_file(label).c_str(), 0644);
}

namespace {
constexpr std::size_t kMaxCsrBytes = 16 * 1024;
}

void StationIdentity::begin_renewal(KeyType type) {
  discard_candidate();
  store_.generate_key(kStationNextKeyLabel, type);
}

void StationIdentity::store_csr(std::string_view pem) {
  if (pem.size() > kMaxCsrBytes) throw std::runtime_error("certificate signing request larger than 16 KiB");
  std::error_code ec;
  fs::create_directories(dir_, ec);
  ::chmod(dir_.c_str(), 0700);
  const fs::path f = dir_ / (std::string(kStationNextKeyLabel) + ".csr");
  if (auto e = write_file_durably(f.string(), pem); !e)
    throw std::runtime_error("cannot store the certificate signing request: " + e.error().message);
  ::chmod(f.c_str(), 0644);
}

std::optional<std::string> StationIdentity::load_csr() const {
  const fs::path f = dir_ / (std::string(kStationNextKeyLabel) + ".csr");
  std::ifstream in(f, std::ios::binary);
  if (!in) return std::nullopt;
  std::string pem(kMaxCsrBytes + 1, '\0');
  in.read(pem.data(), static_cast<std::streamsize>(pem.size()));
  pem.resize(static_cast<std::size_t>(in.gcount()));
  if (pem.size() > kMaxCsrBytes) return std::nullopt;
  // Only a PEM certificate request that parses.
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (!bio) return std::nullopt;
  X509_REQ* req = PEM_read_bio_X509_REQ(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!req) return std::nullopt;
  X509_REQ_free(req);
  return pem;
}

void StationIdentity::promote() {
  if (!has_certificate(kStationNextKeyLabel)) throw std::runtime_error("no renewed certificate to promote");
  store_.promote_key(kStationNextKeyLabel, kStationKeyLabel);
  std::error_code ec;
  fs::rename(chain_file(kStationNextKeyLabel), chain_file(kStationKeyLabel), ec);
  if (ec) throw std::runtime_error("cannot promote the renewed certificate: " + ec.message());
  fs::remove(dir_ / (std::string(kStationNextKeyLabel) + ".csr"), ec);
  fsync_dir(dir_.string());
}

void StationIdentity::discard_candidate() {
  std::error_code ec;
  fs::remove(chain_file(kStationNextKeyLabel), ec);
  fs::remove(dir_ / (std::string(kStationNextKeyLabel) + ".csr"), ec);
  store_.delete_key(kStationNextKeyLabel);
  if (fs::exists(dir_, ec)) fsync_dir(dir_.string());
}

}  // namespace cg::security
