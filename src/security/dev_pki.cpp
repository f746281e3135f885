// REQ: COM-2, COM-7 (development PKI only)
//
// Development PKI generator, see dev_pki.hpp. Everything is generated in memory
// first; files are then created with O_CREAT|O_EXCL (never overwriting, never
// following a symlink) and the exact final mode, so a key file is never readable
// by anyone but the owner, not even briefly.
#include "security/dev_pki.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <exception>
#include <memory>
#include <string_view>
#include <utility>
#include "security/ossl.hpp"

namespace cg::security {
namespace {

namespace fs = std::filesystem;

// ---- RAII for OpenSSL objects and file descriptors

using GenNamesPtr = OsslPtr<GENERAL_NAMES, GENERAL_NAMES_free>;
using GenNamePtr = OsslPtr<GENERAL_NAME, GENERAL_NAME_free>;
using OctetPtr = OsslPtr<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>;
using Ia5Ptr = OsslPtr<ASN1_IA5STRING, ASN1_IA5STRING_free>;

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }
  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool valid() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

// ---- error texts

// "step: <OpenSSL error queue>", draining the queue.
std::string ossl_error(std::string_view step) { return openssl_error(step); }

std::string sys_error(std::string_view step, const fs::path& p, int err) {
  std::string msg(step);
  msg += ' ';
  msg += p.string();
  msg += ": ";
  msg += std::strerror(err);
  return msg;
}

// ---- option checks

bool is_ip_literal(const std::string& s) {
  std::array<unsigned char, 16> buf{};
  return inet_pton(AF_INET, s.c_str(), buf.data()) == 1 || inet_pton(AF_INET6, s.c_str(), buf.data()) == 1;
}

// RFC 1123 host name: dot-separated labels of letters, digits and '-', no label
// empty, longer than 63 or starting/ending with '-'. No wildcards.
bool is_dns_name(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = s.find('.', start);
    const std::string_view label = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (const char c : label) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::string check_options(const DevPkiOptions& opt) {
  // 64 = ub-common-name (RFC 5280); the host is also the server certificate's CN.
  if (opt.csms_host.empty() || opt.csms_host.size() > 64 ||
      !(is_ip_literal(opt.csms_host) || is_dns_name(opt.csms_host))) {
    return "invalid csms_host (expected a host name or IP address of at most 64 characters)";
  }
  if (opt.validity_days < 1 || opt.validity_days > 36500) return "invalid validity_days (expected 1 to 36500)";
  if (opt.organization.empty() || opt.organization.size() > 64) {
    return "invalid organization (expected 1 to 64 characters)";
  }
  for (const char c : opt.organization) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return "invalid organization (control character)";
  }
  return {};
}

// ---- certificate building

PkeyPtr generate_p256(std::string& err) {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) err = ossl_error("generating ECDSA P-256 key");
  return key;
}

NamePtr make_name(const std::string& org, const std::string& cn, std::string& err) {
  NamePtr name(X509_NAME_new());
  const auto add = [&](int nid, const std::string& v) {
    return X509_NAME_add_entry_by_NID(name.get(), nid, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(v.data()),
                                      static_cast<int>(v.size()), -1, 0) == 1;
  };
  if (!name || !add(NID_organizationName, org) || !add(NID_commonName, cn)) {
    err = ossl_error("building subject name CN=" + cn);
    return nullptr;
  }
  return name;
}

// Positive 128-bit random serial (RFC 5280: at most 20 octets, non-zero).
bool set_random_serial(X509* cert, std::string& err) {
  std::array<unsigned char, 16> buf{};
  do {
    if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1) {
      err = ossl_error("generating random serial number");
      return false;
    }
    buf[0] &= 0x7f;  // keep the DER INTEGER positive within 16 octets
  } while (std::all_of(buf.begin(), buf.end(), [](unsigned char b) { return b == 0; }));
  const BnPtr bn(BN_bin2bn(buf.data(), static_cast<int>(buf.size()), nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    err = ossl_error("setting serial number");
    return false;
  }
  return true;
}

bool add_ext(X509* cert, X509V3_CTX* ctx, int nid, const char* value, std::string& err) {
  const ExtPtr ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    err = ossl_error(std::string("adding extension ") + OBJ_nid2sn(nid));
    return false;
  }
  return true;
}

// subjectAltName DNS:<host> (or IP:<host> for an address literal), IP:127.0.0.1,
// IP:::1. Built from GENERAL_NAME objects, not from a config string, so the host
// can never inject further names.
bool add_server_san(X509* cert, const std::string& host, std::string& err) {
  const GenNamesPtr names(sk_GENERAL_NAME_new_null());
  if (!names) {
    err = ossl_error("building subjectAltName");
    return false;
  }
  std::vector<OctetPtr> ips_seen;
  // Wraps an owned value into a GENERAL_NAME (value freed on failure).
  const auto make_gn = [](int type, auto owned) -> GenNamePtr {
    GenNamePtr gn(GENERAL_NAME_new());
    if (gn) GENERAL_NAME_set0_value(gn.get(), type, owned.release());
    return gn;
  };
  const auto push = [&](GenNamePtr gn) {
    if (!gn || sk_GENERAL_NAME_push(names.get(), gn.get()) <= 0) return false;  // gn frees itself
    static_cast<void>(gn.release());  // owned by names now
    return true;
  };
  const auto push_ip = [&](const std::string& text) {
    OctetPtr ip(a2i_IPADDRESS(text.c_str()));
    if (!ip) return false;
    for (const auto& seen : ips_seen) {
      if (ASN1_OCTET_STRING_cmp(seen.get(), ip.get()) == 0) return true;  // already listed
    }
    OctetPtr copy(ASN1_OCTET_STRING_dup(ip.get()));
    if (!copy || !push(make_gn(GEN_IPADD, std::move(ip)))) return false;
    ips_seen.push_back(std::move(copy));
    return true;
  };
  bool ok = true;
  if (is_ip_literal(host)) {
    ok = push_ip(host);
  } else {
    Ia5Ptr dns(ASN1_IA5STRING_new());
    ok = dns && ASN1_STRING_set(dns.get(), host.data(), static_cast<int>(host.size())) == 1 &&
         push(make_gn(GEN_DNS, std::move(dns)));
  }
  ok = ok && push_ip("127.0.0.1") && push_ip("::1");
  if (!ok || X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    err = ossl_error("adding subjectAltName");
    return false;
  }
  return true;
}

enum class Profile { RootCa, TlsServer, TlsClient };

struct CertSpec {
  Profile profile;
  std::string cn;
  std::string organization;
  int validity_days;
  std::string san_host;  // TlsServer only
};

// Issues a certificate for subject_key. issuer == nullptr: self-signed root
// (issuer_key must then be subject_key).
X509Ptr issue(const CertSpec& spec, EVP_PKEY* subject_key, X509* issuer, EVP_PKEY* issuer_key, std::string& err) {
  X509Ptr cert(X509_new());
  if (!cert) {
    err = ossl_error("allocating certificate " + spec.cn);
    return nullptr;
  }
  const NamePtr subject = make_name(spec.organization, spec.cn, err);
  if (!subject) return nullptr;
  X509* const c = cert.get();
  const X509_NAME* issuer_name = issuer ? X509_get_subject_name(issuer) : subject.get();
  // Backdate by five minutes so a station clock slightly behind still accepts it.
  if (X509_set_version(c, X509_VERSION_3) != 1 || X509_set_subject_name(c, subject.get()) != 1 ||
      X509_set_issuer_name(c, issuer_name) != 1 || X509_gmtime_adj(X509_getm_notBefore(c), -300) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(c), spec.validity_days, 0, nullptr) == nullptr ||
      X509_set_pubkey(c, subject_key) != 1) {
    err = ossl_error("filling in certificate " + spec.cn);
    return nullptr;
  }
  if (!set_random_serial(c, err)) return nullptr;

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer ? issuer : c, c, nullptr, nullptr, 0);
  if (X509V3_set_issuer_pkey(&ctx, issuer_key) != 1) {
    err = ossl_error("preparing extensions of " + spec.cn);
    return nullptr;
  }
  bool ok = false;
  if (spec.profile == Profile::RootCa) {
    ok = add_ext(c, &ctx, NID_basic_constraints, "critical,CA:TRUE", err) &&
         add_ext(c, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign", err);
  } else if (spec.profile == Profile::TlsClient) {
    ok = add_ext(c, &ctx, NID_basic_constraints, "critical,CA:FALSE", err) &&
         add_ext(c, &ctx, NID_key_usage, "critical,digitalSignature", err) &&
         add_ext(c, &ctx, NID_ext_key_usage, "clientAuth", err);
  } else {
    ok = add_ext(c, &ctx, NID_basic_constraints, "critical,CA:FALSE", err) &&
         add_ext(c, &ctx, NID_key_usage, "critical,digitalSignature", err) &&
         add_ext(c, &ctx, NID_ext_key_usage, "serverAuth", err) && add_server_san(c, spec.san_host, err);
  }
  // The subject key identifier must exist before the (self-signed) authority key
  // identifier refers to it.
  ok = ok && add_ext(c, &ctx, NID_subject_key_identifier, "hash", err) &&
       add_ext(c, &ctx, NID_authority_key_identifier, "keyid:always", err);
  if (!ok) return nullptr;

  if (X509_sign(c, issuer_key, EVP_sha256()) <= 0) {
    err = ossl_error("signing certificate " + spec.cn);
    return nullptr;
  }
  return cert;
}

// ---- PEM serialisation and files

BioPtr cert_pem(X509* cert, std::string& err) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    err = ossl_error("encoding certificate");
    return nullptr;
  }
  return bio;
}

// Unencrypted PKCS#8 ("BEGIN PRIVATE KEY") in a secure-memory BIO (cleared on free).
BioPtr key_pem(EVP_PKEY* key, std::string& err) {
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    err = ossl_error("encoding private key");
    return nullptr;
  }
  return bio;
}

constexpr std::string_view kReadme =
    "chargeguard DEVELOPMENT PKI - FOR DEVELOPMENT AND TESTING ONLY\n"
    "==============================================================\n"
    "\n"
    "Generated by `chargeguard pki dev-init`. Do NOT use any of these files in\n"
    "production or on a station reachable from an untrusted network: the private\n"
    "keys are stored unencrypted on disk, there is no revocation (CRL/OCSP) and\n"
    "no hardware key protection.\n"
    "\n"
    "All keys are ECDSA P-256, all signatures SHA-256 (OCPP 2.0.1 security\n"
    "profiles 2 and 3).\n"
    "\n"
    "  csms-root-ca.pem / .key          root CA that signs the CSMS server certificate;\n"
    "                                   install csms-root-ca.pem on the station as the\n"
    "                                   CSMSRootCertificate\n"
    "  csms-server.pem / .key           CSMS TLS server certificate (leaf only) and key,\n"
    "                                   for the development CSMS (tools/dev-csms)\n"
    "  manufacturer-root-ca.pem / .key  ManufacturerRootCertificate (firmware signing tests)\n"
    "  operator-root-ca.pem / .key      operator CA that signs station (client)\n"
    "                                   certificates for security profile 3\n"
    "\n"
    "*.key files are mode 0600; keep this directory private (mode 0700).\n"
    "The tool never overwrites existing files: delete the directory to start over.\n";

struct OutFile {
  const char* name;
  mode_t mode;
  BIO* content;  // nullptr: kReadme
};

class Writer {
 public:
  explicit Writer(fs::path dir) : dir_(std::move(dir)) {}
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Creates dir_ (and missing parents) with mode 0700 and opens it.
  std::string open_dir() {
    if (dir_.empty()) return "no output directory given";
    struct stat st {};
    if (::stat(dir_.c_str(), &st) != 0) {
      if (errno != ENOENT) return sys_error("cannot access output directory", dir_, errno);
      fs::path prefix;
      for (const auto& part : dir_) {
        prefix /= part;
        if (part.empty() || ::stat(prefix.c_str(), &st) == 0) continue;
        if (::mkdir(prefix.c_str(), 0700) != 0) return sys_error("cannot create directory", prefix, errno);
        created_dirs_.push_back(prefix);
        // umask may only have removed bits; make it exactly 0700.
        if (::chmod(prefix.c_str(), 0700) != 0) return sys_error("cannot set mode 0700 on", prefix, errno);
      }
    }
    dirfd_.reset(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dirfd_.valid()) return sys_error("cannot open output directory", dir_, errno);
    return {};
  }

  // Fails naming every file of the set that already exists (as anything, even a
  // dangling symlink).
  std::string refuse_existing(const std::vector<OutFile>& files) const {
    std::string existing;
    for (const auto& f : files) {
      struct stat st {};
      if (::fstatat(dirfd_.get(), f.name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        existing += existing.empty() ? "" : ", ";
        existing += (dir_ / f.name).string();
      } else if (errno != ENOENT) {
        return sys_error("cannot check", dir_ / f.name, errno);
      }
    }
    if (!existing.empty()) return "refusing to overwrite existing file(s): " + existing;
    return {};
  }

  std::string write(const OutFile& f) {
    const char* data = kReadme.data();
    std::size_t len = kReadme.size();
    if (f.content != nullptr) {
      char* p = nullptr;
      const long n = BIO_get_mem_data(f.content, &p);
      if (n <= 0 || p == nullptr) return "internal error: empty content for " + (dir_ / f.name).string();
      data = p;
      len = static_cast<std::size_t>(n);
    }
    const fs::path full = dir_ / f.name;
    // O_EXCL: never overwrite; O_NOFOLLOW: never write through a symlink. The
    // file is born with (at most) its final mode.
    UniqueFd fd(::openat(dirfd_.get(), f.name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, f.mode));
    if (!fd.valid()) {
      const int e = errno;
      if (e == EEXIST) return "refusing to overwrite existing file " + full.string();
      return sys_error("cannot create", full, e);
    }
    created_files_.push_back(f.name);
    if (::fchmod(fd.get(), f.mode) != 0) return sys_error("cannot set mode of", full, errno);
    while (len > 0) {
      const ssize_t n = ::write(fd.get(), data, len);
      if (n < 0) {
        if (errno == EINTR) continue;
        return sys_error("cannot write", full, errno);
      }
      data += n;
      len -= static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0) return sys_error("cannot sync", full, errno);
    if (::close(fd.release()) != 0) return sys_error("cannot close", full, errno);
    written_.push_back(full);
    return {};
  }

  std::string sync_dir() const {
    if (::fsync(dirfd_.get()) != 0) return sys_error("cannot sync directory", dir_, errno);
    return {};
  }

  // Removes what this run created (files, then directories if still empty).
  void rollback() noexcept {
    if (dirfd_.valid()) {
      for (const char* name : created_files_) ::unlinkat(dirfd_.get(), name, 0);
    }
    dirfd_.reset();
    for (auto it = created_dirs_.rbegin(); it != created_dirs_.rend(); ++it) ::rmdir(it->c_str());
    created_files_.clear();
    created_dirs_.clear();
    written_.clear();
  }

  std::vector<fs::path> take_written() { return std::move(written_); }

 private:
  fs::path dir_;
  UniqueFd dirfd_;
  std::vector<fs::path> created_dirs_;
  std::vector<const char*> created_files_;
  std::vector<fs::path> written_;
};

struct Issued {
  PkeyPtr key;
  X509Ptr cert;
};

Issued make_root(const std::string& cn, const DevPkiOptions& opt, std::string& err) {
  Issued r;
  r.key = generate_p256(err);
  if (!r.key) return {};
  r.cert = issue(CertSpec{Profile::RootCa, cn, opt.organization, opt.validity_days, {}}, r.key.get(), nullptr,
                 r.key.get(), err);
  if (!r.cert) return {};
  return r;
}

std::string run(Writer& w, const DevPkiOptions& opt) {
  if (std::string e = check_options(opt); !e.empty()) return e;

  // Everything in memory first, so a failure leaves no half-written PKI.
  std::string err;
  Issued csms_root = make_root("chargeguard development CSMS root CA", opt, err);
  if (!csms_root.cert) return err;
  Issued mfr_root = make_root("chargeguard development manufacturer root CA", opt, err);
  if (!mfr_root.cert) return err;
  Issued op_root = make_root("chargeguard development operator root CA", opt, err);
  if (!op_root.cert) return err;
  Issued server;
  server.key = generate_p256(err);
  if (!server.key) return err;
  server.cert = issue(CertSpec{Profile::TlsServer, opt.csms_host, opt.organization, opt.validity_days, opt.csms_host},
                      server.key.get(), csms_root.cert.get(), csms_root.key.get(), err);
  if (!server.cert) return err;

  struct Pem {
    BioPtr cert, key;
  };
  std::array<Pem, 4> pem;
  const std::array<const Issued*, 4> all{&csms_root, &server, &mfr_root, &op_root};
  for (std::size_t i = 0; i < all.size(); ++i) {
    pem[i].cert = cert_pem(all[i]->cert.get(), err);
    if (!pem[i].cert) return err;
    pem[i].key = key_pem(all[i]->key.get(), err);
    if (!pem[i].key) return err;
  }

  const std::vector<OutFile> files{
      {"csms-root-ca.pem", 0644, pem[0].cert.get()},         {"csms-root-ca.key", 0600, pem[0].key.get()},
      {"csms-server.pem", 0644, pem[1].cert.get()},          {"csms-server.key", 0600, pem[1].key.get()},
      {"manufacturer-root-ca.pem", 0644, pem[2].cert.get()}, {"manufacturer-root-ca.key", 0600, pem[2].key.get()},
      {"operator-root-ca.pem", 0644, pem[3].cert.get()},     {"operator-root-ca.key", 0600, pem[3].key.get()},
      {"README.txt", 0644, nullptr},
  };

  if (std::string e = w.open_dir(); !e.empty()) return e;
  if (std::string e = w.refuse_existing(files); !e.empty()) return e;
  for (const auto& f : files) {
    if (std::string e = w.write(f); !e.empty()) return e;
  }
  return w.sync_dir();
}

}  // namespace

DevPkiResult dev_pki_init(const std::filesystem::path& out_dir, const DevPkiOptions& opt) {
  DevPkiResult result;
  ERR_clear_error();  // report only our own OpenSSL errors
  try {
    Writer w(out_dir);
    try {
      result.error = run(w, opt);
    } catch (...) {
      w.rollback();
      throw;
    }
    if (result.error.empty()) {
      result.ok = true;
      result.written = w.take_written();
    } else {
      w.rollback();
    }
  } catch (const std::exception& e) {
    result.error = "internal error";  // fits the small-string buffer: cannot throw
    try {
      result.error += std::string(": ") + e.what();
    } catch (...) {
    }
  } catch (...) {
    result.error = "internal error";
  }
  ERR_clear_error();
  return result;
}

}  // namespace cg::security

namespace cg::security {

DevSignResult dev_pki_sign_csr(std::string_view csr_pem, const fs::path& ca_cert_file, const fs::path& ca_key_file,
                               int validity_days) {
  DevSignResult r;
  if (validity_days < 1 || validity_days > 36500) {
    r.error = "validity must be 1-36500 days";
    return r;
  }
  if (csr_pem.size() > 16 * 1024) {
    r.error = "certificate signing request larger than 16 KiB";
    return r;
  }
  BioPtr csr_bio(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())));
  ReqPtr req(
      csr_bio ? PEM_read_bio_X509_REQ(csr_bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!req) {
    r.error = ossl_error("reading the certificate signing request");
    return r;
  }
  EVP_PKEY* subject_key = X509_REQ_get0_pubkey(req.get());
  if (!subject_key || X509_REQ_verify(req.get(), subject_key) != 1) {
    r.error = ossl_error("the certificate signing request's signature does not verify");
    return r;
  }
  auto attr = [&](int nid) {
    const X509_NAME* n = X509_REQ_get_subject_name(req.get());
    const int i = X509_NAME_get_index_by_NID(n, nid, -1);
    if (i < 0) return std::string();
    const ASN1_STRING* d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(d)), static_cast<std::size_t>(ASN1_STRING_length(d)));
  };
  CertSpec spec{Profile::TlsClient, attr(NID_commonName), attr(NID_organizationName), validity_days, {}};
  if (spec.cn.empty() || spec.organization.empty()) {
    r.error = "the certificate signing request needs a CN and an O";
    return r;
  }
  BioPtr cb(BIO_new_file(ca_cert_file.c_str(), "r"));
  X509Ptr ca(cb ? PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!ca) {
    r.error = ossl_error("reading the CA certificate " + ca_cert_file.string());
    return r;
  }
  BioPtr kb(BIO_new_file(ca_key_file.c_str(), "r"));
  PkeyPtr ca_key(kb ? PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!ca_key) {
    r.error = ossl_error("reading the CA key " + ca_key_file.string());
    return r;
  }
  if (X509_check_private_key(ca.get(), ca_key.get()) != 1) {
    r.error = "the CA key does not belong to the CA certificate";
    ERR_clear_error();
    return r;
  }
  std::string err;
  X509Ptr cert = issue(spec, subject_key, ca.get(), ca_key.get(), err);
  if (!cert) {
    r.error = err;
    return r;
  }
  BioPtr out = cert_pem(cert.get(), err);
  if (!out) {
    r.error = err;
    return r;
  }
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(out.get(), &mem);
  r.certificate_pem.assign(mem->data, mem->length);
  r.ok = true;
  ERR_clear_error();
  return r;
}

}  // namespace cg::security
