#include "security/web_identity.hpp"

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <chrono>
#include <stdexcept>

#include "security/x509_issue.hpp"
#include "security/secret_file.hpp"
#include "security/station_identity.hpp"

namespace cg::security {
namespace fs = std::filesystem;
namespace {

fs::path cert_file(const fs::path& state_dir) { return state_dir / "web" / "server.crt"; }

bool names_host(X509* cert, const std::string& host) {
  if (host.empty()) return true;
  return x509::is_ip_literal(host) ? X509_check_ip_asc(cert, host.c_str(), 0) == 1
                                             : X509_check_host(cert, host.c_str(), host.size(), 0, nullptr) == 1;
}

bool fresh(const X509* cert) {
  return not_after(cert) - std::chrono::system_clock::now() > std::chrono::hours(24 * 30) &&
         not_before(cert) <= std::chrono::system_clock::now();
}

}  // namespace

std::string sha256_fingerprint(const X509* cert) { return summarize(cert).sha256_fingerprint; }

X509Ptr load_web_certificate(const fs::path& state_dir) {
  std::string err;
  if (!fs::exists(cert_file(state_dir))) return nullptr;
  return load_pem_file(cert_file(state_dir), err);
}

WebIdentity ensure_web_identity(KeyStore& keys, const fs::path& state_dir, const std::string& listen_host,
                                const std::string& common_name) {
  WebIdentity id;
  const bool any = listen_host == "0.0.0.0" || listen_host == "::";
  const std::string host = any ? "localhost" : listen_host;
  if (!keys.find_key(kWebKeyLabel)) {
    keys.generate_key(kWebKeyLabel, KeyType::EcP256);
    id.created = true;
  }
  id.key = keys.private_key(kWebKeyLabel);
  X509Ptr cert = id.created ? nullptr : load_web_certificate(state_dir);
  if (cert && (X509_check_private_key(cert.get(), id.key.get()) != 1 || !fresh(cert.get()) ||
               !names_host(cert.get(), host)))
    cert.reset();
  if (!cert) {
    std::string err;
    const x509::CertSpec spec{x509::Profile::TlsServer, common_name, "chargeguard maintenance",
                                        kWebCertificateDays, host};
    cert = x509::issue(spec, id.key.get(), nullptr, id.key.get(), err);
    if (!cert) throw std::runtime_error("web server certificate: " + err);
    fs::create_directories(state_dir / "web");
    ::chmod((state_dir / "web").c_str(), 0700);
    if (auto w = write_file_durably(cert_file(state_dir).string(), to_pem(cert.get())); !w)
      throw std::runtime_error("web server certificate: " + w.error().message);
    id.created = true;
  }
  id.fingerprint = sha256_fingerprint(cert.get());
  id.certificate = std::move(cert);
  return id;
}

}  // namespace cg::security
