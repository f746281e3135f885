// REQ: COM-2, COM-7 (development PKI only)
//
// Throw-away PKI for development and integration tests, behind
// `chargeguard pki dev-init --out DIR`. It writes, into DIR:
//
//   csms-root-ca.pem / .key          root CA the station trusts for the CSMS
//   csms-server.pem / .key           CSMS TLS server certificate (leaf only),
//                                    CN = csms_host, SAN DNS:csms_host,
//                                    IP:127.0.0.1, IP:::1, signed by the CSMS root
//   manufacturer-root-ca.pem / .key  ManufacturerRootCertificate (firmware)
//   firmware-signer.pem / .key       firmware signing certificate, signed by the
//                                    manufacturer root: CA:FALSE, keyUsage
//                                    digitalSignature, extendedKeyUsage
//                                    codeSigning (critical)
//   operator-root-ca.pem / .key      CA that signs station (client) certificates
//   README.txt                       says all of this is for development only
//
// All keys are ECDSA P-256, all signatures SHA-256, serials are 128-bit random.
// Private keys are unencrypted PKCS#8 PEM with mode 0600; DIR is created with
// mode 0700 when missing. Existing files are never overwritten: if any target
// file already exists nothing is written and the error names that file. On any
// failure the files written by this call are removed again.
//
// Not for production: the keys are unprotected on disk and nothing here is
// backed by an HSM, a CRL or an OCSP responder.
#pragma once
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace cg::security {

struct DevPkiOptions {
  // Host name (or IP address literal) the CSMS server certificate is issued for.
  // Letters, digits, '-' and '.' only, at most 64 characters (it is also the CN).
  std::string csms_host = "localhost";
  // Validity of every certificate, counted from now (1 … 36500 days).
  int validity_days = 365;
  // Subject O of every certificate (1 … 64 characters).
  std::string organization = "chargeguard dev";
};

struct DevPkiResult {
  bool ok = false;
  std::string error;                              // set when !ok: names the file or the step
  std::vector<std::filesystem::path> written;     // files created (empty when !ok)
};

// Generates the development PKI into out_dir. Never throws; errors are reported
// in the result.
DevPkiResult dev_pki_init(const std::filesystem::path& out_dir, const DevPkiOptions& opt = {});

// Development only: issues a TLS client certificate (station certificate) for
// a PKCS#10 request, signed by a CA whose key is a file (operator-root-ca of
// dev-init). The request's signature must verify; its CN and O are copied;
// basicConstraints CA:FALSE, keyUsage digitalSignature, extendedKeyUsage
// clientAuth, SHA-256, 128-bit random serial. Never throws.
struct DevSignResult {
  bool ok = false;
  std::string error;
  std::string certificate_pem;
};
DevSignResult dev_pki_sign_csr(std::string_view csr_pem, const std::filesystem::path& ca_cert_file,
                               const std::filesystem::path& ca_key_file, int validity_days = 365);

}  // namespace cg::security
