// `chargeguard pki …`: the station's identity for security profile 3 (COM-4).
//
//   provision     generates the station key pair inside the configured key
//                 store (never exported) and a PKCS#10 request with CN = serial
//                 number, O = organization; then either signs it with a
//                 development CA (--ca-cert/--ca-key: development and tests
//                 only) or writes the request for the operator's CA (--csr-out)
//   install-cert  stores the certificate chain the operator's CA issued for
//                 that key (checked: chain to csms.client_ca_file, crypto
//                 policy, key, CN/O)
//   install-root  pins a root certificate (the first ManufacturerRootCertificate,
//                 which OCPP can only replace by a successor it signed; or
//                 another root type) in the certificate store, next to the
//                 others (default) or replacing them (--replace)
//   show          prints the station certificate, its key and any renewal
//
// provision, install-cert and install-root refuse while a daemon owns the state directory,
// ask the one policy (ManageSecuritySettings, as a local admin named by the OS
// account) and write a ReconfigurationOfSecurityParameters audit record.
// REQ: COM-4, COM-7
#pragma once
#include <filesystem>
#include <string>

#include "core/config.hpp"
#include "security/key_store.hpp"
#include "services/gate.hpp"

namespace cg::app {

struct ProvisionOptions {
  std::filesystem::path ca_cert, ca_key;  // development CA (both or neither)
  std::filesystem::path csr_out;          // where the request goes without a CA ("-" = stdout)
  int days = 365;
  std::string key_type = "ec-p256";  // ec-p256, ec-p384, rsa-3072
};

// `policy`: the one policy (a test injects another to prove the commands ask it).
int pki_provision(const config::Config& cfg, const ProvisionOptions& opt,
                  const services::PolicyFn& policy = &policy::authorize);
int pki_install_cert(const config::Config& cfg, const std::filesystem::path& chain_file,
                     const services::PolicyFn& policy = &policy::authorize);
int pki_show(const config::Config& cfg);
int pki_install_root(const config::Config& cfg, const std::string& type, const std::filesystem::path& file, bool replace,
                     const services::PolicyFn& policy = &policy::authorize);

// The key store the configuration names ([key_store]); throws KeyStoreError.
std::unique_ptr<security::KeyStore> open_configured_key_store(const config::Config& cfg);

}  // namespace cg::app
