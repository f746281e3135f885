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
      // M05.FR.08-13: with AdditionalRootCertificateCheck only a successor
      // signed by the installed root, which stays as fallback until confirmed.
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
