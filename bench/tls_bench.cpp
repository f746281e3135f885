// bench/tls_bench.cpp — security profile 3 (issue 4): full TLS handshakes to the dev
// CSMS with the station key in the PKCS#11 store (SoftHSM2) and in the file store,
// against a plain in-memory OpenSSL key as the same-run baseline; plus the bare
// client-side signature per key kind. See docs/benchmarks.md, "Profile 3".
//
//   cg_tls_bench --dir DIR --csms tools/dev-csms/csms.js [--node node] [--handshakes 200]
//                [--warmup 10] [--signs 300] [--module /usr/lib/softhsm/libsofthsm2.so] [--keep]
//
// DIR must exist; everything the benchmark creates goes into a fresh subdirectory of
// DIR that is removed at the end (--keep leaves it, with the CSMS log):
//   pki/        dev_pki_init (the CSMS server certificate and the operator CA)
//   softhsm/    softhsm2.conf, tokens/, pin (0600): a token made with
//               `softhsm2-util --init-token --free` and random SO/user PINs
//   keys/       the file key store
// Three P-256 station keys, each with a client certificate signed by the dev operator CA
// (dev_pki_sign_csr; CN = the serial the CSMS is told about, O = the organization):
//   mem   EVP_EC_gen("P-256"), an ordinary in-process OpenSSL key: the baseline
//   file  generate_key("station") in the file key store, private_key() used in place
//   p11   generate_key("station") in the PKCS#11 key store (SoftHSM2 via libp11), in place
// The bench then starts the dev CSMS as its child (`node csms.js --host 127.0.0.1 --port 0
// --cert … --key … --ca operator-root-ca.pem --require-client-cert --organization ORG
// --station BENCH-MEM=SN-BENCH-MEM …`), checks once per kind that the CSMS accepts the
// certificate at the OCPP level (a WebSocket upgrade to /ocpp/<identity> answered 101:
// chain, CN and O checked by the CSMS), and stops it at the end.
//
// Measures (all kinds interleaved in rounds, their order rotated each round, so that
// drift and other tenants hit all kinds alike):
//   handshake  TCP connect + TLS handshake + clean shutdown (our close_notify, then the
//              peer's close_notify or EOF), a new socket and SSL each time, no session
//              resumption (checked). The client context is the station's: configure_tls_client
//              (CA = csms-root-ca.pem) + use_client_identity, set_tls_peer_name("localhost"),
//              TCP_NODELAY as the station sets it. TLS 1.3, and TLS 1.2 with the maximum
//              protocol version set to 1.2 (checked: the negotiated version is the one asked).
//              total_ms = socket() … shutdown done; handshake_ms = socket() … SSL_connect
//              returned (in TLS 1.3 the client returns after sending its Finished, before
//              the server has checked the client certificate; total_ms includes that);
//              client_cpu_ms = CPU time of the bench's thread over total_ms (user + system:
//              the client's own work, without the wait for the CSMS).
//              Note: the CSMS is one Node process; both share the machine's 2 CPUs with the
//              bench (no pinning), so wall-clock figures include scheduling delays.
//   sign       EVP_DigestSignInit(SHA-256) + EVP_DigestSign of 32 bytes with each key
//              (what a TLS client does for CertificateVerify), time per operation in µs.
// Output: one "key value" line per figure on stdout (tls.<v13|v12>.<kind>.<total_ms|
// handshake_ms>.<median|p90>, tls.sign.<kind>.us.<median|p90>, ratios to mem), progress
// on stderr.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "security/certificates.hpp"
#include "security/dev_pki.hpp"
#include "security/key_store.hpp"
#include "security/station_identity.hpp"
#include "security/tls_client.hpp"

namespace fs = std::filesystem;
namespace sec = cg::security;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kOrganization = "Bench CPO";
constexpr const char* kPeerName = "localhost";

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// CPU time of this (the only) thread, ms: the client's own work, without waiting for the peer.
double thread_cpu_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// Nearest-rank percentile (q in (0, 1]); median as the mean of the two middle values.
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

std::string ssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> b(bytes);
  if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1) throw std::runtime_error("RAND_bytes failed");
  static const char* d = "0123456789abcdef";
  std::string s;
  for (unsigned char c : b) {
    s += d[c >> 4];
    s += d[c & 15];
  }
  return s;
}

void write_file(const fs::path& p, const std::string& text, mode_t mode) {
  const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error("cannot create " + p.string() + ": " + std::strerror(errno));
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write " + p.string());
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// fork + exec, stdout/stderr to `log`; the child dies with us (PR_SET_PDEATHSIG).
pid_t spawn(const std::vector<std::string>& argv, const fs::path& log) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot open " + log.string());
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(fd);
  return pid;
}

int wait_exit(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// The dev CSMS child: SIGTERM, SIGKILL after 3 s.
struct Child {
  pid_t pid = -1;
  ~Child() { stop(); }
  void stop() {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 60; ++i) {
      int st = 0;
      if (::waitpid(pid, &st, WNOHANG) == pid) {
        pid = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
  }
};

struct SslCtxFree {
  void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const noexcept { SSL_free(s); }
};

struct Kind {
  std::string name;      // mem, file, p11
  std::string identity;  // OCPP identity at the CSMS
  std::string serial;    // CN
  sec::PrivateKey key;
  sec::CertChain chain;
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx;
  std::vector<double> total[2], handshake[2], cpu[2], sign_us;  // [0] = TLS 1.3, [1] = TLS 1.2
};

// A PKCS#10 request for an in-memory key (what make_csr_pem does for the stores).
std::string csr_for(EVP_PKEY* key, const std::string& cn) {
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> req(X509_REQ_new(), X509_REQ_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  X509_NAME* name = req ? X509_REQ_get_subject_name(req.get()) : nullptr;
  const bool ok =
      name && bio && X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) == 1 &&
      X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0) == 1 &&
      X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(kOrganization), -1, -1, 0) == 1 &&
      X509_REQ_set_pubkey(req.get(), key) == 1 && X509_REQ_sign(req.get(), key, EVP_sha256()) > 0 &&
      PEM_write_bio_X509_REQ(bio.get(), req.get()) == 1;
  if (!ok) throw std::runtime_error("cannot build the CSR of the in-memory key: " + ssl_errors());
  char* p = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &p);
  return std::string(p, static_cast<std::size_t>(n));
}

void certify(Kind& k, const std::string& csr_pem, const fs::path& pki) {
  auto r = sec::dev_pki_sign_csr(csr_pem, pki / "operator-root-ca.pem", pki / "operator-root-ca.key", 30);
  if (!r.ok) throw std::runtime_error("dev_pki_sign_csr (" + k.name + "): " + r.error);
  std::string err;
  k.chain = sec::parse_pem_chain(r.certificate_pem, sec::kMaxChainCertificates, err);
  if (k.chain.empty()) throw std::runtime_error("certificate of " + k.name + ": " + err);
}

// The station's client context with this kind's identity.
void make_ctx(Kind& k, const fs::path& ca_file) {
  k.ctx.reset(SSL_CTX_new(TLS_client_method()));
  if (!k.ctx) throw std::runtime_error("SSL_CTX_new failed");
  if (auto e = sec::configure_tls_client(k.ctx.get(), ca_file.string()); !e)
    throw std::runtime_error("configure_tls_client: " + e.error().message);
  sec::TlsClientIdentity id;
  id.key.reset(k.key.get());
  EVP_PKEY_up_ref(k.key.get());
  for (const auto& c : k.chain) id.chain.push_back(sec::share(c.get()));
  if (auto e = sec::use_client_identity(k.ctx.get(), id); !e)
    throw std::runtime_error("use_client_identity (" + k.name + "): " + e.error().message);
}

int tcp_connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const int e = errno;
    ::close(fd);
    throw std::runtime_error(std::string("connect to 127.0.0.1: ") + std::strerror(e));
  }
  return fd;
}

struct Connected {
  std::unique_ptr<SSL, SslFree> ssl;
  int fd = -1;
  ~Connected() {
    ssl.reset();
    if (fd >= 0) ::close(fd);
  }
};

// TCP connect + TLS handshake with the station's settings; throws with the reason.
void open_tls(Connected& c, Kind& k, int port, bool tls12) {
  c.fd = tcp_connect(port);
  c.ssl.reset(SSL_new(k.ctx.get()));
  if (!c.ssl) throw std::runtime_error("SSL_new failed");
  sec::set_tls_peer_name(c.ssl.get(), kPeerName);
  if (tls12) SSL_set_max_proto_version(c.ssl.get(), TLS1_2_VERSION);
  SSL_set_fd(c.ssl.get(), c.fd);
  if (SSL_connect(c.ssl.get()) != 1) {
    const long vr = SSL_get_verify_result(c.ssl.get());
    throw std::runtime_error("TLS handshake (" + k.name + (tls12 ? ", TLS 1.2" : ", TLS 1.3") + ") failed: " +
                             ssl_errors() + (vr != X509_V_OK ? std::string(" verify: ") + X509_verify_cert_error_string(vr) : ""));
  }
  if (SSL_version(c.ssl.get()) != (tls12 ? TLS1_2_VERSION : TLS1_3_VERSION))
    throw std::runtime_error(std::string("negotiated ") + SSL_get_version(c.ssl.get()) + ", not the version asked");
  if (SSL_session_reused(c.ssl.get())) throw std::runtime_error("a session was resumed");
}

// Our close_notify, then wait for the peer's close_notify (true) or EOF (false).
bool close_tls(Connected& c) {
  int r = SSL_shutdown(c.ssl.get());
  if (r == 1) return true;
  if (r < 0) throw std::runtime_error("SSL_shutdown failed: " + ssl_errors());
  char buf[512];
  for (;;) {
    const int n = SSL_read(c.ssl.get(), buf, sizeof buf);
    if (n > 0) continue;  // (nothing expected; TLS 1.3 tickets are consumed inside SSL_read)
    const int e = SSL_get_error(c.ssl.get(), n);
    ERR_clear_error();
    if (e == SSL_ERROR_ZERO_RETURN) return true;
    if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_SSL) return false;  // EOF without close_notify
    throw std::runtime_error("waiting for the peer's close_notify: SSL error " + std::to_string(e));
  }
}

// One untimed WebSocket upgrade: the CSMS checks chain, CN and O there (401 otherwise).
std::string upgrade_status(Kind& k, int port) {
  Connected c;
  open_tls(c, k, port, false);
  const std::string req = "GET /ocpp/" + k.identity + " HTTP/1.1\r\nHost: localhost:" + std::to_string(port) +
                          "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " +
                          "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                          "Sec-WebSocket-Protocol: ocpp2.0.1\r\n\r\n";
  if (SSL_write(c.ssl.get(), req.data(), static_cast<int>(req.size())) != static_cast<int>(req.size()))
    throw std::runtime_error("upgrade request: write failed");
  std::string resp;
  char buf[1024];
  while (resp.find("\r\n") == std::string::npos) {
    const int n = SSL_read(c.ssl.get(), buf, sizeof buf);
    if (n <= 0) break;
    resp.append(buf, static_cast<std::size_t>(n));
  }
  ERR_clear_error();
  return resp.substr(0, resp.find("\r\n"));
}

double sign_once_us(EVP_PKEY* key, const unsigned char* data) {
  unsigned char sig[256];
  std::size_t len = sizeof sig;
  const auto t0 = Clock::now();
  EVP_MD_CTX* m = EVP_MD_CTX_new();
  const bool ok = m && EVP_DigestSignInit(m, nullptr, EVP_sha256(), nullptr, key) == 1 &&
                  EVP_DigestSign(m, sig, &len, data, 32) == 1;
  EVP_MD_CTX_free(m);
  const auto t1 = Clock::now();
  if (!ok) throw std::runtime_error("EVP_DigestSign failed: " + ssl_errors());
  return std::chrono::duration<double, std::micro>(t1 - t0).count();
}

// One signature checked against the certificate's public key (the store really signs).
void check_signature(Kind& k) {
  unsigned char data[32], sig[256];
  RAND_bytes(data, sizeof data);
  std::size_t len = sizeof sig;
  EVP_MD_CTX* m = EVP_MD_CTX_new();
  bool ok = EVP_DigestSignInit(m, nullptr, EVP_sha256(), nullptr, k.key.get()) == 1 &&
            EVP_DigestSign(m, sig, &len, data, sizeof data) == 1;
  EVP_MD_CTX_free(m);
  m = EVP_MD_CTX_new();
  ok = ok && EVP_DigestVerifyInit(m, nullptr, EVP_sha256(), nullptr, X509_get0_pubkey(k.chain.front().get())) == 1 &&
       EVP_DigestVerify(m, sig, len, data, sizeof data) == 1;
  EVP_MD_CTX_free(m);
  if (!ok) throw std::runtime_error("signature of " + k.name + " does not verify: " + ssl_errors());
}

int run(int argc, char** argv) {
  fs::path base, csms_js;
  std::string node = "node", module = sec::kSoftHsm2Module;
  int handshakes = 200, warmup = 10, signs = 300;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value for " + a);
      return argv[++i];
    };
    if (a == "--dir") base = val();
    else if (a == "--csms") csms_js = val();
    else if (a == "--node") node = val();
    else if (a == "--handshakes") handshakes = std::stoi(val());
    else if (a == "--warmup") warmup = std::stoi(val());
    else if (a == "--signs") signs = std::stoi(val());
    else if (a == "--module") module = val();
    else if (a == "--keep") keep = true;
    else throw std::runtime_error("unknown argument " + a + " (see the head of bench/tls_bench.cpp)");
  }
  if (base.empty() || csms_js.empty()) throw std::runtime_error("--dir DIR and --csms PATH/csms.js are required");
  if (handshakes < 1 || warmup < 0 || signs < 1) throw std::runtime_error("bad --handshakes/--warmup/--signs");
  const fs::path work = fs::absolute(base) / ("cg-tls-bench." + std::to_string(::getpid()));
  fs::create_directories(work);
  fs::permissions(work, fs::perms::owner_all, fs::perm_options::replace);
  struct Cleanup {
    fs::path p;
    bool keep;
    ~Cleanup() {
      std::error_code ec;
      if (keep) std::cerr << "tls bench: kept " << p << "\n";
      else fs::remove_all(p, ec);
    }
  } cleanup{work, keep};

  // ---- dev PKI
  const fs::path pki = work / "pki";
  if (auto r = sec::dev_pki_init(pki); !r.ok) throw std::runtime_error("dev_pki_init: " + r.error);

  // ---- SoftHSM2 token (SOFTHSM2_CONF before the module is loaded)
  const fs::path hsm = work / "softhsm";
  fs::create_directories(hsm / "tokens");
  fs::permissions(hsm, fs::perms::owner_all, fs::perm_options::replace);
  write_file(hsm / "softhsm2.conf",
             "directories.tokendir = " + (hsm / "tokens").string() + "\nobjectstore.backend = file\nlog.level = ERROR\n",
             0600);
  ::setenv("SOFTHSM2_CONF", (hsm / "softhsm2.conf").c_str(), 1);
  const std::string pin = random_hex(8), so_pin = random_hex(8), token = "cg-bench";
  {
    const pid_t p = spawn({"softhsm2-util", "--init-token", "--free", "--label", token, "--so-pin", so_pin, "--pin", pin},
                          work / "softhsm2-util.log");
    if (wait_exit(p) != 0) throw std::runtime_error("softhsm2-util --init-token failed: " + slurp(work / "softhsm2-util.log"));
  }
  write_file(hsm / "pin", pin + "\n", 0600);

  // ---- the three keys and their certificates
  std::array<Kind, 3> kinds;
  kinds[0].name = "mem";
  kinds[1].name = "file";
  kinds[2].name = "p11";
  for (auto& k : kinds) {
    std::string up = k.name;
    std::transform(up.begin(), up.end(), up.begin(), [](unsigned char c) { return std::toupper(c); });
    k.identity = "BENCH-" + up;
    k.serial = "SN-BENCH-" + up;
  }
  const sec::CsrSubject subj_file{kinds[1].serial, kOrganization}, subj_p11{kinds[2].serial, kOrganization};
  kinds[0].key.reset(EVP_EC_gen("P-256"));
  if (!kinds[0].key) throw std::runtime_error("EVP_EC_gen failed: " + ssl_errors());
  certify(kinds[0], csr_for(kinds[0].key.get(), kinds[0].serial), pki);
  auto file_store = sec::open_key_store(sec::FileKeyStoreOptions{work / "keys"});
  file_store->generate_key(sec::kStationKeyLabel, sec::KeyType::EcP256);
  kinds[1].key = file_store->private_key(sec::kStationKeyLabel);
  certify(kinds[1], sec::make_csr_pem(*file_store, sec::kStationKeyLabel, subj_file), pki);
  auto p11_store = sec::open_key_store(sec::Pkcs11KeyStoreOptions{module, token, hsm / "pin"});
  const auto info = p11_store->generate_key(sec::kStationKeyLabel, sec::KeyType::EcP256);
  if (!info.non_exportable) throw std::runtime_error("the PKCS#11 key is not marked non-exportable");
  kinds[2].key = p11_store->private_key(sec::kStationKeyLabel);
  certify(kinds[2], sec::make_csr_pem(*p11_store, sec::kStationKeyLabel, subj_p11), pki);
  for (auto& k : kinds) {
    check_signature(k);
    make_ctx(k, pki / "csms-root-ca.pem");
  }
  std::cerr << "tls bench: keys ready (mem, file, p11 on token '" << token << "' of " << module << ")\n";

  // ---- the dev CSMS, profile 3 only
  Child csms;
  const fs::path csms_log = work / "csms.log";
  {
    std::vector<std::string> args = {node,
                                     csms_js.string(),
                                     "--host", "127.0.0.1",
                                     "--port", "0",
                                     "--cert", (pki / "csms-server.pem").string(),
                                     "--key", (pki / "csms-server.key").string(),
                                     "--ca", (pki / "operator-root-ca.pem").string(),
                                     "--require-client-cert",
                                     "--organization", kOrganization};
    for (const auto& k : kinds) {
      args.push_back("--station");
      args.push_back(k.identity + "=" + k.serial);
    }
    csms.pid = spawn(args, csms_log);
  }
  int port = 0;
  const std::regex listening(R"(listening on wss://localhost:(\d+)/ocpp)");
  for (int i = 0; i < 200 && port == 0; ++i) {
    std::smatch m;
    const std::string log = slurp(csms_log);
    if (std::regex_search(log, m, listening)) port = std::stoi(m[1]);
    else if (::waitpid(csms.pid, nullptr, WNOHANG) == csms.pid) {
      csms.pid = -1;
      throw std::runtime_error("the dev CSMS exited:\n" + log);
    } else
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (port == 0) throw std::runtime_error("the dev CSMS did not start within 10 s:\n" + slurp(csms_log));
  std::cerr << "tls bench: dev CSMS (pid " << csms.pid << ") on 127.0.0.1:" << port << "\n";

  for (auto& k : kinds) {
    const auto st = upgrade_status(k, port);
    if (st.rfind("HTTP/1.1 101", 0) != 0)
      throw std::runtime_error("the CSMS did not accept the " + k.name + " certificate: '" + st + "'\n" + slurp(csms_log));
  }

  // ---- handshakes: warm-up, then rounds (each round: TLS 1.3 then 1.2, every kind, rotated)
  long close_notify = 0, eof = 0;
  auto one = [&](Kind& k, int v, bool record) {
    Connected c;
    const double c0 = thread_cpu_ms();
    const auto t0 = Clock::now();
    open_tls(c, k, port, v == 1);
    const auto t1 = Clock::now();
    const bool cn = close_tls(c);
    const auto t2 = Clock::now();
    const double c1 = thread_cpu_ms();
    if (!record) return;
    k.handshake[v].push_back(ms_between(t0, t1));
    k.total[v].push_back(ms_between(t0, t2));
    k.cpu[v].push_back(c1 - c0);
    (cn ? close_notify : eof)++;
  };
  for (int r = 0; r < warmup; ++r)
    for (int v = 0; v < 2; ++v)
      for (auto& k : kinds) one(k, v, false);
  std::cerr << "tls bench: " << handshakes << " handshakes per key kind and version\n";
  const auto t_start = Clock::now();
  for (int r = 0; r < handshakes; ++r)
    for (int v = 0; v < 2; ++v)
      for (std::size_t j = 0; j < kinds.size(); ++j) one(kinds[(r + j) % kinds.size()], v, true);
  const double hs_seconds = ms_between(t_start, Clock::now()) / 1000;

  // ---- bare signatures (the CSMS idles meanwhile)
  unsigned char data[32];
  RAND_bytes(data, sizeof data);
  for (auto& k : kinds)
    for (int i = 0; i < 10; ++i) sign_once_us(k.key.get(), data);
  for (int r = 0; r < signs; ++r)
    for (std::size_t j = 0; j < kinds.size(); ++j) {
      auto& k = kinds[(r + j) % kinds.size()];
      k.sign_us.push_back(sign_once_us(k.key.get(), data));
    }
  csms.stop();

  // ---- report
  std::cout << "tls.handshakes " << handshakes << "\n"
            << "tls.signs " << signs << "\n"
            << "tls.seconds " << hs_seconds << "\n"
            << "tls.peer_close_notify " << close_notify << "\n"
            << "tls.peer_eof " << eof << "\n";
  const char* vname[2] = {"v13", "v12"};
  for (int v = 0; v < 2; ++v) {
    for (auto& k : kinds) {
      const std::string p = std::string("tls.") + vname[v] + "." + k.name + ".";
      std::cout << p << "total_ms.median " << median(k.total[v]) << "\n"
                << p << "total_ms.p90 " << percentile(k.total[v], 0.9) << "\n"
                << p << "handshake_ms.median " << median(k.handshake[v]) << "\n"
                << p << "handshake_ms.p90 " << percentile(k.handshake[v], 0.9) << "\n"
                << p << "client_cpu_ms.median " << median(k.cpu[v]) << "\n";
    }
    const double mem_total = median(kinds[0].total[v]);
    for (std::size_t j = 1; j < kinds.size(); ++j)
      std::cout << "tls." << vname[v] << ".ratio." << kinds[j].name << "_mem " << median(kinds[j].total[v]) / mem_total << "\n";
  }
  for (auto& k : kinds)
    std::cout << "tls.sign." << k.name << ".us.median " << median(k.sign_us) << "\n"
              << "tls.sign." << k.name << ".us.p90 " << percentile(k.sign_us, 0.9) << "\n";
  const double sbase = median(kinds[0].sign_us);
  for (std::size_t j = 1; j < kinds.size(); ++j)
    std::cout << "tls.sign.ratio." << kinds[j].name << "_mem " << median(kinds[j].sign_us) / sbase << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "cg_tls_bench: " << e.what() << "\n";
    return 1;
  }
}
