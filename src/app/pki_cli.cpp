#include "app/pki_cli.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "app/audit_cli.hpp"
#include "audit/audit_log.hpp"
#include "core/clock.hpp"
#include "policy/policy.hpp"
#include "security/cert_store.hpp"
#include "security/dev_pki.hpp"
#include "security/station_identity.hpp"
#include "services/certificates.hpp"
#include "services/gate.hpp"
#include "services/identity.hpp"

namespace cg::app {
namespace fs = std::filesystem;

namespace {

std::optional<security::KeyType> parse_key_type(const std::string& s) {
  if (s == "ec-p256") return security::KeyType::EcP256;
  if (s == "ec-p384") return security::KeyType::EcP384;
  if (s == "rsa-3072") return security::KeyType::Rsa3072;
  return std::nullopt;
}

void print_summary(const char* what, const security::CertificateSummary& s) {
  std::cout << what << ":\n"
            << "  subject      CN=" << s.common_name << ", O=" << s.organization << "\n"
            << "  issuer       " << s.issuer << "\n"
            << "  serial       " << s.serial_hex << "\n"
            << "  valid        " << clock::format_rfc3339(s.not_before) << " .. " << clock::format_rfc3339(s.not_after)
            << (s.not_after < std::chrono::system_clock::now() ? "  (EXPIRED)" : "") << "\n"
            << "  SHA-256      " << s.sha256_fingerprint << "\n";
}

// Everything provision, install-cert and install-root share: state directory,
// lock, key store, audit log, and the services that decide and audit (the
// one policy is asked there, for the local admin at the console).
struct Session {
  int lock = -1;
  std::unique_ptr<security::KeyStore> store;
  std::unique_ptr<security::StationIdentity> identity;
  std::unique_ptr<audit::AuditLog> audit_log;
  std::unique_ptr<services::Gate> gate;
  std::unique_ptr<services::IdentityService> identity_service;
  ~Session() {
    if (lock >= 0) ::close(lock);
  }
  // with_identity: also the station identity (not needed to install a root).
  bool open(const config::Config& cfg, const services::PolicyFn& policy, bool with_identity = true) {
    std::error_code ec;
    if (!fs::exists(cfg.state_dir, ec)) {
      fs::create_directories(cfg.state_dir, ec);
      if (ec) {
        std::cerr << "error: cannot create state directory " << cfg.state_dir.string() << ": " << ec.message() << "\n";
        return false;
      }
      ::chmod(cfg.state_dir.c_str(), 0700);
    }
    lock = try_lock_state_dir(cfg.state_dir);
    if (lock < 0) {
      std::cerr << "error: a chargeguard daemon is running with state directory " << cfg.state_dir.string()
                << "; stop it first\n";
      return false;
    }
    try {
      // The key store is always opened: the audit log's key is sealed by it.
      store = open_configured_key_store(cfg);
      audit_log = audit::AuditLog::open(cfg.state_dir / "audit", *store);
      gate = std::make_unique<services::Gate>(audit_log.get(), policy);
      if (with_identity) {
        identity = std::make_unique<security::StationIdentity>(*store, cfg.state_dir);
        identity->recover();
        identity_service = std::make_unique<services::IdentityService>(*gate, *identity, cfg, nullptr);
      }
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      return false;
    }
    return true;
  }
};

// A service's refusal, for the console.
int refused(const Error& e) {
  std::cerr << "error: " << e.message << "\n";
  return 1;
}

// Checks and stores `pem` as the certificate of the key "station".
int install_chain(Session& s, const std::string& pem, const char* how) {
  const auto r = s.identity_service->install_chain(local_admin(), pem, how);
  if (!r) return refused(r.error());
  print_summary("station certificate installed", *r);
  std::cout << "  file         " << s.identity->chain_file(security::kStationKeyLabel).string() << "\n"
            << "  key          'station' in the " << s.store->backend() << " key store\n";
  return 0;
}

}  // namespace

std::unique_ptr<security::KeyStore> open_configured_key_store(const config::Config& cfg) {
  if (cfg.key_store.backend == "pkcs11")
    return security::open_key_store(
        security::Pkcs11KeyStoreOptions{cfg.key_store.module, cfg.key_store.token_label, cfg.key_store.pin_file});
  return security::open_key_store(security::FileKeyStoreOptions{cfg.state_dir / "keys"});
}

int pki_provision(const config::Config& cfg, const ProvisionOptions& opt, const services::PolicyFn& policy) {
  const auto type = parse_key_type(opt.key_type);
  if (!type) {
    std::cerr << "error: --key-type must be ec-p256, ec-p384 or rsa-3072\n";
    return 1;
  }
  if (opt.ca_cert.empty() != opt.ca_key.empty()) {
    std::cerr << "error: --ca-cert and --ca-key go together\n";
    return 1;
  }
  if (!opt.ca_cert.empty() && !opt.csr_out.empty()) {
    std::cerr << "error: give either --ca-cert/--ca-key (development CA signs at once) or --csr-out, not both\n";
    return 1;
  }
  if (cfg.serial.empty() || cfg.organization.empty()) {
    std::cerr << "error: station.serial and station.organization are required: they are the CN and O of the "
                 "station certificate\n";
    return 1;
  }
  Session s;
  if (!s.open(cfg, policy)) return 1;
  if (s.identity->has_certificate(security::kStationKeyLabel)) {
    std::cerr << "error: this station is provisioned already ("
              << s.identity->chain_file(security::kStationKeyLabel).string()
              << "); its certificate is renewed by the CSMS (A02/A03), or a factory reset starts over\n";
    return 1;
  }
  try {
    if (s.identity->has_key(security::kStationKeyLabel)) {
      std::cerr << "using the existing key 'station' of the " << s.store->backend()
                << " key store (a request was made before)\n";
    } else {
      const auto info = s.identity_service->provision_key(local_admin(), *type);
      if (!info) return refused(info.error());
      std::cerr << "generated key 'station' (" << security::to_string(info->type) << ") in the " << s.store->backend()
                << " key store" << (info->non_exportable ? "; it cannot be exported" : "") << "\n";
    }
    const std::string csr =
        security::make_csr_pem(*s.store, security::kStationKeyLabel, {cfg.serial, cfg.organization});
    if (!opt.ca_cert.empty()) {
      std::cerr << "signing with the DEVELOPMENT CA " << opt.ca_cert.string() << " (never in production)\n";
      const auto signed_ = security::dev_pki_sign_csr(csr, opt.ca_cert, opt.ca_key, opt.days);
      if (!signed_.ok) {
        std::cerr << "error: " << signed_.error << "\n";
        return 1;
      }
      return install_chain(s, signed_.certificate_pem, "provisioned (development CA)");
    }
    if (opt.csr_out.empty() || opt.csr_out == "-") {
      std::cout << csr;
    } else {
      std::ofstream out(opt.csr_out, std::ios::binary | std::ios::trunc);
      out << csr;
      if (!out.flush()) {
        std::cerr << "error: cannot write " << opt.csr_out.string() << "\n";
        return 1;
      }
      std::cerr << "wrote the certificate signing request (CN=" << cfg.serial << ", O=" << cfg.organization << ") to "
                << opt.csr_out.string() << "\n";
    }
    std::cerr << "next: have the operator CA sign it, then run\n  chargeguard pki install-cert --config FILE --cert CHAIN.pem\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

namespace {
// A PEM file of at most 64 KiB; prints the error and returns nothing otherwise.
std::optional<std::string> read_pem_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::cerr << "error: cannot read " << file.string() << "\n";
    return std::nullopt;
  }
  std::string pem(64 * 1024 + 1, '\0');
  in.read(pem.data(), static_cast<std::streamsize>(pem.size()));
  pem.resize(static_cast<std::size_t>(in.gcount()));
  if (pem.size() > 64 * 1024) {
    std::cerr << "error: " << file.string() << " is larger than 64 KiB\n";
    return std::nullopt;
  }
  return pem;
}
}  // namespace

int pki_install_root(const config::Config& cfg, const std::string& type_name, const fs::path& file, bool replace,
                     const services::PolicyFn& policy) {
  const auto type = security::parse_certificate_type(type_name);
  if (!type) {
    std::cerr << "error: --type " << type_name
              << ": must be ManufacturerRootCertificate, CSMSRootCertificate, V2GRootCertificate or "
                 "MORootCertificate\n";
    return 1;
  }
  const auto pem = read_pem_file(file);
  if (!pem) return 1;
  Session s;
  if (!s.open(cfg, policy, /*with_identity=*/false)) return 1;
  std::unique_ptr<security::CertStore> store;
  try {
    store = std::make_unique<security::CertStore>(cfg.state_dir);
  } catch (const std::exception& e) {
    std::cerr << "error: certificate store: " << e.what() << "\n";
    return 1;
  }
  services::CertificateService certs(*s.gate, *store, nullptr, nullptr);
  const auto res = certs.install_local(local_admin(), *type, *pem,
                                       replace ? security::LocalInstallMode::Replace : security::LocalInstallMode::Add);
  if (!res) return refused(res.error());
  const auto& r = *res;
  for (const auto& w : r.warnings) std::cerr << "warning: " << w << "\n";
  if (!r.accepted()) {
    std::cerr << "error: the certificate was not installed: " << r.reason << "\n";
    return 1;
  }
  std::cout << type_name << ": " << r.reason << "\n";
  if (r.certificate)
    std::cout << "  subject      " << r.certificate->subject << "\n"
              << "  SHA-256      " << r.certificate->fingerprint << "\n";
  for (const auto& gone : r.removed) std::cout << "  replaced     " << gone.subject << " (" << gone.fingerprint << ")\n";
  if (*type == security::CertificateType::CSMSRootCertificate)
    std::cout << "note: csms.ca_file still seeds the CSMS roots when its content changes\n";
  return 0;
}

int pki_install_cert(const config::Config& cfg, const fs::path& chain_file, const services::PolicyFn& policy) {
  const auto pem_read = read_pem_file(chain_file);
  if (!pem_read) return 1;
  const std::string& pem = *pem_read;
  Session s;
  if (!s.open(cfg, policy)) return 1;
  if (!s.identity->has_key(security::kStationKeyLabel)) {
    std::cerr << "error: there is no station key to certify; run `chargeguard pki provision --config FILE --csr-out "
                 "FILE` first\n";
    return 1;
  }
  return install_chain(s, pem, "installed");
}

int pki_show(const config::Config& cfg) {
  try {
    auto store = open_configured_key_store(cfg);
    security::StationIdentity id(*store, cfg.state_dir);
    std::cout << "key store: " << store->backend() << "\n";
    bool any = false;
    for (const char* label : {security::kStationKeyLabel, security::kStationNextKeyLabel}) {
      const auto key = store->find_key(label);
      const auto sum = id.summary(label);
      if (!key && !sum) continue;
      any = true;
      std::cout << "key '" << label << "': "
                << (key ? std::string(security::to_string(key->type)) + (key->non_exportable ? ", non-exportable" : "")
                        : std::string("MISSING"))
                << "\n";
      if (sum) print_summary(label == std::string_view(security::kStationKeyLabel) ? "station certificate"
                                                                                   : "renewed certificate (not yet used)",
                             *sum);
      else
        std::cout << "  no certificate yet (" << id.chain_file(label).string() << ")\n";
    }
    if (!any) {
      std::cout << "not provisioned: run `chargeguard pki provision --config FILE`\n";
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace cg::app
