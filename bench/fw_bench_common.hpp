// Shared by the firmware benchmarks (firmware_bench.cpp, firmware_download_bench.cpp):
// failing, medians, /proc/self/status, throw-away certificates and a packed image.
#pragma once
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "firmware/image_tools.hpp"
#include "security/ossl.hpp"

extern char** environ;

namespace cg::bench {

[[noreturn]] inline void die(const std::string& who, const std::string& m) {
  std::cerr << who << ": " << m << "\n";
  std::exit(1);
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

inline long status_kb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(key.size()));
  }
  return -1;
}

enum class CertKind { Root, CodeSigning, TlsServer };

// A certificate for `key`, issued by `issuer` (self-signed when null), valid from an hour ago for a day.
inline security::X509Ptr make_cert(EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, CertKind kind) {
  security::X509Ptr c(X509_new());
  X509_set_version(c.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(c.get()), 1 + static_cast<int>(kind));
  X509_gmtime_adj(X509_getm_notBefore(c.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), 86400);
  X509_NAME* name = X509_get_subject_name(c.get());
  const char* cn = kind == CertKind::Root ? "Bench Root" : kind == CertKind::CodeSigning ? "Bench Signer" : "localhost";
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(c.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509_set_pubkey(c.get(), key);
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, issuer ? issuer : c.get(), c.get(), nullptr, nullptr, 0);
  const auto add = [&](int nid, const char* v) {
    X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &v3, nid, v);
    X509_add_ext(c.get(), e, -1);
    X509_EXTENSION_free(e);
  };
  const bool ca = kind == CertKind::Root;
  add(NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add(NID_key_usage, ca ? "critical,keyCertSign" : "critical,digitalSignature");
  if (kind == CertKind::CodeSigning) add(NID_ext_key_usage, "codeSigning");
  if (kind == CertKind::TlsServer) {
    add(NID_ext_key_usage, "serverAuth");
    add(NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
  }
  add(NID_subject_key_identifier, "hash");
  add(NID_authority_key_identifier, "keyid:always");
  if (X509_sign(c.get(), issuer_key, EVP_sha256()) <= 0) die("bench", "cannot sign a certificate");
  return c;
}

// Packs a --size-mib MiB pseudo-random payload as `image` (the payload file is removed).
inline void write_image(const std::filesystem::path& work, long size_mib, const std::filesystem::path& image) {
  {
    std::ofstream out(work / "payload", std::ios::binary);
    std::mt19937_64 rng(42);
    std::vector<std::uint64_t> block(1 << 17);  // 1 MiB
    for (long m = 0; m < size_mib; ++m) {
      for (auto& w : block) w = rng();
      out.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(block.size() * 8));
    }
    if (!out) die("bench", "cannot write the payload");
  }
  firmware::Manifest fields;
  fields.model = "CG-BENCH";
  fields.version = "1.0.0";
  auto packed = firmware::pack_image(work / "payload", fields, image);
  if (!packed) die("bench", packed.error().message);
  std::filesystem::remove(work / "payload");
}

// `NAME --dir DIR [--size-mib N] [--reps N]`, and a fresh work directory DIR/TAG-XXXXXX.
struct Args {
  std::filesystem::path dir, work;
  long size_mib = 0;
  int reps = 3;
};
inline Args parse_args(int argc, char** argv, const std::string& name, long default_mib, const char* tag) {
  Args a;
  a.size_mib = default_mib;
  const std::string usage =
      "usage: " + name + " --dir DIR [--size-mib " + std::to_string(default_mib) + "] [--reps 3]";
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) die(name, "missing value for " + k);
      return argv[++i];
    };
    if (k == "--dir") a.dir = next();
    else if (k == "--size-mib") a.size_mib = std::stol(next());
    else if (k == "--reps") a.reps = std::stoi(next());
    else die(name, usage);
  }
  if (a.dir.empty() || a.size_mib < 1 || a.reps < 1) die(name, usage);
  const std::string tmpl = (a.dir / (std::string(tag) + "-XXXXXX")).string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) die(name, "cannot create a directory in " + a.dir.string());
  a.work = buf.data();
  return a;
}

// Wall seconds of a child process (found on PATH; its stdout to /dev/null when asked); dies when it fails.
inline double time_command(std::vector<std::string> args, bool quiet_stdout = false) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (quiet_stdout) posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = ::posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) die("bench", "cannot start " + args[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die("bench", args[0] + " failed");
  return s;
}

}  // namespace cg::bench
