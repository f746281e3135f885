// REQ: COM-2, COM-8, COM-10; OCPP A02/A03, M03/M04/M05, L01
//
// X.509 helpers, see certificates.hpp.
#include "security/certificates.hpp"

#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>

#include "security/base64.hpp"
#include "security/crypto_policy.hpp"

namespace cg::security {
namespace {


constexpr std::string_view kBegin = "-----BEGIN ";
constexpr std::string_view kDashes = "-----";

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Block name of a "-----BEGIN NAME-----" line, for error texts: printable
// ASCII only, at most 40 characters.
std::string printable_name(std::string_view name) {
  if (name.size() > 40) name = name.substr(0, 40);
  for (const char c : name)
    if (c < 0x20 || c > 0x7e) return "an unreadable block";
  return std::string(name);
}

std::string chain_position(int depth) {
  return depth == 0 ? "leaf" : "certificate " + std::to_string(depth);
}

std::chrono::system_clock::time_point from_time_t_clamped(std::int64_t t) {
  using namespace std::chrono;
  constexpr auto max_s = duration_cast<seconds>(system_clock::duration::max()).count();
  constexpr auto min_s = duration_cast<seconds>(system_clock::duration::min()).count();
  if (t >= max_s) return system_clock::time_point::max();
  if (t <= min_s) return system_clock::time_point::min();
  return system_clock::time_point(duration_cast<system_clock::duration>(seconds(t)));
}

// Seconds since the epoch of an ASN1_TIME; false when undecodable.
bool asn1_time_to_seconds(const ASN1_TIME* t, std::int64_t& out) {
  std::tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return false;
  out = static_cast<std::int64_t>(::timegm(&tm));
  return true;
}

const EVP_MD* digest_of(HashAlgorithm a) {
  switch (a) {
    case HashAlgorithm::SHA256:
      return EVP_sha256();
    case HashAlgorithm::SHA384:
      return EVP_sha384();
    case HashAlgorithm::SHA512:
      return EVP_sha512();
  }
  return nullptr;
}

bool digest_hex(const EVP_MD* md, const unsigned char* data, std::size_t len, std::string& out) {
  unsigned char buf[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!md || EVP_Digest(data, len, buf, &n, md, nullptr) != 1) return false;
  out = hex_encode(buf, n);
  return true;
}

// Serial number comparison form: lower case, no leading zeros ("0" for zero).
std::string normalize_serial(std::string_view s) {
  std::string sign;
  if (!s.empty() && s.front() == '-') {
    sign = "-";
    s.remove_prefix(1);
  }
  while (s.size() > 1 && s.front() == '0') s.remove_prefix(1);
  if (s.empty()) return "0";
  return sign + lower(s);
}

}  // namespace

X509Ptr share(const X509* cert) {
  if (!cert || X509_up_ref(const_cast<X509*>(cert)) != 1) return nullptr;
  return X509Ptr(const_cast<X509*>(cert));
}

// ---- PEM

CertChain parse_pem_chain(std::string_view pem, std::size_t max_certs, std::string& error) {
  error.clear();
  CertChain out;
  auto fail = [&](std::string e) {
    error = std::move(e);
    ERR_clear_error();
    return CertChain{};
  };
  if (pem.size() > kMaxPemBytes)
    return fail("PEM input of " + std::to_string(pem.size()) + " bytes (maximum " + std::to_string(kMaxPemBytes) + ")");
  if (std::all_of(pem.begin(), pem.end(), is_space)) return fail("empty PEM input (no certificate)");
  const BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return fail("out of memory");
  for (std::size_t block = 1;; ++block) {
    // Position at the next non-whitespace byte; stop at the end.
    char* rest = nullptr;
    const long left = BIO_get_mem_data(bio.get(), &rest);
    std::string_view rv(rest, left > 0 ? static_cast<std::size_t>(left) : 0);
    std::size_t ws = 0;
    while (ws < rv.size() && is_space(rv[ws])) ++ws;
    if (ws == rv.size()) break;
    rv.remove_prefix(ws);
    if (ws > 0) {
      std::string skip(ws, '\0');
      if (BIO_read(bio.get(), skip.data(), static_cast<int>(ws)) != static_cast<int>(ws)) return fail("PEM read error");
    }
    // The line must be exactly "-----BEGIN CERTIFICATE-----" (PEM_read_bio
    // would silently skip any other line, block or text).
    const std::string where =
        block == 1 ? "before the first certificate" : "after certificate " + std::to_string(block - 1);
    if (!rv.starts_with(kBegin)) return fail("unexpected text " + where + " (not a PEM block)");
    std::string_view line = rv.substr(0, rv.find('\n'));
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.size() < kBegin.size() + kDashes.size() || !line.ends_with(kDashes))
      return fail("malformed PEM begin line " + where);
    const std::string_view name = line.substr(kBegin.size(), line.size() - kBegin.size() - kDashes.size());
    if (name != "CERTIFICATE")
      return fail("PEM block " + std::to_string(block) + " is " + printable_name(name) + ", not CERTIFICATE");
    if (out.size() >= max_certs) return fail("more than " + std::to_string(max_certs) + " certificates");

    char* raw_name = nullptr;
    char* raw_header = nullptr;
    unsigned char* raw_data = nullptr;
    long len = 0;
    const int ok = PEM_read_bio(bio.get(), &raw_name, &raw_header, &raw_data, &len);
    const std::unique_ptr<char, OsslFree> n(raw_name), h(raw_header);
    const std::unique_ptr<unsigned char, OsslFree> d(raw_data);
    if (ok != 1 || !n || std::strcmp(n.get(), "CERTIFICATE") != 0)
      return fail("PEM block " + std::to_string(block) + " is not valid PEM (bad base64 or end line)");
    if (h && *h.get()) return fail("PEM block " + std::to_string(block) + " has headers (encrypted or annotated PEM)");
    const unsigned char* p = d.get();
    X509Ptr cert(len > 0 ? d2i_X509(nullptr, &p, len) : nullptr);
    if (!cert) return fail("PEM block " + std::to_string(block) + " is not a valid X.509 certificate");
    if (p != d.get() + len) return fail("PEM block " + std::to_string(block) + " has bytes after the certificate");
    out.push_back(std::move(cert));
  }
  if (out.empty()) return fail("empty PEM input (no certificate)");
  return out;
}

X509Ptr parse_pem_certificate(std::string_view pem, std::string& error) {
  CertChain c = parse_pem_chain(pem, 1, error);
  if (c.empty()) return nullptr;
  return std::move(c.front());
}

namespace {
// A regular file of at most kMaxPemBytes; "" or an error in `error`.
std::string read_small_file(const std::filesystem::path& path, std::string& error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    error = "cannot open " + path.string() + ": " + std::strerror(errno);
    return {};
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    error = path.string() + " is not a regular file";
    return {};
  }
  std::string data;
  data.resize(kMaxPemBytes + 1);
  std::size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::read(fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = "cannot read " + path.string() + ": " + std::strerror(errno);
      return {};
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got > kMaxPemBytes) {
    error = path.string() + " is larger than " + std::to_string(kMaxPemBytes) + " bytes";
    return {};
  }
  data.resize(got);
  return data;
}
}  // namespace

CertChain load_chain_file(const std::filesystem::path& path, std::size_t max_certs, std::string& error) {
  error.clear();
  const std::string data = read_small_file(path, error);
  if (!error.empty()) return {};
  CertChain c = parse_pem_chain(data, max_certs, error);
  if (!error.empty()) error = path.string() + ": " + error;
  return c;
}

X509Ptr load_pem_file(const std::filesystem::path& path, std::string& error) {
  CertChain c = load_chain_file(path, 1, error);
  if (c.empty()) return nullptr;
  return std::move(c.front());
}

std::string to_pem(const X509* cert) {
  const BioPtr bio(BIO_new(BIO_s_mem()));
  if (!cert || !bio || PEM_write_bio_X509(bio.get(), const_cast<X509*>(cert)) != 1) {
    ERR_clear_error();
    return {};
  }
  char* p = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &p);
  return n > 0 ? std::string(p, static_cast<std::size_t>(n)) : std::string();
}

std::string to_pem(const CertChain& chain) {
  std::string out;
  for (const auto& c : chain) out += to_pem(c.get());
  return out;
}

// ---- verification

VerifyResult verify_chain_detailed(const CertChain& chain, const std::vector<const X509*>& roots,
                                   const VerifyOptions& opt) {
  VerifyResult r;
  if (chain.empty() || std::any_of(chain.begin(), chain.end(), [](const X509Ptr& c) { return !c; })) {
    r.error = "empty certificate chain";
    return r;
  }
  if (roots.empty() || std::any_of(roots.begin(), roots.end(), [](const X509* c) { return !c; })) {
    r.error = "no trusted root";
    return r;
  }
  const StorePtr store(X509_STORE_new());
  const X509StackPtr untrusted(sk_X509_new_null());
  const StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !untrusted || !ctx) {
    r.error = "out of memory";
    return r;
  }
  for (const X509* root : roots) X509_STORE_add_cert(store.get(), const_cast<X509*>(root));  // duplicates are fine
  for (std::size_t i = 1; i < chain.size(); ++i) {
    if (!sk_X509_push(untrusted.get(), chain[i].get())) {
      r.error = "out of memory";
      return r;
    }
  }
  ERR_clear_error();
  if (X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), untrusted.get()) != 1) {
    r.error = "cannot initialize certificate verification";
    ERR_clear_error();
    return r;
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_clear_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
  if (opt.at) X509_VERIFY_PARAM_set_time(param, std::chrono::system_clock::to_time_t(*opt.at));
  using P = VerifyOptions::Purpose;
  if (opt.purpose == P::TlsClient) X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  if (opt.purpose == P::TlsServer) X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);

  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    const int depth = X509_STORE_CTX_get_error_depth(ctx.get());
    const X509* at = X509_STORE_CTX_get_current_cert(ctx.get());
    r.error = std::string(err == X509_V_OK ? "certificate verification failed" : X509_verify_cert_error_string(err)) +
              " (" + chain_position(depth) + (at ? " " + subject_text(at) : std::string()) + ")";
    ERR_clear_error();
    return r;
  }
  const STACK_OF(X509)* built = X509_STORE_CTX_get0_chain(ctx.get());
  for (int i = 0; built && i < sk_X509_num(built); ++i) r.chain.push_back(share(sk_X509_value(built, i)));

  if (opt.purpose == P::CodeSigning) {
    X509* leaf = chain[0].get();
    const std::uint32_t flags = X509_get_extension_flags(leaf);
    const std::string who = "leaf (" + subject_text(leaf) + ")";
    if ((flags & EXFLAG_XKUSAGE) && !(X509_get_extended_key_usage(leaf) & XKU_CODE_SIGN))
      r.error = who + ": extendedKeyUsage without codeSigning";
    else if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE))
      r.error = who + ": keyUsage without digitalSignature";
  }
  if (r.error.empty() && opt.check_policy) {
    PolicyResult pr = check_chain(built);
    r.warnings = std::move(pr.warnings);
    r.error = std::move(pr.error);
  }
  if (!r.ok()) r.chain.clear();
  return r;
}

std::string verify_chain(const CertChain& chain, const std::vector<const X509*>& roots, const VerifyOptions& opt) {
  return verify_chain_detailed(chain, roots, opt).error;
}

// ---- OCPP CertificateHashData

std::string_view to_string(HashAlgorithm a) noexcept {
  switch (a) {
    case HashAlgorithm::SHA256:
      return "SHA256";
    case HashAlgorithm::SHA384:
      return "SHA384";
    case HashAlgorithm::SHA512:
      return "SHA512";
  }
  return "SHA256";
}

std::optional<HashAlgorithm> parse_hash_algorithm(std::string_view s) {
  if (s == "SHA256") return HashAlgorithm::SHA256;
  if (s == "SHA384") return HashAlgorithm::SHA384;
  if (s == "SHA512") return HashAlgorithm::SHA512;
  return std::nullopt;
}

CertificateHashData hash_data(const X509* cert, const X509* issuer, HashAlgorithm alg) {
  if (!cert || !issuer) return {};
  const EVP_MD* md = digest_of(alg);
  // issuerNameHash: the DER of the certificate's issuer Name.
  unsigned char* name_der = nullptr;
  const int name_len = i2d_X509_NAME(X509_get_issuer_name(cert), &name_der);
  const std::unique_ptr<unsigned char, OsslFree> name_owner(name_der);
  // issuerKeyHash: the value of the issuer's subjectPublicKey BIT STRING.
  const ASN1_BIT_STRING* key = X509_get0_pubkey_bitstr(issuer);
  // serialNumber
  const BnPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  const std::unique_ptr<char, OsslFree> serial(bn ? BN_bn2hex(bn.get()) : nullptr);
  CertificateHashData out;
  if (name_len <= 0 || !key || !serial ||
      !digest_hex(md, name_der, static_cast<std::size_t>(name_len), out.issuer_name_hash) ||
      !digest_hex(md, ASN1_STRING_get0_data(key), static_cast<std::size_t>(ASN1_STRING_length(key)),
                  out.issuer_key_hash)) {
    ERR_clear_error();
    return {};
  }
  out.hash_algorithm = std::string(to_string(alg));
  out.serial_number = normalize_serial(serial.get());
  return out;
}

bool same_hash_data(const CertificateHashData& a, const CertificateHashData& b) {
  if (a.hash_algorithm.empty() || a.issuer_name_hash.empty() || a.issuer_key_hash.empty() || a.serial_number.empty())
    return false;
  return lower(a.hash_algorithm) == lower(b.hash_algorithm) && lower(a.issuer_name_hash) == lower(b.issuer_name_hash) &&
         lower(a.issuer_key_hash) == lower(b.issuer_key_hash) &&
         normalize_serial(a.serial_number) == normalize_serial(b.serial_number);
}

// ---- accessors

std::string subject_attribute(const X509* cert, int nid) {
  if (!cert) return {};
  const X509_NAME* name = X509_get_subject_name(cert);
  const int idx = X509_NAME_get_index_by_NID(name, nid, -1);
  if (idx < 0 || X509_NAME_get_index_by_NID(name, nid, idx) >= 0) return {};
  const ASN1_STRING* value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  const int n = value ? ASN1_STRING_to_UTF8(&utf8, value) : -1;
  const std::unique_ptr<unsigned char, OsslFree> owner(utf8);
  if (n < 0) {
    ERR_clear_error();
    return {};
  }
  std::string out(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(n));
  if (out.find('\0') != std::string::npos) return {};
  return out;
}

std::string subject_text(const X509* cert) {
  constexpr std::size_t kMax = 256;
  const BioPtr bio(BIO_new(BIO_s_mem()));
  if (!cert || !bio || X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0) {
    ERR_clear_error();
    return "(no subject)";
  }
  char* p = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &p);
  std::string out = n > 0 ? std::string(p, static_cast<std::size_t>(n)) : std::string();
  if (out.empty()) return "(empty subject)";
  if (out.size() > kMax) out = out.substr(0, kMax - 3) + "...";
  return out;
}

bool is_ca(const X509* cert) {
  if (!cert) return false;
  const std::uint32_t flags = X509_get_extension_flags(const_cast<X509*>(cert));
  return (flags & EXFLAG_INVALID) == 0 && (flags & EXFLAG_BCONS) != 0 && (flags & EXFLAG_CA) != 0;
}

bool is_self_signed(const X509* cert) {
  const bool yes = cert && X509_self_signed(const_cast<X509*>(cert), 1) == 1;
  ERR_clear_error();
  return yes;
}

std::chrono::system_clock::time_point not_before(const X509* cert) {
  std::int64_t s = 0;
  if (!cert || !asn1_time_to_seconds(X509_get0_notBefore(cert), s)) return std::chrono::system_clock::time_point::max();
  return from_time_t_clamped(s);
}

std::chrono::system_clock::time_point not_after(const X509* cert) {
  std::int64_t s = 0;
  if (!cert || !asn1_time_to_seconds(X509_get0_notAfter(cert), s)) return std::chrono::system_clock::time_point::min();
  return from_time_t_clamped(s);
}

bool public_key_matches(const X509* cert, std::span<const std::uint8_t> spki_der) {
  if (!cert || spki_der.empty() || spki_der.size() > static_cast<std::size_t>(LONG_MAX)) return false;
  const unsigned char* p = spki_der.data();
  const PkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki_der.size())));
  const EVP_PKEY* mine = X509_get0_pubkey(cert);
  const bool yes = key && p == spki_der.data() + spki_der.size() && mine && EVP_PKEY_eq(mine, key.get()) == 1;
  ERR_clear_error();
  return yes;
}

bool signed_by(const X509* cert, const X509* issuer) {
  if (!cert || !issuer) return false;
  EVP_PKEY* key = X509_get0_pubkey(issuer);
  const bool yes = key && X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(issuer)) == 0 &&
                   X509_verify(const_cast<X509*>(cert), key) == 1;
  ERR_clear_error();
  return yes;
}

}  // namespace cg::security
