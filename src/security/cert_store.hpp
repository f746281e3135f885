// REQ: COM-7 (roots of trust, provisioned and replaceable), COM-6
// (Install/Delete/GetInstalledCertificateIds), COM-2 (CSMS roots for TLS),
// COM-8 (crypto policy on every root); OCPP M03/M04/M05; digest §1.2, §3
//
// The station's certificate store: the root certificates it trusts, by OCPP
// InstallCertificateUseEnumType, kept in the state directory. Pure module (no
// OCPP JSON, no audit calls): plain values in, plain results out; results name
// what changed (type, SHA-256 fingerprint, subject) so that the caller audits.
//
// On disk (<state_dir>/certs, mode 0700; sub-directories 0700):
//   certs/<type>/<sha256 hex>.pem   one certificate per file (0644); the name is
//                                   the SHA-256 fingerprint of its DER
//   certs/state                     small text file: types already seeded, a
//                                   pending CSMS root change (new root +
//                                   fallback roots), an interrupted local replace
//   certs/csms-roots.pem            PEM bundle of every CSMS root (fallbacks
//                                   included), 0644, rewritten after every change
//                                   and at open; absent while there is none
// Files are written with write_file_durably (temp file, fsync, rename, fsync of
// the directory); deletes are followed by fsync_dir. Every mutation is ordered
// so that a crash (kill -9, power loss) leaves the old or the new state, which
// the constructor / reload() completes: leftover *.tmp files are removed, a
// pending change whose new root file is missing is rolled back, an interrupted
// replace is completed, the bundle is regenerated. Anything else in the
// directory (junk names, unreadable or mismatching PEM, symlinks) is skipped
// and described in problems(); nothing is deleted except *.tmp leftovers.
//
// Rules (install, the CSMS path, M05):
//   - the PEM holds exactly one certificate, at most 5500 characters (OCPP);
//   - never over security profile 1 (our rule, digest §3);
//   - a CA certificate (basicConstraints CA:TRUE; keyUsage, when present, with
//     keyCertSign), valid at `now`, accepted by the crypto policy (warnings are
//     returned);
//   - ManufacturerRootCertificate: signed by a pinned (installed) manufacturer
//     root, i.e. a cross-signed successor; the pinned roots stay until deleted;
//   - CSMSRootCertificate, AdditionalRootCertificateCheck = false: a
//     self-signed root, added next to the others;
//   - CSMSRootCertificate, AdditionalRootCertificateCheck = true (M05.FR.08-13):
//     signed by one of the installed CSMS roots; those become the fallback (still
//     trusted) until confirm_csms_root() sees a verified chain through the new
//     root, then they are deleted. One change at a time: while one is pending,
//     another is Rejected (deleting the new root cancels the change);
//   - V2GRootCertificate, MORootCertificate: CA certificates as above (stored,
//     not used yet);
//   - the same certificate (fingerprint) of the same type again: Accepted, no
//     change;
//   - at most kMaxCertificatesPerType per type and kMaxCertificatesTotal in all.
// The same certificate may be installed under two types (two files).
//
// Limits: a root that is not self-signed (a cross-signed successor) is a trust
// anchor for OpenSSL only while its signer is installed too, or with
// X509_V_FLAG_PARTIAL_CHAIN; installing its self-signed form afterwards is
// accepted (it is "signed by" the cross-signed one: same name, same key).
// Expired certificates stay in the store (listed, returned by roots()) until
// deleted. Changes made by another process (the CLI) are seen after reload().
// Thread-safety: none; use from one thread (the OCPP event loop).
//
// Errors: the constructor and reload() throw std::runtime_error when certs/
// cannot be created or read; everything else reports in its result: Rejected /
// NotFound with the rule that refused, Failed with the file operation that
// failed (the store then re-reads the disk). Nothing else throws except
// std::bad_alloc.
#pragma once
#include <openssl/x509.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "security/certificates.hpp"

namespace cg::security {

// OCPP InstallCertificateUseEnumType (declaration order = list order).
enum class CertificateType { CSMSRootCertificate, ManufacturerRootCertificate, V2GRootCertificate, MORootCertificate };
inline constexpr std::array<CertificateType, 4> kCertificateTypes{
    CertificateType::CSMSRootCertificate, CertificateType::ManufacturerRootCertificate,
    CertificateType::V2GRootCertificate, CertificateType::MORootCertificate};
std::string_view to_string(CertificateType t) noexcept;                     // exact OCPP spelling
std::optional<CertificateType> parse_certificate_type(std::string_view s);  // exact OCPP spelling only

inline constexpr std::size_t kMaxCertificatesPerType = 10;
inline constexpr std::size_t kMaxCertificatesTotal = 40;
inline constexpr std::size_t kMaxInstallPemChars = 5500;  // InstallCertificateRequest.certificate

// A certificate of the store, as the caller audits it.
struct StoredCertificate {
  CertificateType type = CertificateType::CSMSRootCertificate;
  std::string fingerprint;  // SHA-256 of the DER, lower-case hex (the file name)
  std::string subject;      // subject_text()
};

enum class InstallStatus { Accepted, Rejected, Failed };  // InstallCertificateStatusEnumType
std::string_view to_string(InstallStatus s) noexcept;

struct InstallContext {
  int security_profile = 0;            // of the connection the request came over
  bool additional_root_check = false;  // SecurityCtrlr.AdditionalRootCertificateCheck
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
};

struct InstallResult {
  InstallStatus status = InstallStatus::Failed;
  // Rejected/Failed: the reason (for statusInfo and the audit record).
  // Accepted: what happened ("installed", "already installed", …).
  std::string reason;
  std::vector<std::string> warnings;             // crypto policy warnings (accepted below the goal)
  bool changed = false;                          // false for an idempotent re-install and when not Accepted
  std::optional<StoredCertificate> certificate;  // the certificate concerned, whenever it parsed
  std::vector<StoredCertificate> fallback;       // CSMS roots kept as fallback (additional root check)
  std::vector<StoredCertificate> removed;        // install_local(Replace): the certificates it replaced
  bool accepted() const { return status == InstallStatus::Accepted; }
};

enum class SeedStatus {
  Seeded,     // certificates imported from the file
  NotNeeded,  // the type was seeded before, or the store already holds certificates of it
  Failed,     // file unreadable, no acceptable certificate, or a write failed
};
struct SeedResult {
  SeedStatus status = SeedStatus::Failed;
  std::string reason;                       // NotNeeded / Failed: why
  std::vector<StoredCertificate> imported;  // new files (certificates already present are not listed)
  std::vector<std::string> skipped;         // "certificate 2 (CN=…): the certificate has expired (…)"
  std::vector<std::string> warnings;        // crypto policy warnings, with the certificate's position
};

enum class LocalInstallMode {
  Replace,  // the certificate becomes the only one of its type (a pending CSMS change is dropped)
  Add,      // added next to the others
};

enum class DeleteStatus { Accepted, Failed, NotFound };  // DeleteCertificateStatusEnumType
std::string_view to_string(DeleteStatus s) noexcept;

struct RemoveResult {
  DeleteStatus status = DeleteStatus::NotFound;
  std::string reason;                      // why Failed/NotFound; for Accepted what happened
  std::vector<StoredCertificate> removed;  // every file deleted (one per type it was installed as)
};

struct ConfirmResult {
  bool confirmed = false;                  // the change is complete; the fallback roots are deleted
  std::string reason;                      // when not confirmed: why
  std::vector<StoredCertificate> removed;  // the former fallback roots
};

struct PendingCsmsRoot {
  StoredCertificate new_root;
  std::vector<StoredCertificate> fallback;
};

// Role of a certificate in a pending CSMS root change.
enum class RootRole { Installed, PendingCsmsRoot, FallbackCsmsRoot };

struct CertificateEntry {
  CertificateType type = CertificateType::CSMSRootCertificate;
  CertificateHashData hash_data;  // SHA256; see remove() for the issuer used
  X509Ptr certificate;            // a new reference; to_pem() for the text
  std::string fingerprint;
  std::string subject;
  RootRole role = RootRole::Installed;
};

class CertStore {
 public:
  // Opens (creates) <state_dir>/certs and reads it, as reload(). The parent
  // state directory is created when missing.
  explicit CertStore(const std::filesystem::path& state_dir);

  // Re-reads the directory: recovery after a crash (see the header comment),
  // bundle regeneration, problems() refreshed. Throws std::runtime_error when
  // certs/ is not a directory or cannot be created/read.
  void reload();
  // What the last reload() skipped, removed or repaired, one text per item
  // ("certs/CSMSRootCertificate/x.txt: skipped (not <sha256 fingerprint>.pem)"),
  // plus later non-fatal write failures (e.g. the bundle), which the next
  // reload() repairs.
  const std::vector<std::string>& problems() const { return problems_; }

  // First start: when `type` was never seeded and the store holds no
  // certificate of it, imports every certificate of `pem_file` that passes the
  // root checks (CA, keyCertSign, validity at `now`, crypto policy; CSMS and
  // manufacturer roots must be self-signed), up to the capacity; the others
  // are listed in `skipped`. The type is then marked seeded and the file is
  // never read again for it (even when the type later becomes empty). A seed
  // interrupted by a crash is completed by the next seed() call.
  SeedResult seed(CertificateType type, const std::filesystem::path& pem_file,
                  std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

  // M05 InstallCertificate (rules in the header comment).
  InstallResult install(CertificateType type, std::string_view pem, const InstallContext& ctx);

  // Local administrator (CLI): pins or adds a certificate without the
  // signature rules of install() and without the profile rule; still exactly
  // one certificate (64 KiB PEM at most), a CA certificate, valid at `now`,
  // crypto policy, capacity; a CSMSRootCertificate must be self-signed.
  InstallResult install_local(CertificateType type, std::string_view pem,
                              LocalInstallMode mode = LocalInstallMode::Replace,
                              std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

  // M04 DeleteCertificate. A certificate matches when same_hash_data() holds
  // for the hash data computed with the request's algorithm and one of these
  // issuers: the certificate itself when self-signed; each installed
  // certificate that signed it; for a certificate that is not self-signed, its
  // own key too (what list() reports when its issuer is not installed).
  // Failed: the request identifies the station's own certificate (compared by
  // algorithm, issuerNameHash and serialNumber only: its issuer's key is not at
  // hand) - "the station's own certificate cannot be deleted"; or deleting the
  // matches would leave no CSMS root - "the last CSMS root cannot be deleted";
  // or a file could not be deleted. NotFound: nothing matches (also for an
  // unknown hash algorithm). Every match is deleted (the same certificate may
  // be installed as two types). Deleting the pending new CSMS root cancels the
  // change (the fallback roots stay as plain roots); deleting the last fallback
  // root ends the pending state.
  RemoveResult remove(const CertificateHashData& hash, const X509* station_certificate_or_null);

  // After a successful TLS connection: when the verified chain contains the
  // pending new CSMS root (same subject and public key), the change is complete
  // and the fallback roots are deleted. Pass SSL_get0_verified_chain(), or the
  // trust anchor. Does nothing (confirmed = false) otherwise.
  ConfirmResult confirm_csms_root(const STACK_OF(X509) * verified_chain);
  ConfirmResult confirm_csms_root(const X509* used_root);
  std::optional<PendingCsmsRoot> csms_root_pending() const;
  // True when a CSMS root in the bundle is not self-signed and its signer is
  // gone (a confirmed AdditionalRootCertificateCheck successor): TLS must then
  // take it as a trust anchor by itself (X509_V_FLAG_PARTIAL_CHAIN). Such a
  // root can only come from install() (signed by an installed root).
  bool csms_bundle_needs_partial_chain() const;

  // M03 GetInstalledCertificateIds: ordered by type (enum order), subject,
  // fingerprint. An empty filter means every type. hash_data uses the
  // certificate itself when self-signed, else the first installed certificate
  // that signed it, else the certificate's own key.
  std::vector<CertificateEntry> list(const std::vector<CertificateType>& types = {}) const;
  std::size_t count() const { return entries_.size(); }  // SecurityCtrlr.CertificateEntries
  std::size_t count(CertificateType type) const;

  // Trust anchors of a type, in list order (CSMS: a pending new root and its
  // fallback roots included).
  std::vector<X509Ptr> roots(CertificateType type) const;
  // certs/csms-roots.pem (for SSL_CTX_load_verify_locations); absent while the
  // store holds no CSMS root (TLS then trusts nothing, as with an empty file).
  std::filesystem::path csms_bundle_file() const { return dir_ / "csms-roots.pem"; }
  std::filesystem::path directory() const { return dir_; }

 private:
  struct Entry {
    CertificateType type;
    std::string fingerprint;
    std::string subject;
    X509Ptr cert;
  };
  struct State {
    std::set<CertificateType> seeded, seeding;
    std::string pending;                // fingerprint of the new CSMS root; "" when none
    std::vector<std::string> fallback;  // fingerprints of the fallback CSMS roots
    std::optional<CertificateType> replace_type;
    std::string replace_keep;  // install_local(Replace) in progress: the certificate that stays
  };

  const Entry* find(CertificateType type, std::string_view fingerprint) const;
  StoredCertificate info(const Entry& e) const;
  std::filesystem::path file_of(CertificateType type, std::string_view fingerprint) const;
  std::string write_state(const State& s);
  std::string write_bundle();
  std::string add_file(CertificateType type, const X509* cert);
  std::string delete_file(CertificateType type, std::string_view fingerprint);
  std::string capacity_error(CertificateType type, std::size_t adding, std::size_t removing_of_type) const;
  void read_state();
  void sort_entries();
  InstallResult failed(InstallResult r, const std::string& what);

  std::filesystem::path dir_;
  std::vector<Entry> entries_;
  State state_;
  std::vector<std::string> problems_;
};

}  // namespace cg::security
