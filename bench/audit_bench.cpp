// bench/audit_bench.cpp — throughput of the security audit log (src/audit/audit_log.cpp)
// against the cost floor of the same work done without it, in the same process,
// the same directory and the same run. See docs/benchmarks.md, "Audit log".
//
//   cg_audit_bench --dir DIR [--seconds 1.0] [--reps 3] [--batch 100] [--verify-records 200000]
//
// DIR must exist; everything the benchmark creates goes into a fresh subdirectory
// of DIR that is removed at the end. Output: one "key value" line per figure on
// stdout (medians over --reps), progress on stderr.
//
// Measures (interleaved per repetition so that drift hits audit log and baseline alike):
//   single   AuditLog::record() in a loop (one durable record per call)
//            baseline: write() of one line of the same length + fdatasync(), in a loop
//   batch    AuditLog::record_batch() of --batch records per call
//            baseline: one write() of --batch such lines + one fdatasync()
//   verify   verify_file(log, &key) over a log of --verify-records records written
//            with record_batch; baselines over the same file bytes, each reading the
//            file (page cache warm) in 256 KiB blocks into one reused buffer:
//              sha256_file        one SHA-256 of the whole file (EVP, in process; what
//                                 `openssl dgst -sha256` does, which is also run once
//                                 per repetition as openssl_dgst when it is installed)
//              crypto_per_record  the crypto the verifier cannot avoid: SHA-256 of each
//                                 body + HMAC-SHA256 of its hash from precomputed
//                                 inner/outer states (EVP_MD_CTX_copy_ex), lines split
//                                 with memchr, no chain checks, no hex
//              evp_mac_per_record the same with EVP_MAC_init/update/final per record
//                                 (how the HMAC was computed before)
//            Each is reported as wall-clock rate (rec_per_s, mb_per_s; the medians the
//            goals use) and as rate per CPU second of this process (cpu_rec_per_s:
//            less sensitive to other tenants stealing the CPU, not to cache sharing).
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "audit/audit_log.hpp"
#include "security/key_store.hpp"
#include "security/secret_file.hpp"

namespace fs = std::filesystem;
using namespace cg::audit;
using Clock = std::chrono::steady_clock;

namespace {

double secs_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// A typical small record: a failed maintenance login with an attempt counter.
// Its stored line is ~330 bytes (printed as audit.line_bytes).
std::tuple<Event, Outcome, Source, Details> sample(long long i) {
  Details d;
  d.number("attempt", i % 5 + 1);
  return {Event::MaintenanceLoginFailed, Outcome::Failure, Source{"LocalMaintenance", "10.0.0.7", "admin"},
          std::move(d)};
}

void write_all(int fd, const std::string& s) {
  const char* p = s.data();
  std::size_t n = s.size();
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("write: ") + std::strerror(errno));
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

// Runs fn(i) until `seconds` have passed (at least min_calls calls); returns calls/s.
double rate(double seconds, long long min_calls, const std::function<void(long long)>& fn) {
  const auto t0 = Clock::now();
  long long calls = 0;
  double el = 0;
  do {
    fn(calls++);
    el = secs_since(t0);
  } while (el < seconds || calls < min_calls);
  return static_cast<double>(calls) / el;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::string s(fs::file_size(p), '\0');
  if (!in.read(s.data(), static_cast<std::streamsize>(s.size()))) throw std::runtime_error("cannot read " + p.string());
  return s;
}

}  // namespace

int main(int argc, char** argv) try {
  fs::path base;
  double seconds = 1.0;
  int reps = 3, batch = 100;
  long long verify_records = 200000;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value for " + a);
      return argv[++i];
    };
    if (a == "--dir") base = val();
    else if (a == "--seconds") seconds = std::stod(val());
    else if (a == "--reps") reps = std::stoi(val());
    else if (a == "--batch") batch = std::stoi(val());
    else if (a == "--verify-records") verify_records = std::stoll(val());
    else throw std::runtime_error("unknown argument " + a + " (see the head of bench/audit_bench.cpp)");
  }
  if (base.empty()) throw std::runtime_error("--dir DIR is required");
  fs::path work = base / ("cg-audit-bench." + std::to_string(::getpid()));
  fs::create_directories(work);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{work};

  Options big;
  big.max_bytes = std::uint64_t{1} << 40;  // capacity is not what is measured here
  // The development key store seals the log's MAC key (unsealed once at open).
  auto keys = cg::security::open_file_key_store({work / "keys"});

  // The line length of a sample record, for baselines of the same size.
  std::size_t line_bytes = 0;
  {
    auto log = AuditLog::open(work / "probe", *keys, big);
    auto [e, o, s, d] = sample(0);
    if (!log->record(e, o, s, d).stored) throw std::runtime_error("record() failed");
    line_bytes = fs::file_size(log_file(work / "probe"));
  }
  std::cout << "audit.line_bytes " << line_bytes << "\n";
  const std::string line = std::string(line_bytes - 1, 'x') + "\n";
  std::string lines;
  for (int i = 0; i < batch; ++i) lines += line;

  std::vector<std::tuple<Event, Outcome, Source, Details>> items;
  for (int i = 0; i < batch; ++i) items.push_back(sample(i));

  std::vector<double> single, single_base, batched, batched_base;
  for (int r = 0; r < reps; ++r) {
    std::cerr << "==> audit rep " << r + 1 << "/" << reps << "\n";
    const fs::path d1 = work / ("single-" + std::to_string(r)), d2 = work / ("batch-" + std::to_string(r));
    {
      auto log = AuditLog::open(d1, *keys, big);
      single.push_back(rate(seconds, 20, [&](long long i) {
        auto [e, o, s, d] = sample(i);
        if (!log->record(e, o, s, d).stored) throw std::runtime_error("record() failed");
      }));
    }
    {
      const int fd = ::open((d1 / "plain.log").c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
      if (fd < 0) throw std::runtime_error("open plain.log");
      single_base.push_back(rate(seconds, 20, [&](long long) {
        write_all(fd, line);
        if (::fdatasync(fd) != 0) throw std::runtime_error("fdatasync");
      }));
      ::close(fd);
    }
    {
      auto log = AuditLog::open(d2, *keys, big);
      batched.push_back(batch * rate(seconds, 5, [&](long long) {
        for (const auto& res : log->record_batch(items))
          if (!res.stored) throw std::runtime_error("record_batch() failed");
      }));
    }
    {
      const int fd = ::open((d2 / "plain.log").c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
      if (fd < 0) throw std::runtime_error("open plain.log");
      batched_base.push_back(batch * rate(seconds, 5, [&](long long) {
        write_all(fd, lines);
        if (::fdatasync(fd) != 0) throw std::runtime_error("fdatasync");
      }));
      ::close(fd);
    }
    fs::remove_all(d1);
    fs::remove_all(d2);
  }
  std::cout << "audit.single.per_s " << median(single) << "\n"
            << "audit.single.base_per_s " << median(single_base) << "\n"
            << "audit.batch.per_s " << median(batched) << "\n"
            << "audit.batch.base_per_s " << median(batched_base) << "\n";

  // ---- verification: a log of verify_records records, written with record_batch
  std::cerr << "==> audit: writing " << verify_records << " records for verification\n";
  const fs::path vd = work / "verify";
  {
    auto log = AuditLog::open(vd, *keys, big);
    std::vector<std::tuple<Event, Outcome, Source, Details>> chunk;
    const auto t0 = Clock::now();
    for (long long i = 0; i < verify_records;) {
      chunk.clear();
      for (int k = 0; k < 1000 && i < verify_records; ++k, ++i) chunk.push_back(sample(i));
      for (const auto& res : log->record_batch(chunk))
        if (!res.stored) throw std::runtime_error("record_batch() failed");
    }
    std::cout << "audit.fill.per_s " << static_cast<double>(verify_records) / secs_since(t0) << "\n";
  }
  const fs::path vf = log_file(vd);
  const auto key = cg::audit::load_key(vd, *keys);
  const double file_mb = static_cast<double>(fs::file_size(vf)) / 1048576.0;
  std::cout << "audit.verify.file_mb " << file_mb << "\n";
  (void)read_file(vf);  // page cache warm for all contenders

  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* mctx = EVP_MAC_CTX_new(mac);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_END};
  if (!md || !ctx || !mctx || EVP_MAC_init(mctx, key.data(), key.size(), params) != 1)
    throw std::runtime_error("OpenSSL init failed");
  // HMAC states after the key pads (RFC 2104), for the precomputed-HMAC baseline.
  EVP_MD_CTX* ictx = EVP_MD_CTX_new();
  EVP_MD_CTX* octx = EVP_MD_CTX_new();
  EVP_MD_CTX* wctx = EVP_MD_CTX_new();
  {
    unsigned char ipad[64], opad[64];
    for (std::size_t i = 0; i < 64; ++i) {
      ipad[i] = static_cast<unsigned char>((i < key.size() ? key[i] : 0) ^ 0x36);
      opad[i] = static_cast<unsigned char>((i < key.size() ? key[i] : 0) ^ 0x5c);
    }
    if (!ictx || !octx || !wctx || EVP_DigestInit_ex(ictx, md, nullptr) != 1 || EVP_DigestUpdate(ictx, ipad, 64) != 1 ||
        EVP_DigestInit_ex(octx, md, nullptr) != 1 || EVP_DigestUpdate(octx, opad, 64) != 1)
      throw std::runtime_error("OpenSSL init failed");
  }

  // Reads `vf` in 256 KiB blocks, handing each complete line (without '\n') to fn.
  std::vector<char> buf(256 * 1024 + 64 * 1024);
  auto for_lines = [&](const std::function<void(const char*, std::size_t)>& fn) {
    const int fd = ::open(vf.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("open " + vf.string());
    std::size_t have = 0;
    for (;;) {
      const ssize_t n = ::read(fd, buf.data() + have, buf.size() - have);
      if (n < 0) throw std::runtime_error("read");
      if (n == 0) break;
      have += static_cast<std::size_t>(n);
      std::size_t pos = 0;
      while (const void* nl = std::memchr(buf.data() + pos, '\n', have - pos)) {
        const auto end = static_cast<std::size_t>(static_cast<const char*>(nl) - buf.data());
        fn(buf.data() + pos, end - pos);
        pos = end + 1;
      }
      std::memmove(buf.data(), buf.data() + pos, have - pos);
      have -= pos;
    }
    ::close(fd);
  };
  auto for_blocks = [&](const std::function<void(const char*, std::size_t)>& fn) {
    const int fd = ::open(vf.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("open " + vf.string());
    for (ssize_t n; (n = ::read(fd, buf.data(), 256 * 1024)) != 0;) {
      if (n < 0) throw std::runtime_error("read");
      fn(buf.data(), static_cast<std::size_t>(n));
    }
    ::close(fd);
  };
  auto sha256 = [&](const char* p, std::size_t n, unsigned char out[32]) {
    unsigned int len = 0;
    if (EVP_DigestInit_ex(ctx, md, nullptr) != 1 || EVP_DigestUpdate(ctx, p, n) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &len) != 1)
      throw std::runtime_error("SHA-256");
  };

  // Wall and CPU seconds of one call.
  struct Times {
    std::vector<double> wall, cpu;
  };
  auto cpu_now = [] {
    timespec t{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
  };
  auto timed = [&](Times& t, const std::function<void()>& fn) {
    const double c0 = cpu_now();
    const auto t0 = Clock::now();
    fn();
    t.wall.push_back(secs_since(t0));
    t.cpu.push_back(cpu_now() - c0);
  };
  // `openssl dgst -sha256 FILE` as a child process (wall time; its CPU is not ours).
  const std::string dgst_cmd = "openssl dgst -sha256 '" + vf.string() + "' > /dev/null 2>&1";
  bool have_openssl = vf.string().find('\'') == std::string::npos;

  Times ver, ver_nokey, whole, perrec, evpmac, dgst;
  for (int r = 0; r < reps; ++r) {
    std::cerr << "==> audit verify rep " << r + 1 << "/" << reps << "\n";
    timed(ver, [&] {
      const VerifyResult v = verify_file(vf, &key);
      if (!v.ok || v.records != static_cast<std::uint64_t>(verify_records))
        throw std::runtime_error("verify_file: " + v.problem);
    });
    timed(ver_nokey, [&] {
      const VerifyResult v = verify_file(vf, nullptr);
      if (!v.ok) throw std::runtime_error("verify_file (no key): " + v.problem);
    });

    // Baseline 1: SHA-256 of the whole file (read + hash), like `openssl dgst -sha256`.
    timed(whole, [&] {
      unsigned char h[32];
      unsigned int n = 0;
      if (EVP_DigestInit_ex(ctx, md, nullptr) != 1) throw std::runtime_error("SHA-256");
      for_blocks([&](const char* p, std::size_t len) {
        if (EVP_DigestUpdate(ctx, p, len) != 1) throw std::runtime_error("SHA-256");
      });
      if (EVP_DigestFinal_ex(ctx, h, &n) != 1) throw std::runtime_error("SHA-256");
    });
    if (have_openssl) {
      const auto t0 = Clock::now();
      const int rc = std::system(dgst_cmd.c_str());
      if (rc == 0) dgst.wall.push_back(secs_since(t0));
      else have_openssl = false;
    }

    // Baseline 2: the verifier's unavoidable crypto — SHA-256 of each body + HMAC of
    // its hash from precomputed states — over the file read once.
    timed(perrec, [&] {
      std::size_t count = 0;
      for_lines([&](const char* p, std::size_t len) {
        const void* t = ::memchr(p, '\t', len);
        unsigned char h[32], in[32], m[32];
        unsigned int n = 0;
        sha256(p, static_cast<std::size_t>(static_cast<const char*>(t) - p), h);
        if (EVP_MD_CTX_copy_ex(wctx, ictx) != 1 || EVP_DigestUpdate(wctx, h, 32) != 1 ||
            EVP_DigestFinal_ex(wctx, in, &n) != 1 || EVP_MD_CTX_copy_ex(wctx, octx) != 1 ||
            EVP_DigestUpdate(wctx, in, 32) != 1 || EVP_DigestFinal_ex(wctx, m, &n) != 1)
          throw std::runtime_error("HMAC");
        ++count;
      });
      if (count != static_cast<std::size_t>(verify_records)) throw std::runtime_error("baseline record count");
    });

    // Baseline 3: as 2, with EVP_MAC_init/update/final per record.
    timed(evpmac, [&] {
      std::size_t count = 0;
      for_lines([&](const char* p, std::size_t len) {
        const void* t = ::memchr(p, '\t', len);
        unsigned char h[32], m[32];
        std::size_t mn = 0;
        sha256(p, static_cast<std::size_t>(static_cast<const char*>(t) - p), h);
        if (EVP_MAC_init(mctx, nullptr, 0, nullptr) != 1 || EVP_MAC_update(mctx, h, 32) != 1 ||
            EVP_MAC_final(mctx, m, &mn, 32) != 1)
          throw std::runtime_error("HMAC");
        ++count;
      });
      if (count != static_cast<std::size_t>(verify_records)) throw std::runtime_error("baseline record count");
    });
  }
  EVP_MD_CTX_free(wctx);
  EVP_MD_CTX_free(octx);
  EVP_MD_CTX_free(ictx);
  EVP_MAC_CTX_free(mctx);
  EVP_MAC_free(mac);
  EVP_MD_CTX_free(ctx);
  EVP_MD_free(md);

  const double n = static_cast<double>(verify_records);
  auto out = [&](const char* k, const Times& t) {
    if (t.wall.empty()) return;
    const double s = median(t.wall);
    std::cout << "audit.verify." << k << ".rec_per_s " << n / s << "\n"
              << "audit.verify." << k << ".mb_per_s " << file_mb / s << "\n";
    if (!t.cpu.empty()) std::cout << "audit.verify." << k << ".cpu_rec_per_s " << n / median(t.cpu) << "\n";
  };
  out("key", ver);
  out("nokey", ver_nokey);
  out("sha256_file", whole);
  out("openssl_dgst", dgst);
  out("crypto_per_record", perrec);
  out("evp_mac_per_record", evpmac);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "cg_audit_bench: " << e.what() << "\n";
  return 1;
}
