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
//            with record_batch; baselines over the same file bytes: one SHA-256 of the
//            whole file (EVP, in process), and SHA-256 + HMAC per record body (the
//            cryptographic work the verifier cannot avoid), reading the file once.
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <sys/stat.h>
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

  // The line length of a sample record, for baselines of the same size.
  std::size_t line_bytes = 0;
  {
    auto log = AuditLog::open(work / "probe", big);
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
      auto log = AuditLog::open(d1, big);
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
      auto log = AuditLog::open(d2, big);
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
    auto log = AuditLog::open(vd, big);
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
  const auto key = cg::security::load_or_create_secret((vd / "audit.key").string());
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

  std::vector<double> ver, ver_nokey, whole, perrec;
  for (int r = 0; r < reps; ++r) {
    std::cerr << "==> audit verify rep " << r + 1 << "/" << reps << "\n";
    auto t0 = Clock::now();
    const VerifyResult v = verify_file(vf, &key);
    ver.push_back(secs_since(t0));
    if (!v.ok || v.records != static_cast<std::uint64_t>(verify_records))
      throw std::runtime_error("verify_file: " + v.problem);
    t0 = Clock::now();
    const VerifyResult v2 = verify_file(vf, nullptr);
    ver_nokey.push_back(secs_since(t0));
    if (!v2.ok) throw std::runtime_error("verify_file (no key): " + v2.problem);

    // Baseline 1: SHA-256 of the whole file (read + hash), like `openssl dgst -sha256`.
    t0 = Clock::now();
    {
      const std::string data = read_file(vf);
      unsigned char h[32];
      unsigned int n = 0;
      if (EVP_DigestInit_ex(ctx, md, nullptr) != 1 || EVP_DigestUpdate(ctx, data.data(), data.size()) != 1 ||
          EVP_DigestFinal_ex(ctx, h, &n) != 1)
        throw std::runtime_error("SHA-256");
    }
    whole.push_back(secs_since(t0));

    // Baseline 2: the verifier's unavoidable crypto — SHA-256 of each body + HMAC of
    // each hash, contexts fetched once — over the file read once.
    t0 = Clock::now();
    {
      const std::string data = read_file(vf);
      std::size_t pos = 0, count = 0;
      while (pos < data.size()) {
        const auto nl = data.find('\n', pos);
        const auto t1 = data.find('\t', pos);
        unsigned char h[32], m[32];
        unsigned int n = 0;
        std::size_t mn = 0;
        if (EVP_DigestInit_ex(ctx, md, nullptr) != 1 || EVP_DigestUpdate(ctx, data.data() + pos, t1 - pos) != 1 ||
            EVP_DigestFinal_ex(ctx, h, &n) != 1 || EVP_MAC_init(mctx, nullptr, 0, nullptr) != 1 ||
            EVP_MAC_update(mctx, h, 32) != 1 || EVP_MAC_final(mctx, m, &mn, 32) != 1)
          throw std::runtime_error("SHA-256/HMAC");
        ++count;
        pos = nl + 1;
      }
      if (count != static_cast<std::size_t>(verify_records)) throw std::runtime_error("baseline record count");
    }
    perrec.push_back(secs_since(t0));
  }
  EVP_MAC_CTX_free(mctx);
  EVP_MAC_free(mac);
  EVP_MD_CTX_free(ctx);
  EVP_MD_free(md);

  const double n = static_cast<double>(verify_records);
  auto out = [&](const char* k, const std::vector<double>& t) {
    const double s = median(t);
    std::cout << "audit.verify." << k << ".rec_per_s " << n / s << "\n"
              << "audit.verify." << k << ".mb_per_s " << file_mb / s << "\n";
  };
  out("key", ver);
  out("nokey", ver_nokey);
  out("sha256_file", whole);
  out("crypto_per_record", perrec);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "cg_audit_bench: " << e.what() << "\n";
  return 1;
}
