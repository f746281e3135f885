// bench/firmware_bench.cpp — firmware verification (src/firmware/verifier.cpp)
// against `openssl dgst -sha256` on the same file, same run. See
// docs/benchmarks.md, "Firmware verification".
//
//   cg_firmware_bench --dir DIR [--size-mib 1024] [--reps 3]
//
// Builds an image of --size-mib MiB of payload in a fresh subdirectory of DIR
// (removed at the end), signs it with a P-256 key whose code-signing
// certificate chains to an in-memory root, then per repetition (interleaved,
// page cache warm for both):
//   verify   check_signing_certificate + verify_file (whole-file SHA-256 +
//            payload SHA-256 on a second thread + ECDSA), wall time
//   openssl  `openssl dgst -sha256 IMAGE` as a child process, wall time
// and, once, the peak RSS growth of verify_file in this process: VmHWM reset
// (/proc/self/clear_refs "5"), VmRSS before, VmHWM after.
// Output: "key value" lines on stdout (medians), progress on stderr.
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "firmware/image_tools.hpp"
#include "fw_bench_common.hpp"
#include "firmware/verifier.hpp"
#include "security/certificates.hpp"
#include "security/ossl.hpp"

extern char** environ;

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace cg;

namespace {

[[noreturn]] void die(const std::string& m) { bench::die("cg_firmware_bench", m); }
using bench::median;
using bench::status_kb;

// Wall seconds of `openssl dgst -sha256 file` (stdout to /dev/null).
double time_openssl_dgst(const fs::path& file) {
  std::vector<std::string> args{"openssl", "dgst", "-sha256", file.string()};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const auto t0 = Clock::now();
  if (::posix_spawnp(&pid, "openssl", &fa, nullptr, argv.data(), environ) != 0) die("cannot start openssl");
  posix_spawn_file_actions_destroy(&fa);
  int st = 0;
  ::waitpid(pid, &st, 0);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die("openssl dgst failed");
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path dir;
  long size_mib = 1024;
  int reps = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--dir") dir = next();
    else if (a == "--size-mib") size_mib = std::stol(next());
    else if (a == "--reps") reps = std::stoi(next());
    else die("usage: cg_firmware_bench --dir DIR [--size-mib 1024] [--reps 3]");
  }
  if (dir.empty() || size_mib < 1 || reps < 1) die("usage: cg_firmware_bench --dir DIR [--size-mib 1024] [--reps 3]");
  char tmpl_buf[4096];
  std::snprintf(tmpl_buf, sizeof tmpl_buf, "%s/cg-fwbench-XXXXXX", dir.c_str());
  if (!::mkdtemp(tmpl_buf)) die("cannot create a directory in " + dir.string());
  const fs::path work = tmpl_buf;

  std::cerr << "writing a " << size_mib << " MiB image in " << work << "\n";
  bench::write_image(work, size_mib, work / "image.cgfw");

  security::PkeyPtr root_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  security::PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  const security::X509Ptr root = bench::make_cert(root_key.get(), nullptr, root_key.get(), bench::CertKind::Root);
  const security::X509Ptr cert = bench::make_cert(key.get(), root.get(), root_key.get(), bench::CertKind::CodeSigning);
  auto sig = firmware::sign_image(work / "image.cgfw", key.get(), cert.get());
  if (!sig) die(sig.error().message);
  const std::string pem = security::to_pem(cert.get());
  const std::uint64_t image_bytes = fs::file_size(work / "image.cgfw");

  const auto verify_once = [&]() {
    auto signer = firmware::check_signing_certificate(pem, {root.get()});
    if (!signer) die(signer.error().message);
    auto info = firmware::verify_file(work / "image.cgfw", *signer, *sig, image_bytes);
    if (!info) die(info.error().message);
  };

  // Warm the page cache for both (the image was just written, but be sure).
  time_openssl_dgst(work / "image.cgfw");

  // Peak RSS growth of one verification.
  {
    std::ofstream("/proc/self/clear_refs") << "5";
    const long before = status_kb("VmRSS");
    verify_once();
    const long hwm = status_kb("VmHWM");
    std::cout << "fw.verify.rss_before_kb " << before << "\n"
              << "fw.verify.peak_rss_growth_kb " << (hwm - before) << "\n";
  }

  std::vector<double> ours, theirs;
  for (int r = 0; r < reps; ++r) {
    std::cerr << "repetition " << (r + 1) << "/" << reps << "\n";
    const auto t0 = Clock::now();
    verify_once();
    ours.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    theirs.push_back(time_openssl_dgst(work / "image.cgfw"));
  }
  const double mib = static_cast<double>(image_bytes) / (1024.0 * 1024.0);
  std::cout << "fw.image_mib " << mib << "\n"
            << "fw.verify.s " << median(ours) << "\n"
            << "fw.verify.mib_per_s " << mib / median(ours) << "\n"
            << "fw.openssl_dgst.s " << median(theirs) << "\n"
            << "fw.openssl_dgst.mib_per_s " << mib / median(theirs) << "\n"
            << "fw.verify.ratio " << median(theirs) / median(ours) << "\n";
  fs::remove_all(work);
  return 0;
}
