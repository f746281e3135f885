// REQ: COM-7, COM-6, COM-2, COM-8; OCPP M03/M04/M05
//
// The station's certificate store, see cert_store.hpp.
//
// Crash safety, operation by operation (the constructor / reload() completes
// what a crash interrupted):
//   plain add              one file (write_file_durably)
//   successor CSMS root    state {pending new, fallback old…} first, then the
//                          new file; reload: pending file missing -> rollback
//   confirm                fallback files deleted first, then the state;
//                          reload: fallback files missing -> dropped, none
//                          left -> the change is complete
//   delete                 files first, then the state (same reload rules)
//   local replace          state {replace type keep} first, then the new file,
//                          the deletions, the state; reload: keep file present
//                          -> the others of the type are deleted, else dropped
//   seed                   state {seeding type}, files, state {seeded type};
//                          the next seed() completes an interrupted one
// The bundle is derived data: rewritten after every change and at reload.
#include "security/cert_store.hpp"
#include "security/cert_store_internal.hpp"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <sstream>
#include <stdexcept>

#include "security/base64.hpp"
#include "security/crypto_policy.hpp"
#include "security/secret_file.hpp"

namespace cg::security {
namespace fs = std::filesystem;
using namespace cert_store_detail;

namespace cert_store_detail {

std::string fingerprint_of(const X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!cert || X509_digest(cert, EVP_sha256(), md, &n) != 1) {
    ERR_clear_error();
    return {};
  }
  return hex_encode(md, n);
}

bool is_fingerprint(std::string_view s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A directory entry's name for a problem text: printable ASCII, at most 80 characters.
std::string printable(std::string_view name) {
  std::string out;
  for (const char c : name.substr(0, 80)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (name.size() > 80) out += "...";
  return out;
}

std::string format_utc(Clock::time_point t) {
  const std::time_t tt = Clock::to_time_t(t);
  std::tm tm{};
  if (!::gmtime_r(&tt, &tm)) return "?";
  char buf[40];
  if (std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) return "?";
  return buf;
}

bool self_signed_required(CertificateType t) {
  return t == CertificateType::CSMSRootCertificate || t == CertificateType::ManufacturerRootCertificate;
}

// CA, keyCertSign, validity, crypto policy and (optionally) self-signed.
// "" or the reason; policy warnings are appended to `warnings`.
std::string check_root(const X509* cert, Clock::time_point now, bool require_self_signed,
                       std::vector<std::string>& warnings) {
  if (!is_ca(cert)) return "not a CA certificate (basicConstraints CA:TRUE is missing)";
  const std::uint32_t flags = X509_get_extension_flags(const_cast<X509*>(cert));
  if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(const_cast<X509*>(cert)) & KU_KEY_CERT_SIGN))
    return "keyUsage does not allow certificate signing (keyCertSign)";
  if (const auto nb = not_before(cert); nb > now)
    return "the certificate is not yet valid (notBefore " + format_utc(nb) + ")";
  if (const auto na = not_after(cert); na < now) return "the certificate has expired (notAfter " + format_utc(na) + ")";
  PolicyResult pr = check_certificate(cert);
  if (!pr.ok()) return "crypto policy: " + pr.error;
  if (require_self_signed && !is_self_signed(cert)) return "not a self-signed root certificate";
  for (auto& w : pr.warnings) warnings.push_back(std::move(w));
  return {};
}

bool same_name_and_key(const X509* a, const X509* b) {
  if (!a || !b) return false;
  const EVP_PKEY* ka = X509_get0_pubkey(a);
  const EVP_PKEY* kb = X509_get0_pubkey(b);
  const bool yes =
      ka && kb && X509_NAME_cmp(X509_get_subject_name(a), X509_get_subject_name(b)) == 0 && EVP_PKEY_eq(ka, kb) == 1;
  ERR_clear_error();
  return yes;
}

std::string read_text_file(const fs::path& p, std::size_t max, bool& exists, std::string& error) {
  exists = false;
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    if (errno != ENOENT) error = std::strerror(errno);
    return {};
  }
  exists = true;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    error = "not a regular file";
    return {};
  }
  std::string data(max + 1, '\0');
  std::size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::read(fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = std::strerror(errno);
      return {};
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got > max) {
    error = "larger than " + std::to_string(max) + " bytes";
    return {};
  }
  data.resize(got);
  return data;
}

// mkdir 0700 when missing; "" or the reason. Without `created` the parent is
// fsynced at once; with it, *created tells the caller to fsync it (once for
// several directories).
std::string ensure_dir(const fs::path& d, bool* created) {
  struct stat st {};
  if (::lstat(d.c_str(), &st) != 0) {
    if (errno != ENOENT) return d.string() + ": " + std::strerror(errno);
    if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST)
      return "cannot create " + d.string() + ": " + std::strerror(errno);
    if (created) *created = true;
    else fsync_dir(d.parent_path().string());
    if (::lstat(d.c_str(), &st) != 0) return d.string() + ": " + std::strerror(errno);
  }
  if (!S_ISDIR(st.st_mode)) return d.string() + " is not a directory";
  if ((st.st_mode & 07777) != 0700) ::chmod(d.c_str(), 0700);
  return {};
}

}  // namespace cert_store_detail

// ---- opening and recovery

CertStore::CertStore(const fs::path& state_dir) : dir_(state_dir / "certs") {
  reload();
}

fs::path CertStore::file_of(CertificateType type, std::string_view fingerprint) const {
  return dir_ / std::string(to_string(type)) / (std::string(fingerprint) + ".pem");
}

const CertStore::Entry* CertStore::find(CertificateType type, std::string_view fingerprint) const {
  for (const Entry& e : entries_)
    if (e.type == type && e.fingerprint == fingerprint) return &e;
  return nullptr;
}

StoredCertificate CertStore::info(const Entry& e) const {
  return {e.type, e.fingerprint, e.subject};
}

std::size_t CertStore::count(CertificateType type) const {
  return static_cast<std::size_t>(
      std::count_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.type == type; }));
}

void CertStore::sort_entries() {
  std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
    if (a.type != b.type) return a.type < b.type;
    if (a.subject != b.subject) return a.subject < b.subject;
    return a.fingerprint < b.fingerprint;
  });
}

void CertStore::reload() {
  problems_.clear();
  entries_.clear();
  state_ = State{};
  const std::string rel_root = dir_.filename().string();  // "certs", for problem texts

  std::error_code ec;
  if (!dir_.parent_path().empty()) fs::create_directories(dir_.parent_path(), ec);
  if (auto e = ensure_dir(dir_); !e.empty()) throw std::runtime_error("certificate store: " + e);

  // Top level: the type directories, the state, the bundle; *.tmp leftovers
  // are removed; anything else is reported.
  fs::directory_iterator it(dir_, ec);
  if (ec) throw std::runtime_error("certificate store: cannot read " + dir_.string() + ": " + ec.message());
  bool removed_tmp = false;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) throw std::runtime_error("certificate store: cannot read " + dir_.string() + ": " + ec.message());
    const std::string name = it->path().filename().string();
    if (name == kStateFile || name == kBundleFile || parse_certificate_type(name)) continue;
    if (name.ends_with(".tmp")) {
      if (::unlink(it->path().c_str()) == 0) {
        removed_tmp = true;
        problems_.push_back(rel_root + "/" + printable(name) + ": removed a leftover temporary file");
        continue;
      }
    }
    problems_.push_back(rel_root + "/" + printable(name) + ": skipped (not part of the certificate store)");
  }
  // The type directories: created together, one fsync of certs/ for all (before
  // any certificate is written into them).
  bool created = false;
  std::vector<std::string> dir_errors(std::size(kCertificateTypes));
  for (std::size_t i = 0; i < std::size(kCertificateTypes); ++i)
    dir_errors[i] = ensure_dir(dir_ / std::string(to_string(kCertificateTypes[i])), &created);
  if (removed_tmp || created) fsync_dir(dir_.string());

  for (std::size_t i = 0; i < std::size(kCertificateTypes); ++i) {
    const CertificateType type = kCertificateTypes[i];
    const fs::path tdir = dir_ / std::string(to_string(type));
    const std::string rel = rel_root + "/" + std::string(to_string(type));
    if (const auto& e = dir_errors[i]; !e.empty()) {
      problems_.push_back(rel + ": " + e + " (no " + std::string(to_string(type)) + " certificates can be stored)");
      continue;
    }
    bool removed = false;
    fs::directory_iterator tit(tdir, ec);
    if (ec) {
      problems_.push_back(rel + ": cannot read: " + ec.message());
      continue;
    }
    for (; tit != fs::directory_iterator(); tit.increment(ec)) {
      if (ec) {
        problems_.push_back(rel + ": cannot read: " + ec.message());
        break;
      }
      const fs::path p = tit->path();
      const std::string name = p.filename().string();
      const std::string where = rel + "/" + printable(name);
      const auto st = fs::symlink_status(p, ec);
      if (name.ends_with(".tmp") && !fs::is_directory(st)) {
        if (::unlink(p.c_str()) == 0) {
          removed = true;
          problems_.push_back(where + ": removed a leftover temporary file");
        } else {
          problems_.push_back(where + ": cannot remove a leftover temporary file: " + std::strerror(errno));
        }
        continue;
      }
      const std::string_view stem = std::string_view(name).substr(0, name.size() >= 4 ? name.size() - 4 : 0);
      if (!name.ends_with(".pem") || !is_fingerprint(stem)) {
        problems_.push_back(where + ": skipped (not <sha256 fingerprint>.pem)");
        continue;
      }
      if (!fs::is_regular_file(st)) {
        problems_.push_back(where + ": skipped (not a regular file)");
        continue;
      }
      std::string err;
      X509Ptr cert = load_pem_file(p, err);
      if (!cert) {
        problems_.push_back(where + ": skipped (" + err + ")");
        continue;
      }
      const std::string fp = fingerprint_of(cert.get());
      if (fp != stem) {
        problems_.push_back(where + ": skipped (the file name is not the certificate's SHA-256 fingerprint)");
        continue;
      }
      struct stat fst {};
      if (::stat(p.c_str(), &fst) == 0 && (fst.st_mode & 07777) != 0644) ::chmod(p.c_str(), 0644);
      const std::string subject = subject_text(cert.get());
      entries_.push_back({type, fp, subject, std::move(cert)});
    }
    if (removed) fsync_dir(tdir.string());
  }
  sort_entries();

  read_state();
  State s = state_;
  bool dirty = false;

  // An interrupted local replace: complete it when the certificate that stays
  // is there, else forget it.
  if (s.replace_type) {
    const CertificateType type = *s.replace_type;
    if (find(type, s.replace_keep)) {
      std::vector<std::string> others;
      for (const Entry& e : entries_)
        if (e.type == type && e.fingerprint != s.replace_keep) others.push_back(e.fingerprint);
      bool all = true;
      for (const auto& fp : others) {
        if (auto e = delete_file(type, fp); !e.empty()) {
          problems_.push_back(e);
          all = false;
        }
      }
      if (all) {
        problems_.push_back(rel_root + ": completed an interrupted replacement of the " + std::string(to_string(type)) +
                            " certificates");
        if (type == CertificateType::CSMSRootCertificate) {
          s.pending.clear();
          s.fallback.clear();
        }
        s.replace_type.reset();
        s.replace_keep.clear();
      }
    } else {
      problems_.push_back(rel_root + ": dropped an interrupted replacement of the " + std::string(to_string(type)) +
                          " certificates (the new certificate was not stored)");
      s.replace_type.reset();
      s.replace_keep.clear();
    }
    dirty = true;
  }

  // A pending CSMS root change.
  if (!s.pending.empty()) {
    if (!find(CertificateType::CSMSRootCertificate, s.pending)) {
      problems_.push_back(rel_root + ": dropped a CSMS root change whose new root is not stored");
      s.pending.clear();
      s.fallback.clear();
      dirty = true;
    } else {
      const auto before = s.fallback.size();
      std::erase_if(s.fallback, [&](const std::string& fp) {
        return fp == s.pending || !find(CertificateType::CSMSRootCertificate, fp);
      });
      if (s.fallback.size() != before) dirty = true;
      if (s.fallback.empty()) {
        s.pending.clear();
        dirty = true;
      }
    }
  } else if (!s.fallback.empty()) {
    s.fallback.clear();
    dirty = true;
  }

  if (dirty) {
    if (auto e = write_state(s); !e.empty()) {
      problems_.push_back(e);
      state_ = s;  // in memory at least
    }
  }
  if (auto e = write_bundle(); !e.empty()) problems_.push_back(e);
}

void CertStore::read_state() {
  const fs::path p = dir_ / kStateFile;
  const std::string where = dir_.filename().string() + "/" + kStateFile;
  bool exists = false;
  std::string err;
  const std::string text = read_text_file(p, kMaxStateBytes, exists, err);
  if (!exists && err.empty()) return;
  if (!err.empty()) {
    problems_.push_back(where + ": ignored (" + err + ")");
    return;
  }
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != kStateMagic) {
    problems_.push_back(where + ": ignored (not a certificate store state file)");
    return;
  }
  State s;
  int n = 1;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    std::istringstream ls(line);
    std::string key, a, b, extra;
    ls >> key >> a >> b >> extra;
    const auto type = parse_certificate_type(a);
    bool ok = extra.empty();
    if (ok && (key == "seeded" || key == "seeding") && type && b.empty()) {
      (key == "seeded" ? s.seeded : s.seeding).insert(*type);
    } else if (ok && key == "pending" && is_fingerprint(a) && b.empty() && s.pending.empty()) {
      s.pending = a;
    } else if (ok && key == "fallback" && is_fingerprint(a) && b.empty()) {
      s.fallback.push_back(a);
    } else if (ok && key == "replace" && type && is_fingerprint(b) && !s.replace_type) {
      s.replace_type = type;
      s.replace_keep = b;
    } else {
      problems_.push_back(where + ": line " + std::to_string(n) + " ignored");
    }
  }
  state_ = std::move(s);
}

// ---- writing

std::string CertStore::write_state(const State& s) {
  std::string text = std::string(kStateMagic) + "\n";
  for (const CertificateType t : s.seeded) text += "seeded " + std::string(to_string(t)) + "\n";
  for (const CertificateType t : s.seeding) text += "seeding " + std::string(to_string(t)) + "\n";
  if (!s.pending.empty()) text += "pending " + s.pending + "\n";
  for (const auto& fp : s.fallback) text += "fallback " + fp + "\n";
  if (s.replace_type) text += "replace " + std::string(to_string(*s.replace_type)) + " " + s.replace_keep + "\n";
  if (auto e = write_file_durably((dir_ / kStateFile).string(), text); !e)
    return "cannot write the certificate store state: " + e.error().message;
  state_ = s;
  return {};
}

std::string CertStore::write_bundle() {
  std::string text;
  for (const Entry& e : entries_)
    if (e.type == CertificateType::CSMSRootCertificate) text += to_pem(e.cert.get());
  const fs::path p = csms_bundle_file();
  bool exists = false;
  std::string err;
  const std::string current = read_text_file(p, kMaxPemBytes * 4, exists, err);
  if (!exists && err.empty() && text.empty()) return {};  // no CSMS root yet: no bundle (trusts nothing either way)
  if (!exists || !err.empty() || current != text) {
    if (!err.empty()) ::unlink(p.c_str());  // e.g. a directory or a symlink in its place
    if (auto e = write_file_durably(p.string(), text); !e) return "cannot write the CSMS root bundle: " + e.error().message;
  }
  ::chmod(p.c_str(), 0644);
  return {};
}

std::string CertStore::add_file(CertificateType type, const X509* cert) {
  const std::string fp = fingerprint_of(cert);
  if (fp.empty()) return "cannot compute the certificate's fingerprint";
  if (find(type, fp)) return {};
  const std::string pem = to_pem(cert);
  if (pem.empty()) return "cannot encode the certificate";
  const fs::path p = file_of(type, fp);
  if (auto e = write_file_durably(p.string(), pem); !e) return "cannot store the certificate: " + e.error().message;
  ::chmod(p.c_str(), 0644);
  entries_.push_back({type, fp, subject_text(cert), share(cert)});
  sort_entries();
  return {};
}

std::string CertStore::delete_file(CertificateType type, std::string_view fingerprint) {
  const fs::path p = file_of(type, fingerprint);
  if (::unlink(p.c_str()) != 0 && errno != ENOENT)
    return "cannot delete " + dir_.filename().string() + "/" + std::string(to_string(type)) + "/" +
           std::string(fingerprint) + ".pem: " + std::strerror(errno);
  fsync_dir(p.parent_path().string());
  std::erase_if(entries_, [&](const Entry& e) { return e.type == type && e.fingerprint == fingerprint; });
  return {};
}

std::string CertStore::capacity_error(CertificateType type, std::size_t adding, std::size_t removing_of_type) const {
  if (count() - removing_of_type + adding > kMaxCertificatesTotal)
    return "certificate store full: at most " + std::to_string(kMaxCertificatesTotal) + " certificates in all";
  if (count(type) - removing_of_type + adding > kMaxCertificatesPerType)
    return "certificate store full: at most " + std::to_string(kMaxCertificatesPerType) + " certificates of type " +
           std::string(to_string(type));
  return {};
}

InstallResult CertStore::failed(InstallResult r, const std::string& what) {
  r.status = InstallStatus::Failed;
  r.reason = what;
  r.changed = false;
  r.fallback.clear();
  r.removed.clear();
  try {
    reload();  // re-read the disk: completes or rolls back what was started
  } catch (const std::exception& e) {
    problems_.push_back(e.what());
  }
  return r;
}

}  // namespace cg::security
