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


namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace cg;

namespace {

[[noreturn]] void die(const std::string& m) { bench::die("cg_firmware_bench", m); }
using bench::median;
using bench::status_kb;

// Wall seconds of `openssl dgst -sha256 file` (stdout to /dev/null).
double time_openssl_dgst(const fs::path& file) {
  return bench::time_command({"openssl", "dgst", "-sha256", file.string()}, true);
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv, "cg_firmware_bench", 1024, "cg-fwbench");
  const long size_mib = args.size_mib;
  const int reps = args.reps;
  const fs::path work = args.work;

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
