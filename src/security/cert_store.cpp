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
using Clock = std::chrono::system_clock;

namespace {

constexpr const char* kStateFile = "state";
constexpr const char* kBundleFile = "csms-roots.pem";
constexpr const char* kStateMagic = "cg-cert-store-state 1";
constexpr std::size_t kMaxStateBytes = std::size_t{64} * 1024;
constexpr const char* kProfile1 =
    "root certificates are not installed over an unencrypted connection (security profile 1)";

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
std::string ensure_dir(const fs::path& d, bool* created = nullptr) {
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

}  // namespace

// ---- enums

std::string_view to_string(CertificateType t) noexcept {
  switch (t) {
    case CertificateType::CSMSRootCertificate:
      return "CSMSRootCertificate";
    case CertificateType::ManufacturerRootCertificate:
      return "ManufacturerRootCertificate";
    case CertificateType::V2GRootCertificate:
      return "V2GRootCertificate";
    case CertificateType::MORootCertificate:
      return "MORootCertificate";
  }
  return "CSMSRootCertificate";
}

std::optional<CertificateType> parse_certificate_type(std::string_view s) {
  for (const CertificateType t : kCertificateTypes)
    if (to_string(t) == s) return t;
  return std::nullopt;
}

std::string_view to_string(InstallStatus s) noexcept {
  switch (s) {
    case InstallStatus::Accepted:
      return "Accepted";
    case InstallStatus::Rejected:
      return "Rejected";
    case InstallStatus::Failed:
      return "Failed";
  }
  return "Failed";
}

std::string_view to_string(DeleteStatus s) noexcept {
  switch (s) {
    case DeleteStatus::Accepted:
      return "Accepted";
    case DeleteStatus::Failed:
      return "Failed";
    case DeleteStatus::NotFound:
      return "NotFound";
  }
  return "Failed";
}

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
  if (auto e = write_file_durably((dir_ / kStateFile).string(), text); !e.empty())
    return "cannot write the certificate store state: " + e;
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
    if (auto e = write_file_durably(p.string(), text); !e.empty()) return "cannot write the CSMS root bundle: " + e;
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
  if (auto e = write_file_durably(p.string(), pem); !e.empty()) return "cannot store the certificate: " + e;
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

// ---- seeding

SeedResult CertStore::seed(CertificateType type, const fs::path& pem_file, Clock::time_point now) {
  SeedResult r;
  const std::string tname(to_string(type));
  if (state_.seeded.contains(type)) {
    r.status = SeedStatus::NotNeeded;
    r.reason = tname + " certificates were seeded before; the store is their source";
    return r;
  }
  if (!state_.seeding.contains(type) && count(type) > 0) {
    State s = state_;
    s.seeded.insert(type);
    (void)write_state(s);  // retried at the next start when it fails
    r.status = SeedStatus::NotNeeded;
    r.reason = "the store already holds " + tname + " certificates";
    return r;
  }
  std::string err;
  const CertChain certs = load_chain_file(pem_file, kMaxCertificatesTotal, err);
  if (!err.empty()) {
    r.reason = err;
    return r;
  }
  std::vector<const X509*> take;
  std::vector<std::string> seen;
  std::size_t present = 0;
  for (std::size_t i = 0; i < certs.size(); ++i) {
    const X509* c = certs[i].get();
    const std::string who = "certificate " + std::to_string(i + 1) + " (" + subject_text(c) + ")";
    const std::string fp = fingerprint_of(c);
    if (std::find(seen.begin(), seen.end(), fp) != seen.end()) {
      r.skipped.push_back(who + ": appears twice in the file");
      continue;
    }
    seen.push_back(fp);
    std::vector<std::string> warnings;
    if (auto e = check_root(c, now, self_signed_required(type), warnings); !e.empty()) {
      r.skipped.push_back(who + ": " + e);
      continue;
    }
    if (find(type, fp)) {
      ++present;  // an interrupted seed stored it already
      continue;
    }
    if (auto e = capacity_error(type, take.size() + 1, 0); !e.empty()) {
      r.skipped.push_back(who + ": " + e);
      continue;
    }
    for (const auto& w : warnings) r.warnings.push_back(who + ": " + w);
    take.push_back(c);
  }
  if (take.empty() && present == 0) {
    r.reason = "no acceptable certificate in " + pem_file.string();
    return r;
  }
  State s = state_;
  s.seeding.insert(type);
  if (auto e = write_state(s); !e.empty()) {
    r.reason = e;
    return r;
  }
  for (const X509* c : take) {
    if (auto e = add_file(type, c); !e.empty()) {
      r.reason = e;
      r.imported.clear();
      try {
        reload();
      } catch (const std::exception& x) {
        problems_.push_back(x.what());
      }
      return r;
    }
    r.imported.push_back({type, fingerprint_of(c), subject_text(c)});
  }
  s = state_;
  s.seeding.erase(type);
  s.seeded.insert(type);
  if (auto e = write_state(s); !e.empty()) problems_.push_back(e);  // the next seed() completes it
  if (type == CertificateType::CSMSRootCertificate)
    if (auto e = write_bundle(); !e.empty()) problems_.push_back(e);
  r.status = SeedStatus::Seeded;
  return r;
}

// ---- install (M05)

InstallResult CertStore::install(CertificateType type, std::string_view pem, const InstallContext& ctx) {
  InstallResult r;
  r.status = InstallStatus::Rejected;
  if (pem.size() > kMaxInstallPemChars) {
    r.reason = "certificate of " + std::to_string(pem.size()) + " characters (OCPP maximum " +
               std::to_string(kMaxInstallPemChars) + ")";
    return r;
  }
  std::string err;
  const X509Ptr cert = parse_pem_certificate(pem, err);
  if (!cert) {
    r.reason = "not exactly one PEM certificate: " + err;
    return r;
  }
  const std::string fp = fingerprint_of(cert.get());
  r.certificate = StoredCertificate{type, fp, subject_text(cert.get())};
  if (ctx.security_profile < 2) {
    r.reason = kProfile1;
    return r;
  }
  if (auto e = check_root(cert.get(), ctx.now, false, r.warnings); !e.empty()) {
    r.reason = e;
    r.warnings.clear();
    return r;
  }
  if (find(type, fp)) {
    r.status = InstallStatus::Accepted;
    r.reason = "already installed";
    return r;
  }

  bool successor = false;  // CSMS root under AdditionalRootCertificateCheck
  switch (type) {
    case CertificateType::ManufacturerRootCertificate: {
      bool any = false, signed_ok = false;
      for (const Entry& e : entries_) {
        if (e.type != type) continue;
        any = true;
        if (signed_by(cert.get(), e.cert.get())) signed_ok = true;
      }
      if (!any) {
        r.reason = "no manufacturer root is pinned; install one locally";
        return r;
      }
      if (!signed_ok) {
        r.reason = "the new manufacturer root is not signed by the pinned manufacturer root";
        return r;
      }
      break;
    }
    case CertificateType::CSMSRootCertificate:
      if (ctx.additional_root_check) {
        if (!state_.pending.empty()) {
          r.reason =
              "a CSMS root change is waiting for the first connection with the new root "
              "(AdditionalRootCertificateCheck); delete the new root to cancel it";
          return r;
        }
        if (count(type) == 0) {
          r.reason = "no CSMS root is installed to check the new one against (AdditionalRootCertificateCheck)";
          return r;
        }
        bool signed_ok = false;
        for (const Entry& e : entries_)
          if (e.type == type && signed_by(cert.get(), e.cert.get())) signed_ok = true;
        if (!signed_ok) {
          r.reason = "the new CSMS root is not signed by the installed CSMS root (AdditionalRootCertificateCheck)";
          return r;
        }
        successor = true;
      } else if (!is_self_signed(cert.get())) {
        r.reason = "not a self-signed root certificate";
        return r;
      }
      break;
    case CertificateType::V2GRootCertificate:
    case CertificateType::MORootCertificate:
      break;
  }
  if (auto e = capacity_error(type, 1, 0); !e.empty()) {
    r.reason = e;
    return r;
  }

  if (successor) {
    // State first (pending + fallback), then the file: a crash in between is
    // rolled back at reload (the pending root's file is missing).
    State s = state_;
    s.pending = fp;
    s.fallback.clear();
    // Only the root(s) the successor replaces (its signers) are the fallback;
    // other CSMS roots (e.g. of another network profile's CSMS) stay as they are.
    for (const Entry& e : entries_)
      if (e.type == type && signed_by(cert.get(), e.cert.get())) {
        s.fallback.push_back(e.fingerprint);
        r.fallback.push_back(info(e));
      }
    if (auto e = write_state(s); !e.empty()) return failed(std::move(r), e);
  }
  if (auto e = add_file(type, cert.get()); !e.empty()) return failed(std::move(r), e);
  if (type == CertificateType::CSMSRootCertificate)
    if (auto e = write_bundle(); !e.empty()) problems_.push_back(e);  // rewritten at the next reload
  r.status = InstallStatus::Accepted;
  r.changed = true;
  r.reason = successor ? "installed; the previous CSMS root stays trusted as fallback until the first connection "
                         "with the new root"
                       : "installed";
  return r;
}

InstallResult CertStore::install_local(CertificateType type, std::string_view pem, LocalInstallMode mode,
                                       Clock::time_point now) {
  InstallResult r;
  r.status = InstallStatus::Rejected;
  std::string err;
  const X509Ptr cert = parse_pem_certificate(pem, err);
  if (!cert) {
    r.reason = "not exactly one PEM certificate: " + err;
    return r;
  }
  const std::string fp = fingerprint_of(cert.get());
  r.certificate = StoredCertificate{type, fp, subject_text(cert.get())};
  // A local CSMS root must be a real (self-signed) root: the TLS trust store
  // holds roots only, so that deleting a root withdraws all trust in it.
  if (auto e = check_root(cert.get(), now, type == CertificateType::CSMSRootCertificate, r.warnings); !e.empty()) {
    r.reason = e;
    r.warnings.clear();
    return r;
  }
  const bool present = find(type, fp) != nullptr;
  std::vector<StoredCertificate> others;  // copies: add_file() reorders entries_
  if (mode == LocalInstallMode::Replace)
    for (const Entry& e : entries_)
      if (e.type == type && e.fingerprint != fp) others.push_back(info(e));
  if (present && others.empty()) {
    r.status = InstallStatus::Accepted;
    r.reason = "already installed";
    if (type == CertificateType::CSMSRootCertificate && mode == LocalInstallMode::Replace && !state_.pending.empty()) {
      State s = state_;  // only one CSMS root and no fallback: nothing is pending any more
      s.pending.clear();
      s.fallback.clear();
      if (auto e = write_state(s); !e.empty()) return failed(std::move(r), e);
      r.changed = true;
    }
    return r;
  }
  if (!present)
    if (auto e = capacity_error(type, 1, others.size()); !e.empty()) {
      r.reason = e;
      return r;
    }

  if (mode == LocalInstallMode::Add) {
    if (auto e = add_file(type, cert.get()); !e.empty()) return failed(std::move(r), e);
  } else {
    // Intent first; reload completes it once the new file exists.
    State s = state_;
    s.replace_type = type;
    s.replace_keep = fp;
    if (auto e = write_state(s); !e.empty()) return failed(std::move(r), e);
    if (auto e = add_file(type, cert.get()); !e.empty()) return failed(std::move(r), e);
    for (const auto& g : others) {
      if (auto e = delete_file(type, g.fingerprint); !e.empty()) return failed(std::move(r), e);
      r.removed.push_back(g);
    }
    s = state_;
    s.replace_type.reset();
    s.replace_keep.clear();
    if (type == CertificateType::CSMSRootCertificate) {
      s.pending.clear();
      s.fallback.clear();
    }
    if (auto e = write_state(s); !e.empty()) problems_.push_back(e);  // completed at the next reload
  }
  if (type == CertificateType::CSMSRootCertificate)
    if (auto e = write_bundle(); !e.empty()) problems_.push_back(e);
  r.status = InstallStatus::Accepted;
  r.changed = true;
  r.reason =
      mode == LocalInstallMode::Replace ? "installed; it is now the only " + std::string(to_string(type)) : "installed";
  return r;
}

// ---- delete (M04)

RemoveResult CertStore::remove(const CertificateHashData& hash, const X509* station_certificate_or_null) {
  RemoveResult r;
  const auto alg = parse_hash_algorithm(hash.hash_algorithm);
  if (!alg) {
    r.status = DeleteStatus::NotFound;
    r.reason = "unknown hash algorithm";
    return r;
  }
  if (station_certificate_or_null) {
    CertificateHashData own = hash_data(station_certificate_or_null, station_certificate_or_null, *alg);
    own.issuer_key_hash = hash.issuer_key_hash;  // the station certificate's issuer key is not at hand
    if (!own.issuer_name_hash.empty() && same_hash_data(hash, own)) {
      r.status = DeleteStatus::Failed;
      r.reason = "the station's own certificate cannot be deleted";
      return r;
    }
  }
  std::vector<const Entry*> matches;
  for (const Entry& e : entries_) {
    const X509* c = e.cert.get();
    std::vector<const X509*> issuers;
    if (is_self_signed(c)) {
      issuers.push_back(c);
    } else {
      for (const Entry& o : entries_)
        if (o.cert.get() != c && signed_by(c, o.cert.get())) issuers.push_back(o.cert.get());
      issuers.push_back(c);
    }
    for (const X509* issuer : issuers) {
      if (same_hash_data(hash, hash_data(c, issuer, *alg))) {
        matches.push_back(&e);
        break;
      }
    }
  }
  if (matches.empty()) {
    r.status = DeleteStatus::NotFound;
    r.reason = "no installed certificate matches the hash data";
    return r;
  }
  // The last CSMS root (TLS would trust nothing) and the last manufacturer root
  // (nothing could install a successor over OCPP, firmware could not be
  // checked) stay; a successor must be installed first.
  for (const auto& [type, reason] :
       {std::pair{CertificateType::CSMSRootCertificate, "the last CSMS root cannot be deleted"},
        std::pair{CertificateType::ManufacturerRootCertificate,
                  "the last manufacturer root cannot be deleted (install its successor first)"}}) {
    const auto matched = static_cast<std::size_t>(
        std::count_if(matches.begin(), matches.end(), [t = type](const Entry* e) { return e->type == t; }));
    if (matched > 0 && matched == count(type)) {
      r.status = DeleteStatus::Failed;
      r.reason = reason;
      return r;
    }
  }

  std::vector<StoredCertificate> targets;
  for (const Entry* e : matches) targets.push_back(info(*e));
  State s = state_;
  bool cancelled = false, ended = false;
  for (const auto& t : targets) {
    if (t.type != CertificateType::CSMSRootCertificate || s.pending.empty()) continue;
    if (t.fingerprint == s.pending) {
      s.pending.clear();
      s.fallback.clear();
      cancelled = true;
    } else {
      std::erase(s.fallback, t.fingerprint);
      if (s.fallback.empty()) {
        s.pending.clear();
        ended = true;
      }
    }
  }
  // Files first, then the state (reload applies the same rules after a crash).
  for (const auto& t : targets) {
    if (auto e = delete_file(t.type, t.fingerprint); !e.empty()) {
      r.status = DeleteStatus::Failed;
      r.reason = e;
      try {
        reload();
      } catch (const std::exception& x) {
        problems_.push_back(x.what());
      }
      return r;
    }
    r.removed.push_back(t);
  }
  if (cancelled || ended)
    if (auto e = write_state(s); !e.empty()) problems_.push_back(e);  // repaired at the next reload
  if (std::any_of(matches.begin(), matches.end(),
                  [](const Entry* e) { return e->type == CertificateType::CSMSRootCertificate; }))
    if (auto e = write_bundle(); !e.empty()) problems_.push_back(e);
  r.status = DeleteStatus::Accepted;
  r.reason = cancelled ? "deleted; the pending CSMS root change is cancelled (the previous roots stay)"
             : ended   ? "deleted; no fallback CSMS root is left, the new CSMS root is the installed one"
                       : "deleted";
  return r;
}

// ---- pending CSMS root change

ConfirmResult CertStore::confirm_csms_root(const STACK_OF(X509) * verified_chain) {
  ConfirmResult r;
  if (state_.pending.empty()) {
    r.reason = "no CSMS root change is pending";
    return r;
  }
  const Entry* pending = find(CertificateType::CSMSRootCertificate, state_.pending);
  bool used = false;
  for (int i = 0; pending && verified_chain && i < sk_X509_num(verified_chain); ++i)
    if (same_name_and_key(sk_X509_value(verified_chain, i), pending->cert.get())) used = true;
  if (!used) {
    r.reason = "the verified chain does not contain the new CSMS root";
    return r;
  }
  std::vector<StoredCertificate> gone;
  for (const auto& fp : state_.fallback)
    if (const Entry* e = find(CertificateType::CSMSRootCertificate, fp)) gone.push_back(info(*e));
  for (const auto& g : gone) {
    if (auto e = delete_file(g.type, g.fingerprint); !e.empty()) {
      r.reason = e;
      try {
        reload();
      } catch (const std::exception& x) {
        problems_.push_back(x.what());
      }
      return r;
    }
    r.removed.push_back(g);
  }
  State s = state_;
  s.pending.clear();
  s.fallback.clear();
  if (auto e = write_state(s); !e.empty()) problems_.push_back(e);  // repaired at the next reload
  if (auto e = write_bundle(); !e.empty()) problems_.push_back(e);
  r.confirmed = true;
  return r;
}

ConfirmResult CertStore::confirm_csms_root(const X509* used_root) {
  struct StackFree {
    void operator()(STACK_OF(X509) * s) const noexcept { sk_X509_free(s); }
  };
  std::unique_ptr<STACK_OF(X509), StackFree> sk(sk_X509_new_null());
  if (sk && used_root) sk_X509_push(sk.get(), const_cast<X509*>(used_root));
  return confirm_csms_root(sk.get());
}

bool CertStore::csms_bundle_needs_partial_chain() const {
  for (const Entry& e : entries_) {
    if (e.type != CertificateType::CSMSRootCertificate || is_self_signed(e.cert.get())) continue;
    const bool signer_present = std::any_of(entries_.begin(), entries_.end(), [&](const Entry& o) {
      return o.type == CertificateType::CSMSRootCertificate && &o != &e && signed_by(e.cert.get(), o.cert.get());
    });
    if (!signer_present) return true;
  }
  return false;
}

std::optional<PendingCsmsRoot> CertStore::csms_root_pending() const {
  if (state_.pending.empty()) return std::nullopt;
  const Entry* p = find(CertificateType::CSMSRootCertificate, state_.pending);
  if (!p) return std::nullopt;
  PendingCsmsRoot out;
  out.new_root = info(*p);
  for (const auto& fp : state_.fallback)
    if (const Entry* e = find(CertificateType::CSMSRootCertificate, fp)) out.fallback.push_back(info(*e));
  return out;
}

// ---- list (M03) and trust

std::vector<CertificateEntry> CertStore::list(const std::vector<CertificateType>& types) const {
  std::vector<CertificateEntry> out;
  for (const Entry& e : entries_) {
    if (!types.empty() && std::find(types.begin(), types.end(), e.type) == types.end()) continue;
    const X509* c = e.cert.get();
    const X509* issuer = c;
    if (!is_self_signed(c)) {
      for (const Entry& o : entries_) {
        if (o.cert.get() != c && signed_by(c, o.cert.get())) {
          issuer = o.cert.get();
          break;
        }
      }
    }
    CertificateEntry ce;
    ce.type = e.type;
    ce.hash_data = hash_data(c, issuer, HashAlgorithm::SHA256);
    ce.certificate = share(c);
    ce.fingerprint = e.fingerprint;
    ce.subject = e.subject;
    if (e.type == CertificateType::CSMSRootCertificate && !state_.pending.empty()) {
      if (e.fingerprint == state_.pending)
        ce.role = RootRole::PendingCsmsRoot;
      else if (std::find(state_.fallback.begin(), state_.fallback.end(), e.fingerprint) != state_.fallback.end())
        ce.role = RootRole::FallbackCsmsRoot;
    }
    out.push_back(std::move(ce));
  }
  return out;
}

std::vector<X509Ptr> CertStore::roots(CertificateType type) const {
  std::vector<X509Ptr> out;
  for (const Entry& e : entries_)
    if (e.type == type) out.push_back(share(e.cert.get()));
  return out;
}

}  // namespace cg::security
