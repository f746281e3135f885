// bench/firmware_download_bench.cpp — the L01 download path (ocpp/https_get.cpp
// streaming into firmware/slot_io.cpp's SlotWriter: TLS, whole-file and
// payload SHA-256, ECDSA, write, fsync, rename) against `curl` writing the
// same file to disk, from the same HTTPS server over loopback, same run.
// See docs/benchmarks.md, "Firmware download".
//
//   cg_firmware_download_bench --dir DIR [--size-mib 256] [--reps 3]
//
// The server is a thread of this process: blocking OpenSSL (TLS 1.3,
// P-256 certificate for localhost/127.0.0.1 under a throw-away root), one
// connection at a time, the image sent in 256 KiB writes. Per repetition
// (interleaved): ours = HttpsGet → SlotWriter → finish() (verified, durable);
// curl = `curl -sS --cacert ROOT -o FILE https://127.0.0.1:PORT/image` as a
// child process. Wall times; output "key value" lines on stdout (medians).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "firmware/slot_io.hpp"
#include "firmware/slots.hpp"
#include "firmware/verifier.hpp"
#include "fw_bench_common.hpp"
#include "ocpp/https_get.hpp"
#include "security/certificates.hpp"


namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace cg;

namespace {

[[noreturn]] void die(const std::string& m) { bench::die("cg_firmware_download_bench", m); }

// The HTTPS server thread: answers every GET with the image.
class Server {
 public:
  Server(const fs::path& image, X509* cert, EVP_PKEY* key) : image_(image) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate(ctx_, cert) != 1 || SSL_CTX_use_PrivateKey(ctx_, key) != 1) die("server key");
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 8) != 0) die("listen");
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~Server() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
    SSL_CTX_free(ctx_);
  }
  int port() const { return port_; }

 private:
  void serve() {
    std::vector<char> buf(256 * 1024);
    while (!stop_) {
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, c);
      if (SSL_accept(ssl) == 1) {
        std::string req;
        char rb[4096];
        while (req.find("\r\n\r\n") == std::string::npos) {
          const int n = SSL_read(ssl, rb, sizeof rb);
          if (n <= 0) break;
          req.append(rb, static_cast<std::size_t>(n));
        }
        const auto size = fs::file_size(image_);
        const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                                 std::to_string(size) + "\r\nConnection: close\r\n\r\n";
        SSL_write(ssl, head.data(), static_cast<int>(head.size()));
        std::ifstream in(image_, std::ios::binary);
        while (in) {
          in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
          const auto n = in.gcount();
          if (n <= 0) break;
          if (SSL_write(ssl, buf.data(), static_cast<int>(n)) <= 0) break;
        }
        SSL_shutdown(ssl);
      }
      SSL_free(ssl);
      ::close(c);
    }
  }
  fs::path image_;
  SSL_CTX* ctx_ = nullptr;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

double time_curl(const std::string& url, const fs::path& ca, const fs::path& out) {
  return bench::time_command({"curl", "-sS", "--cacert", ca.string(), "-o", out.string(), url});
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv, "cg_firmware_download_bench", 256, "cg-fwdl");
  const long size_mib = args.size_mib;
  const int reps = args.reps;
  const fs::path work = args.work;
  std::cerr << "writing a " << size_mib << " MiB image in " << work << "\n";
  const fs::path image = work / "image.cgfw";
  bench::write_image(work, size_mib, image);

  security::PkeyPtr root_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  security::PkeyPtr sign_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  security::PkeyPtr tls_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  const auto root = bench::make_cert(root_key.get(), nullptr, root_key.get(), bench::CertKind::Root);
  const auto signer_cert = bench::make_cert(sign_key.get(), root.get(), root_key.get(), bench::CertKind::CodeSigning);
  const auto tls_cert = bench::make_cert(tls_key.get(), root.get(), root_key.get(), bench::CertKind::TlsServer);
  auto sig = firmware::sign_image(image, sign_key.get(), signer_cert.get());
  if (!sig) die(sig.error().message);
  const fs::path ca = work / "root.pem";
  std::ofstream(ca) << security::to_pem(root.get());
  const std::uint64_t image_bytes = fs::file_size(image);

  Server server(image, tls_cert.get(), tls_key.get());
  const std::string url = "https://127.0.0.1:" + std::to_string(server.port()) + "/image";
  firmware::SlotStore slots(work / "firmware");

  long chunks = 0;
  const auto ours_once = [&]() {
    chunks = 0;
    auto signer = firmware::check_signing_certificate(security::to_pem(signer_cert.get()), {root.get()});
    if (!signer) die(signer.error().message);
    auto v = firmware::ImageVerifier::create(*signer, *sig, image_bytes, firmware::ImageVerifier::Hashing::Background);
    if (!v) die(v.error().message);
    auto w = firmware::SlotWriter::open(slots, firmware::Slot::B, std::move(*v), *sig, security::to_pem(signer_cert.get()));
    if (!w) die(w.error().message);
    boost::asio::io_context io;
    ocpp::HttpsGet::Settings s;
    auto u = ocpp::parse_upload_url(url);
    s.url = *u;
    s.ca_file = ca.string();
    s.max_body = image_bytes;
    std::optional<std::string> failure;
    auto get = ocpp::HttpsGet::start(
        io, s, [&](std::span<const std::uint8_t> b) { ++chunks; return w->write(b); },
        [&](bool ok, const std::string& detail) {
          if (!ok) failure = detail;
        });
    const auto t0 = Clock::now();
    io.run();
    const auto t1 = Clock::now();
    if (failure) die("download: " + *failure);
    auto info = w->finish();
    std::cerr << "chunks " << chunks << " download " << std::chrono::duration<double>(t1 - t0).count() << " s, finish "
              << std::chrono::duration<double>(Clock::now() - t1).count() << " s\n";
    if (!info) die(info.error().message);
  };

  ours_once();  // warm-up (and a check that it works)
  time_curl(url, ca, work / "curl.out");
  std::vector<double> ours, theirs;
  for (int r = 0; r < reps; ++r) {
    std::cerr << "repetition " << (r + 1) << "/" << reps << "\n";
    const auto t0 = Clock::now();
    ours_once();
    ours.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    theirs.push_back(time_curl(url, ca, work / "curl.out"));
  }
  const double mib = static_cast<double>(image_bytes) / (1024.0 * 1024.0);
  std::cout << "dl.image_mib " << mib << "\n"
            << "dl.ours.s " << bench::median(ours) << "\n"
            << "dl.ours.mib_per_s " << mib / bench::median(ours) << "\n"
            << "dl.curl.s " << bench::median(theirs) << "\n"
            << "dl.curl.mib_per_s " << mib / bench::median(theirs) << "\n"
            << "dl.ratio " << bench::median(ours) / bench::median(theirs) << "\n";
  fs::remove_all(work);
  return 0;
}
