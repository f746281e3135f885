#include "app/firmware_cli.hpp"

#include <openssl/pem.h>

#include <cstdio>
#include <iostream>

#include "firmware/image_tools.hpp"
#include "firmware/verifier.hpp"
#include "security/certificates.hpp"
#include "security/base64.hpp"
#include "security/pkcs11_uri.hpp"
#include "security/secret_file.hpp"

namespace cg::app {
namespace fs = std::filesystem;

namespace {

int error_out(const std::string& text) {
  std::cerr << "error: " << text << "\n";
  return 1;
}

std::string hex(const std::array<std::uint8_t, 32>& b) { return security::hex_encode(b.data(), b.size()); }


Result<security::PrivateKey> load_key(const std::string& spec) {
  if (security::is_pkcs11_uri(spec)) return security::load_pkcs11_private_key(spec);
  const security::BioPtr bio(BIO_new_file(spec.c_str(), "r"));
  if (!bio) {
    ERR_clear_error();
    return fail(Errc::NotFound, "cannot open the key file " + spec);
  }
  // OpenSSL's default callback asks for the passphrase of an encrypted key on the terminal.
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) return fail(Errc::InvalidArgument, security::openssl_error("cannot read a private key from " + spec));
  return security::PrivateKey(key);
}

}  // namespace

std::string read_signature_file(const fs::path& file, std::string& error) {
  auto text = security::read_file_bounded(file, 4096, true);
  if (!text) {
    error = text.error().message;
    return {};
  }
  std::string out;
  for (const char c : *text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    out += c;
  }
  if (out.empty()) error = file.string() + " holds no signature";
  return out;
}

int firmware_pack(const PackOptions& opt) {
  if (opt.security_version < 0 || opt.security_version > firmware::kMaxSecurityVersion) {
    return error_out("--security-version must be 0 to 2147483647");
  }
  firmware::Manifest fields;
  fields.model = opt.model;
  fields.version = opt.version;
  fields.security_version = static_cast<std::uint32_t>(opt.security_version);
  if (auto e = firmware::check_model(fields.model); !e.empty()) return error_out("--model: " + e);
  if (auto e = firmware::check_version(fields.version); !e.empty()) return error_out("--version: " + e);
  auto m = firmware::pack_image(opt.payload, fields, opt.out);
  if (!m) return error_out(m.error().message);
  std::cout << "wrote " << opt.out.string() << ": model " << m->model << ", version " << m->version
            << ", security version " << m->security_version << ", payload " << m->payload_size << " bytes (sha256 "
            << hex(m->payload_sha256) << ")\n";
  return 0;
}

int firmware_sign(const std::string& key_spec, const fs::path& cert_file, const fs::path& image) {
  std::string err;
  const security::X509Ptr cert = security::load_pem_file(cert_file, err);
  if (!cert) return error_out("signing certificate " + cert_file.string() + ": " + err);
  auto key = load_key(key_spec);
  if (!key) return error_out(key.error().message);
  auto sig = firmware::sign_image(image, key->get(), cert.get());
  if (!sig) return error_out(sig.error().message);
  std::cout << *sig << "\n";
  return 0;
}

int firmware_verify(const fs::path& root_file, const fs::path& cert_file, const fs::path& signature_file,
                    const fs::path& image) {
  std::string err;
  const security::CertChain roots = security::load_chain_file(root_file, 16, err);
  if (roots.empty()) return error_out("root certificate file " + root_file.string() + ": " + err);
  std::vector<const X509*> root_ptrs;
  for (const auto& r : roots) root_ptrs.push_back(r.get());
  const auto pem_file = security::read_file_bounded(cert_file, firmware::kMaxSigningCertificatePem, true);
  if (!pem_file) return error_out(pem_file.error().message);
  const std::string& pem = *pem_file;
  const std::string sig = read_signature_file(signature_file, err);
  if (sig.empty()) return error_out(err);

  auto signer = firmware::check_signing_certificate(pem, root_ptrs);
  if (!signer) return error_out(signer.error().message);
  for (const auto& w : signer->warnings) std::cerr << "warning: signing certificate: " << w << "\n";
  auto info = firmware::verify_file(image, *signer, sig, firmware::kMaxPayloadBytes + firmware::kMaxManifestBytes);
  if (!info) return error_out(info.error().message);
  const firmware::Manifest& m = info->manifest;
  std::cout << "valid firmware image, signed by " << info->signer << "\n"
            << "  model             " << m.model << "\n"
            << "  version           " << m.version << "\n"
            << "  security version  " << m.security_version << "\n"
            << "  payload           " << m.payload_size << " bytes, sha256 " << hex(m.payload_sha256) << "\n"
            << "  image             " << info->image_size << " bytes, " << info->digest << " "
            << info->image_digest_hex << "\n";
  return 0;
}

}  // namespace cg::app
