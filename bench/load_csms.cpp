// cg_load_csms — CSMS-side load generator and measurement harness for chargeguard.
//
// One thread, synchronous Boost.Beast WebSocket over TLS (server role). It
//   * listens on 127.0.0.1 (ephemeral port) with the dev PKI's CSMS server certificate,
//   * spawns the station itself (fork/exec) and answers BootNotification (Accepted),
//     StatusNotification {}, Heartbeat {currentTime} and other station CALLs minimally,
//   * measures spawn -> BootNotification (K times, fresh state directory each time),
//     steady-state memory (/proc/PID/status after boot + statuses + idle),
//     GetVariables round trips (N requests, W in flight) with per-request latency,
//     and the station's CPU per request (/proc/PID/stat and per-thread schedstat),
//   * runs the same load against a baseline peer: this binary in --echo-peer mode, a
//     minimal Beast client over the same TLS + WebSocket stack that answers every
//     GetVariables with a fixed precomputed CALLRESULT,
//   * and spawn baselines: /bin/true, `chargeguard --version` (exec + static init),
//     `openssl s_client` (spawn -> TLS handshake at this server), the echo peer.
// The load rounds run once per CPU placement (--placements): "same" pins this client
// and every thread of the peer to one CPU, "split" puts them on two CPUs, "free" lets
// the scheduler decide. On the 2-vCPU VM this matters more than anything the station
// does: a cross-CPU wake-up costs tens of µs (docs/benchmarks.md).
// Results go to stdout as "key value" lines (bench/run.sh aggregates several runs);
// progress and errors to stderr. A watchdog (SIGALRM) kills every child and exits 3
// when a phase stalls. Each child runs in its own process group (signals go to the
// group, so wrappers such as strace or valgrind stop with it) and has
// PR_SET_PDEATHSIG=SIGKILL, so nothing outlives this process.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
namespace json = boost::json;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Ws = websocket::stream<beast::ssl_stream<tcp::socket>>;

namespace {

// ---------------------------------------------------------------- small helpers

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}
double us_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

[[noreturn]] void die(const std::string& why);

// Children we spawned: killed by the watchdog and at exit.
constexpr int kMaxChildren = 64;
volatile pid_t g_children[kMaxChildren];
const char* volatile g_phase = "startup";

void add_child(pid_t p) {
  for (auto& c : g_children)
    if (c == 0) {
      c = p;
      return;
    }
}
void forget_child(pid_t p) {
  for (auto& c : g_children)
    if (c == p) c = 0;
}
void kill_children() {
  for (auto& c : g_children)
    if (c > 0) {
      ::kill(-c, SIGKILL);
      ::waitpid(c, nullptr, 0);
      c = 0;
    }
}

extern "C" void on_alarm(int) {
  const char* msg = "cg_load_csms: watchdog: phase stalled: ";
  [[maybe_unused]] auto r1 = ::write(2, msg, std::strlen(msg));
  const char* ph = g_phase;
  [[maybe_unused]] auto r2 = ::write(2, ph, std::strlen(ph));
  [[maybe_unused]] auto r3 = ::write(2, "\n", 1);
  for (auto& c : g_children)
    if (c > 0) ::kill(-c, SIGKILL);
  for (auto& c : g_children)
    if (c > 0) ::waitpid(c, nullptr, 0);  // reap: no zombies left behind
  ::_exit(3);
}
extern "C" void on_term(int) {
  for (auto& c : g_children)
    if (c > 0) ::kill(-c, SIGKILL);
  for (auto& c : g_children)
    if (c > 0) ::waitpid(c, nullptr, 0);
  ::_exit(4);
}

void phase(const char* name, unsigned seconds) {
  g_phase = name;
  ::alarm(seconds);
}

void die(const std::string& why) {
  std::cerr << "cg_load_csms: error in phase '" << g_phase << "': " << why << "\n";
  kill_children();
  std::exit(2);
}

std::string rfc3339_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

std::string base64(std::string_view s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string read_first_line(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  if (!s.empty() && s.back() == '\r') s.pop_back();
  return s;
}

// Minimal OCPP-J frame head: "[<type>,"<id>"" — enough to route responses in the hot loop.
struct Head {
  int type = 0;
  std::string_view id;
};
std::optional<Head> scan_head(std::string_view m) {
  std::size_t i = 0;
  auto ws = [&] {
    while (i < m.size() && (m[i] == ' ' || m[i] == '\t' || m[i] == '\n' || m[i] == '\r')) ++i;
  };
  ws();
  if (i >= m.size() || m[i++] != '[') return std::nullopt;
  ws();
  if (i >= m.size() || m[i] < '2' || m[i] > '4') return std::nullopt;
  Head h;
  h.type = m[i++] - '0';
  ws();
  if (i >= m.size() || m[i++] != ',') return std::nullopt;
  ws();
  if (i >= m.size() || m[i++] != '"') return std::nullopt;
  const std::size_t start = i;
  while (i < m.size() && m[i] != '"' && m[i] != '\\') ++i;
  if (i >= m.size() || m[i] != '"') return std::nullopt;
  h.id = m.substr(start, i - start);
  return h;
}

// --------------------------------------------------------------- /proc readers

struct ProcCpu {
  double stat_s = 0;   // utime + stime of all threads (clock ticks -> s)
  double sched_s = 0;  // sum over threads of /proc/PID/task/*/schedstat field 1 (ns -> s)
};
ProcCpu proc_cpu(pid_t pid) {
  ProcCpu c;
  {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto rp = s.rfind(')');
    if (rp == std::string::npos) die("cannot read /proc/" + std::to_string(pid) + "/stat");
    std::istringstream is(s.substr(rp + 2));
    std::string f;
    std::vector<std::string> fields;
    while (is >> f) fields.push_back(f);
    // fields[0] is field 3 (state); utime = field 14, stime = field 15.
    if (fields.size() < 13) die("short /proc/PID/stat");
    const double tck = static_cast<double>(::sysconf(_SC_CLK_TCK));
    c.stat_s = (std::stod(fields[11]) + std::stod(fields[12])) / tck;
  }
  std::error_code ec;
  for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(t.path() / "schedstat");
    double ns = 0;
    if (in >> ns) c.sched_s += ns / 1e9;
  }
  return c;
}

std::map<std::string, long> proc_status(pid_t pid) {
  std::map<std::string, long> m;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, colon);
    long v = 0;
    if (std::sscanf(line.c_str() + colon + 1, "%ld", &v) == 1) m[key] = v;
  }
  std::ifstream sm("/proc/" + std::to_string(pid) + "/smaps_rollup");
  while (std::getline(sm, line)) {
    long v = 0;
    char key[64];
    if (std::sscanf(line.c_str(), "%63[^:]: %ld kB", key, &v) == 2) m[std::string("smaps.") + key] = v;
  }
  return m;
}

double self_cpu_s() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// ---------------------------------------------------------------- CPU placement

cpu_set_t g_all_cpus;  // the affinity we started with (restored between phases)

void set_affinity(pid_t tid, const cpu_set_t& set) {
  if (::sched_setaffinity(tid, sizeof set, &set) != 0) die("sched_setaffinity failed");
}
cpu_set_t one_cpu(int cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  return s;
}
// Affinity is per thread: apply it to every thread of the process.
void set_process_affinity(pid_t pid, const cpu_set_t& set) {
  std::error_code ec;
  for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec))
    ::sched_setaffinity(static_cast<pid_t>(std::stol(t.path().filename().string())), sizeof set, &set);
}

// ---------------------------------------------------------------- processes

pid_t spawn(const std::vector<std::string>& argv, const fs::path& log_file) {
  std::vector<char*> av;
  for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) die("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    // Own process group: signals go to the group, so a wrapper (strace, valgrind,
    // taskset, a shell script) and the station behind it stop together.
    ::setpgid(0, 0);
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (in >= 0) ::dup2(in, 0);
    if (out >= 0) {
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    ::close_range(3, ~0U, 0);
    ::signal(SIGPIPE, SIG_DFL);
    ::execvp(av[0], av.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here: no race with the first kill
  add_child(pid);
  return pid;
}

// SIGTERM to the child's process group, SIGKILL after grace_ms; the group is
// killed in the end in any case (leftovers of a wrapper). Returns the wait status.
int stop_child(pid_t pid, int grace_ms = 3000) {
  int st = 0;
  ::kill(-pid, SIGTERM);
  bool exited = false;
  for (int waited = 0; waited < grace_ms; waited += 2) {
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      exited = true;
      break;
    }
    ::usleep(2000);
  }
  ::kill(-pid, SIGKILL);
  if (!exited) ::waitpid(pid, &st, 0);
  forget_child(pid);
  return st;
}

bool child_alive(pid_t pid) {
  int st = 0;
  const pid_t r = ::waitpid(pid, &st, WNOHANG);
  if (r == pid) {
    forget_child(pid);
    return false;
  }
  return true;
}

// ---------------------------------------------------------------- statistics

struct Summary {
  double median = 0, p90 = 0, p99 = 0, min = 0, max = 0, mean = 0;
};
double pct(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}
Summary summarize(std::vector<double> v) {
  Summary s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  s.p90 = pct(v, 0.90);
  s.p99 = pct(v, 0.99);
  s.min = v.front();
  s.max = v.back();
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(n);
  return s;
}

void emit(const std::string& key, double value) {
  std::printf("%s %.6g\n", key.c_str(), value);
  std::fflush(stdout);
}

// ---------------------------------------------------------------- options

struct Options {
  std::string station;  // chargeguard binary
  fs::path pki;         // dev PKI directory
  fs::path work;        // scratch directory (state dirs, logs)
  fs::path password_file;
  std::string identity = "CS001";
  int evse_count = 2;
  int requests = 10000;
  int warmup = 1000;
  std::vector<int> inflight{1, 4};
  // Where the load client and the peer run during the load rounds: "same" (both on
  // client_cpu), "split" (client on client_cpu, peer on peer_cpu), "free" (unpinned).
  std::vector<std::string> placements{"same", "split"};
  int client_cpu = 0, peer_cpu = 1;
  int spawn_reps = 15;
  int idle_ms = 2000;
  std::string log_level = "warn";
  bool do_spawn = true, do_load = true, do_baseline = true;
  std::string self;  // path of this binary (echo peer)
};

// ---------------------------------------------------------------- the CSMS side

class Csms {
 public:
  explicit Csms(const Options& o) : o_(o), ctx_(ssl::context::tls_server), acceptor_(io_) {
    SSL_CTX* c = ctx_.native_handle();
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    ctx_.use_certificate_chain_file((o.pki / "csms-server.pem").string());
    ctx_.use_private_key_file((o.pki / "csms-server.key").string(), ssl::context::pem);
    acceptor_.open(tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen(64);
    ::fcntl(acceptor_.native_handle(), F_SETFD, FD_CLOEXEC);
    port_ = acceptor_.local_endpoint().port();
    expected_auth_ = "Basic " + base64(o.identity + ":" + read_first_line(o.password_file));
  }

  unsigned short port() const { return port_; }

  // Waits (poll) up to timeout_ms for a TCP connection; nullopt on timeout or
  // when `child` (if given) exited meanwhile.
  std::optional<tcp::socket> accept_tcp(int timeout_ms, pid_t child = 0) {
    pollfd p{acceptor_.native_handle(), POLLIN, 0};
    int r = 0;
    for (int waited = 0; waited < timeout_ms; waited += 50) {
      r = ::poll(&p, 1, std::min(50, timeout_ms - waited));
      if (r != 0) break;
      if (child > 0) {
        int st = 0;
        if (::waitpid(child, &st, WNOHANG) == child) {
          forget_child(child);
          return std::nullopt;
        }
      }
    }
    if (r <= 0) return std::nullopt;
    tcp::socket s(io_);
    acceptor_.accept(s);
    ::fcntl(s.native_handle(), F_SETFD, FD_CLOEXEC);
    s.set_option(tcp::no_delay(true));
    return s;
  }

  struct Timings {
    Clock::time_point tcp, tls, ws;
  };

  std::unique_ptr<Ws> tls_handshake(tcp::socket s) {
    auto ws = std::make_unique<Ws>(std::move(s), ctx_);
    beast::error_code ec;
    ws->next_layer().handshake(ssl::stream_base::server, ec);
    if (ec) die("TLS handshake: " + ec.message());
    return ws;
  }

  void ws_accept(Ws& ws) {
    beast::flat_buffer b;
    http::request<http::string_body> req;
    beast::error_code ec;
    http::read(ws.next_layer(), b, req, ec);
    if (ec) die("reading the upgrade request: " + ec.message());
    if (!websocket::is_upgrade(req)) die("not a WebSocket upgrade");
    const std::string expected_target = "/ocpp/" + o_.identity;
    if (req.target() != expected_target) die("unexpected target " + std::string(req.target()));
    const std::string protos(req[http::field::sec_websocket_protocol]);
    if (protos.find("ocpp2.0.1") == std::string::npos) die("client does not offer subprotocol ocpp2.0.1: " + protos);
    if (req[http::field::authorization] != expected_auth_) die("wrong or missing Basic auth");
    ws.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::sec_websocket_protocol, "ocpp2.0.1"); }));
    ws.read_message_max(1 << 20);
    ws.accept(req, ec);
    if (ec) die("WebSocket accept: " + ec.message());
  }

  // Full session setup; returns the stream and the timings of each step.
  std::unique_ptr<Ws> accept_session(int timeout_ms, Timings& t, pid_t child) {
    auto s = accept_tcp(timeout_ms, child);
    if (!s) return nullptr;
    t.tcp = Clock::now();
    auto ws = tls_handshake(std::move(*s));
    t.tls = Clock::now();
    ws_accept(*ws);
    t.ws = Clock::now();
    return ws;
  }

  // Reads one message into buf_ (replacing what was there); returns a view of it.
  std::string_view read(Ws& ws) {
    buf_.consume(buf_.size());
    beast::error_code ec;
    ws.read(buf_, ec);
    if (ec) die("read: " + ec.message());
    const auto d = buf_.cdata();
    return {static_cast<const char*>(d.data()), d.size()};
  }

  void write(Ws& ws, std::string_view text) {
    beast::error_code ec;
    ws.text(true);
    ws.write(asio::buffer(text.data(), text.size()), ec);
    if (ec) die("write: " + ec.message());
  }

  // Answers a CALL from the station (BootNotification, StatusNotification, ...).
  // Returns the action name.
  std::string answer_call(Ws& ws, std::string_view text) {
    json::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec || !v.is_array() || v.as_array().size() != 4) die("bad CALL from the peer: " + std::string(text.substr(0, 200)));
    const auto& a = v.as_array();
    const std::string id(a[1].as_string());
    const std::string action(a[2].as_string());
    std::string payload;
    if (action == "BootNotification")
      payload = R"({"currentTime":")" + rfc3339_now() + R"(","interval":300,"status":"Accepted"})";
    else if (action == "Heartbeat")
      payload = R"({"currentTime":")" + rfc3339_now() + R"("})";
    else if (action == "Authorize")
      payload = R"({"idTokenInfo":{"status":"Accepted"}})";
    else if (action == "DataTransfer")
      payload = R"({"status":"UnknownVendorId"})";
    else if (action == "StatusNotification" || action == "MeterValues" || action == "NotifyEvent" ||
             action == "NotifyReport" || action == "SecurityEventNotification" || action == "TransactionEvent" ||
             action == "FirmwareStatusNotification" || action == "LogStatusNotification" ||
             action == "NotifyMonitoringReport" || action == "NotifyCustomerInformation")
      payload = "{}";
    if (payload.empty()) {
      write(ws, json::serialize(json::array{4, id, "NotImplemented", "not supported by the load CSMS", json::object{}}));
    } else {
      write(ws, "[3,\"" + id + "\"," + payload + "]");
    }
    ++calls_answered_[action];
    return action;
  }

  // Reads until the peer's BootNotification arrived; answers it. Returns the time
  // the Boot message was received.
  Clock::time_point wait_boot(Ws& ws) {
    for (;;) {
      const auto m = read(ws);
      const auto t = Clock::now();
      auto h = scan_head(m);
      if (!h) die("unparsable frame from the peer");
      if (h->type != 2) continue;
      const std::string copy(m);
      if (answer_call(ws, copy) == "BootNotification") return t;
    }
  }

  // After Boot: answers station CALLs until `statuses` StatusNotifications were answered.
  void settle(Ws& ws, int statuses) {
    while (calls_answered_["StatusNotification"] < statuses) {
      const auto m = read(ws);
      auto h = scan_head(m);
      if (!h) die("unparsable frame from the peer");
      if (h->type == 2) {
        const std::string copy(m);
        answer_call(ws, copy);
      }
    }
  }

  // The GetVariables load: n requests, `window` in flight. Latencies in µs.
  struct LoadResult {
    std::vector<double> lat_us;
    double seconds = 0;
    int errors = 0;
    int station_calls = 0;
  };
  LoadResult load(Ws& ws, const std::string& tag, int n, int window, bool verify) {
    LoadResult r;
    r.lat_us.resize(static_cast<std::size_t>(n));
    std::vector<Clock::time_point> sent_at(static_cast<std::size_t>(n));
    std::vector<char> done(static_cast<std::size_t>(n), 0);
    const std::string prefix = tag + "-";
    static constexpr std::string_view kBody =
        R"(","GetVariables",{"getVariableData":[{"component":{"name":"OCPPCommCtrlr"},"variable":{"name":"HeartbeatInterval"}}]}])";
    std::string frame;
    frame.reserve(256);
    int sent = 0, received = 0;
    auto send_one = [&] {
      frame.assign("[2,\"");
      frame += prefix;
      frame += std::to_string(sent);
      frame += kBody;
      sent_at[static_cast<std::size_t>(sent)] = Clock::now();
      write(ws, frame);
      ++sent;
    };
    const auto t0 = Clock::now();
    while (sent < std::min(window, n)) send_one();
    while (received < n) {
      const auto m = read(ws);
      const auto now = Clock::now();
      auto h = scan_head(m);
      if (!h) die("unparsable frame from the peer");
      if (h->type == 2) {
        ++r.station_calls;
        const std::string copy(m);
        answer_call(ws, copy);
        continue;
      }
      if (h->id.substr(0, prefix.size()) != prefix) die("response to an unknown id " + std::string(h->id));
      int k = 0;
      for (char c : h->id.substr(prefix.size())) k = k * 10 + (c - '0');
      if (k < 0 || k >= sent || done[static_cast<std::size_t>(k)]) die("bad or duplicate response id");
      done[static_cast<std::size_t>(k)] = 1;
      r.lat_us[static_cast<std::size_t>(k)] = us_between(sent_at[static_cast<std::size_t>(k)], now);
      if (h->type == 4) {
        if (r.errors++ == 0) std::cerr << "CALLERROR from the peer: " << m.substr(0, 300) << "\n";
      } else if (verify && received == 0) {
        // Check the first answer fully: schema shape and the value we expect.
        json::error_code ec;
        auto v = json::parse(m, ec);
        bool ok = !ec && v.is_array() && v.as_array().size() == 3 && v.as_array()[2].is_object();
        if (ok) {
          const auto* res = v.as_array()[2].as_object().if_contains("getVariableResult");
          ok = res && res->is_array() && res->as_array().size() == 1;
          if (ok) {
            const auto& o = res->as_array()[0].as_object();
            ok = o.contains("attributeStatus") && o.at("attributeStatus") == "Accepted" &&
                 o.contains("attributeValue") && o.at("attributeValue") == "300";
          }
        }
        if (!ok) die("unexpected GetVariables answer: " + std::string(m.substr(0, 300)));
      }
      ++received;
      if (sent < n) send_one();
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return r;
  }

  int answered(const std::string& action) { return calls_answered_[action]; }
  void reset_counts() { calls_answered_.clear(); }

 private:
  const Options& o_;
  asio::io_context io_;
  ssl::context ctx_;
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::string expected_auth_;
  beast::flat_buffer buf_;
  std::map<std::string, int> calls_answered_;
};

// ---------------------------------------------------------------- peers

struct PeerKind {
  std::string name;  // "station" or "echo"
  bool is_station = false;
};

std::vector<std::string> station_argv(const Options& o, unsigned short port, const fs::path& state) {
  return {o.station,
          "run",
          "--state-dir",
          state.string(),
          "--csms-url",
          "wss://localhost:" + std::to_string(port) + "/ocpp",
          "--identity",
          o.identity,
          "--security-profile",
          "2",
          "--ca-file",
          (o.pki / "csms-root-ca.pem").string(),
          "--password-file",
          o.password_file.string(),
          "--evse-count",
          std::to_string(o.evse_count),
          "--log-level",
          o.log_level};
}

std::vector<std::string> echo_argv(const Options& o, unsigned short port) {
  return {o.self,
          "--echo-peer",
          "--port",
          std::to_string(port),
          "--ca-file",
          (o.pki / "csms-root-ca.pem").string(),
          "--password-file",
          o.password_file.string(),
          "--identity",
          o.identity,
          "--statuses",
          std::to_string(o.evse_count)};
}

int g_state_seq = 0;
fs::path fresh_state(const Options& o) { return o.work / ("state-" + std::to_string(++g_state_seq)); }

// ---------------------------------------------------------------- spawn measurements

struct SpawnSamples {
  std::vector<double> total, connect, tls, upgrade, boot;
};

void spawn_boot_once(Csms& csms, const Options& o, const PeerKind& peer, SpawnSamples& out) {
  const fs::path log = o.work / (peer.name + "-spawn.log");
  const auto argv = peer.is_station ? station_argv(o, csms.port(), fresh_state(o)) : echo_argv(o, csms.port());
  const auto t0 = Clock::now();
  const pid_t pid = spawn(argv, log);
  Csms::Timings t;
  auto ws = csms.accept_session(10000, t, pid);
  if (!ws) die(peer.name + " exited or did not connect within 10 s (see " + log.string() + ")");
  const auto tb = csms.wait_boot(*ws);
  out.total.push_back(ms_between(t0, tb));
  out.connect.push_back(ms_between(t0, t.tcp));
  out.tls.push_back(ms_between(t.tcp, t.tls));
  out.upgrade.push_back(ms_between(t.tls, t.ws));
  out.boot.push_back(ms_between(t.ws, tb));
  stop_child(pid);
  ws.reset();
}

double spawn_exit_once(const std::vector<std::string>& argv, const fs::path& log) {
  const auto t0 = Clock::now();
  const pid_t pid = spawn(argv, log);
  int st = 0;
  ::waitpid(pid, &st, 0);
  const auto t1 = Clock::now();
  forget_child(pid);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die(argv[0] + " failed");
  return ms_between(t0, t1);
}

double sclient_once(Csms& csms, const Options& o) {
  const std::vector<std::string> argv{"openssl",    "s_client", "-connect", "127.0.0.1:" + std::to_string(csms.port()),
                                      "-servername", "localhost", "-CAfile",  (o.pki / "csms-root-ca.pem").string(),
                                      "-verify_return_error", "-brief"};
  const auto t0 = Clock::now();
  const pid_t pid = spawn(argv, o.work / "s_client.log");
  auto s = csms.accept_tcp(10000, pid);
  if (!s) die("openssl s_client did not connect (see " + (o.work / "s_client.log").string() + ")");
  auto ws = csms.tls_handshake(std::move(*s));
  const auto t1 = Clock::now();
  ::kill(-pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  forget_child(pid);
  return ms_between(t0, t1);
}

void emit_summary(const std::string& key, const std::vector<double>& v) {
  const auto s = summarize(v);
  emit(key + ".median", s.median);
  emit(key + ".p90", s.p90);
  emit(key + ".min", s.min);
  emit(key + ".max", s.max);
}

void run_spawn(Csms& csms, const Options& o) {
  SpawnSamples station, echo;
  std::vector<double> t_true, t_version, t_sclient;
  const PeerKind st{"station", true}, ec{"echo", false};
  const bool have_openssl = std::system("command -v openssl >/dev/null 2>&1") == 0;
  // One warm-up of each (page cache, dynamic loader caches), then interleaved samples.
  phase("spawn warm-up", 30);
  {
    SpawnSamples junk;
    spawn_boot_once(csms, o, st, junk);
    if (o.do_baseline) spawn_boot_once(csms, o, ec, junk);
    spawn_exit_once({"/bin/true"}, o.work / "true.log");
    spawn_exit_once({o.station, "--version"}, o.work / "version.log");
  }
  for (int k = 0; k < o.spawn_reps; ++k) {
    phase("spawn samples", 30);
    t_true.push_back(spawn_exit_once({"/bin/true"}, o.work / "true.log"));
    t_version.push_back(spawn_exit_once({o.station, "--version"}, o.work / "version.log"));
    if (have_openssl && o.do_baseline) t_sclient.push_back(sclient_once(csms, o));
    if (o.do_baseline) spawn_boot_once(csms, o, ec, echo);
    spawn_boot_once(csms, o, st, station);
  }
  emit_summary("spawn.station.boot_ms", station.total);
  emit_summary("spawn.station.connect_ms", station.connect);
  emit_summary("spawn.station.tls_ms", station.tls);
  emit_summary("spawn.station.upgrade_ms", station.upgrade);
  emit_summary("spawn.station.ws_to_boot_ms", station.boot);
  if (o.do_baseline) {
    emit_summary("spawn.echo.boot_ms", echo.total);
    emit_summary("spawn.echo.connect_ms", echo.connect);
    emit_summary("spawn.echo.tls_ms", echo.tls);
  }
  emit_summary("spawn.true.exit_ms", t_true);
  emit_summary("spawn.version.exit_ms", t_version);
  if (!t_sclient.empty()) emit_summary("spawn.sclient.tls_ms", t_sclient);
}

// ---------------------------------------------------------------- steady state + load

void run_load(Csms& csms, const Options& o, const PeerKind& peer) {
  const std::string k = peer.name;
  const fs::path log = o.work / (peer.name + "-load.log");
  const auto argv = peer.is_station ? station_argv(o, csms.port(), fresh_state(o)) : echo_argv(o, csms.port());
  phase("load: connect", 20);
  csms.reset_counts();
  const pid_t pid = spawn(argv, log);
  Csms::Timings t;
  auto ws = csms.accept_session(10000, t, pid);
  if (!ws) die(peer.name + " exited or did not connect within 10 s (see " + log.string() + ")");
  {
    SSL* tls = ws->next_layer().native_handle();
    std::cerr << "cg_load_csms: " << peer.name << " connected with " << SSL_get_version(tls) << ", "
              << SSL_get_cipher_name(tls) << "\n";
  }
  csms.wait_boot(*ws);
  phase("load: StatusNotifications", 20);
  csms.settle(*ws, o.evse_count);
  ::usleep(static_cast<useconds_t>(o.idle_ms) * 1000);
  if (!child_alive(pid)) die(peer.name + " exited (see " + log.string() + ")");
  auto mem = proc_status(pid);
  emit("mem." + k + ".rss_kb", static_cast<double>(mem["VmRSS"]));
  emit("mem." + k + ".rss_anon_kb", static_cast<double>(mem["RssAnon"]));
  emit("mem." + k + ".rss_file_kb", static_cast<double>(mem["RssFile"]));
  emit("mem." + k + ".hwm_kb", static_cast<double>(mem["VmHWM"]));
  emit("mem." + k + ".pss_kb", static_cast<double>(mem["smaps.Pss"]));
  emit("mem." + k + ".threads", static_cast<double>(mem["Threads"]));

  int round = 0;
  for (const auto& place : o.placements) {
    if (place == "same") {
      set_affinity(0, one_cpu(o.client_cpu));
      set_process_affinity(pid, one_cpu(o.client_cpu));
    } else if (place == "split") {
      set_affinity(0, one_cpu(o.client_cpu));
      set_process_affinity(pid, one_cpu(o.peer_cpu));
    } else {
      set_affinity(0, g_all_cpus);
      set_process_affinity(pid, g_all_cpus);
    }
    phase("load: warm-up", 60);
    csms.load(*ws, "w" + std::to_string(round++), o.warmup, 1, true);
  for (int window : o.inflight) {
    const std::string kw = "load." + k + "." + place + ".w" + std::to_string(window);
    phase("load: measured run", 120);
    const auto c0 = proc_cpu(pid);
    const double s0 = self_cpu_s();
    auto r = csms.load(*ws, "m" + std::to_string(round++), o.requests, window, true);
    const auto c1 = proc_cpu(pid);
    const double s1 = self_cpu_s();
    const auto s = summarize(r.lat_us);
    emit(kw + ".req_per_s", o.requests / r.seconds);
    emit(kw + ".lat_p50_us", s.median);
    emit(kw + ".lat_p99_us", s.p99);
    emit(kw + ".lat_max_us", s.max);
    emit(kw + ".lat_mean_us", s.mean);
    emit(kw + ".cpu_us_per_req", (c1.stat_s - c0.stat_s) * 1e6 / o.requests);
    emit(kw + ".cpu_sched_us_per_req", (c1.sched_s - c0.sched_s) * 1e6 / o.requests);
    emit(kw + ".client_cpu_us_per_req", (s1 - s0) * 1e6 / o.requests);
    emit(kw + ".errors", r.errors);
    emit(kw + ".peer_calls", r.station_calls);
  }
  }
  set_affinity(0, g_all_cpus);
  mem = proc_status(pid);
  emit("mem." + k + ".rss_after_load_kb", static_cast<double>(mem["VmRSS"]));
  emit("mem." + k + ".rss_anon_after_load_kb", static_cast<double>(mem["RssAnon"]));
  phase("load: stop", 10);
  stop_child(pid);
  ws.reset();
}

// ---------------------------------------------------------------- the echo peer

// A minimal OCPP peer over the same stack as the station (Beast websocket over
// beast::ssl_stream, OpenSSL, TLS settings like connection.cpp): sends a
// BootNotification and `statuses` StatusNotifications, then answers every CALL
// with one fixed precomputed GetVariables CALLRESULT (only the id is spliced in).
int echo_peer(int argc, char** argv) {
  std::string port, ca, pwfile, identity = "CS001";
  int statuses = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--port") port = argv[i + 1];
    else if (a == "--ca-file") ca = argv[i + 1];
    else if (a == "--password-file") pwfile = argv[i + 1];
    else if (a == "--identity") identity = argv[i + 1];
    else if (a == "--statuses") statuses = std::atoi(argv[i + 1]);
  }
  const std::string host = "localhost";
  try {
    asio::io_context io;
    ssl::context ctx(ssl::context::tls_client);
    SSL_CTX* c = ctx.native_handle();
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
    SSL_CTX_set_cipher_list(c,
                            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                            "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384");
    SSL_CTX_set_ciphersuites(c, "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256");
    if (SSL_CTX_load_verify_locations(c, ca.c_str(), nullptr) != 1) throw std::runtime_error("cannot load CA");
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);

    Ws ws(io, ctx);
    tcp::resolver resolver(io);
    asio::connect(beast::get_lowest_layer(ws), resolver.resolve(host, port));
    SSL* s = ws.next_layer().native_handle();
    SSL_set_tlsext_host_name(s, host.c_str());
    X509_VERIFY_PARAM_set1_host(SSL_get0_param(s), host.c_str(), 0);
    ws.next_layer().handshake(ssl::stream_base::client);
    const std::string auth = "Basic " + base64(identity + ":" + read_first_line(pwfile));
    ws.set_option(websocket::stream_base::decorator([auth](websocket::request_type& req) {
      req.set(http::field::sec_websocket_protocol, "ocpp2.0.1");
      req.set(http::field::authorization, auth);
      req.set(http::field::user_agent, "cg-echo-peer");
    }));
    websocket::response_type res;
    ws.handshake(res, host + ":" + port, "/ocpp/" + identity);
    if (res[http::field::sec_websocket_protocol] != "ocpp2.0.1") throw std::runtime_error("no ocpp2.0.1");
    ws.auto_fragment(false);
    ws.text(true);

    beast::flat_buffer buf;
    auto call = [&](const std::string& frame) {
      ws.write(asio::buffer(frame));
      for (;;) {  // wait for its answer (the CSMS sends no CALL before answering)
        buf.consume(buf.size());
        ws.read(buf);
        const std::string_view m(static_cast<const char*>(buf.cdata().data()), buf.size());
        auto h = scan_head(m);
        if (h && h->type != 2) return;
      }
    };
    call(R"([2,"b1","BootNotification",{"chargingStation":{"model":"CG-SIM","vendorName":"chargeguard","firmwareVersion":"0.1.0"},"reason":"PowerUp"}])");
    for (int i = 1; i <= statuses; ++i)
      call(R"([2,"s)" + std::to_string(i) + R"(","StatusNotification",{"timestamp":")" + rfc3339_now() +
           R"(","connectorStatus":"Available","evseId":)" + std::to_string(i) + R"(,"connectorId":1}])");

    static constexpr std::string_view kTail =
        R"(",{"getVariableResult":[{"attributeStatus":"Accepted","component":{"name":"OCPPCommCtrlr"},"variable":{"name":"HeartbeatInterval"},"attributeValue":"300"}]}])";
    std::string out;
    out.reserve(256);
    for (;;) {
      buf.consume(buf.size());
      beast::error_code ec;
      ws.read(buf, ec);
      if (ec) return 0;  // the CSMS closed or the harness stopped us
      const std::string_view m(static_cast<const char*>(buf.cdata().data()), buf.size());
      auto h = scan_head(m);
      if (!h || h->type != 2) continue;
      out.assign("[3,\"");
      out += h->id;
      out += kTail;
      ws.write(asio::buffer(out));
    }
  } catch (const std::exception& e) {
    std::cerr << "echo peer: " << e.what() << "\n";
    return 1;
  }
}

void usage() {
  std::cerr << "usage: cg_load_csms --station BIN --pki DIR --work DIR --password-file FILE\n"
               "         [--identity CS001] [--evse-count 2] [--requests 10000] [--warmup 1000]\n"
               "         [--inflight 1,4] [--placements same,split[,free]] [--client-cpu 0] [--peer-cpu 1]\n"
               "         [--spawn-reps 15] [--idle-ms 2000] [--log-level warn]\n"
               "         [--no-spawn] [--no-load] [--no-baseline]\n"
               "Prints \"key value\" lines on stdout (see bench/run.sh).\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "--echo-peer") return echo_peer(argc, argv);
  Options o;
  o.self = fs::canonical("/proc/self/exe").string();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--station") o.station = next();
    else if (a == "--pki") o.pki = next();
    else if (a == "--work") o.work = next();
    else if (a == "--password-file") o.password_file = next();
    else if (a == "--identity") o.identity = next();
    else if (a == "--evse-count") o.evse_count = std::stoi(next());
    else if (a == "--requests") o.requests = std::stoi(next());
    else if (a == "--warmup") o.warmup = std::stoi(next());
    else if (a == "--spawn-reps") o.spawn_reps = std::stoi(next());
    else if (a == "--idle-ms") o.idle_ms = std::stoi(next());
    else if (a == "--log-level") o.log_level = next();
    else if (a == "--client-cpu") o.client_cpu = std::stoi(next());
    else if (a == "--peer-cpu") o.peer_cpu = std::stoi(next());
    else if (a == "--placements") {
      o.placements.clear();
      std::stringstream ss(next());
      std::string w;
      while (std::getline(ss, w, ',')) {
        if (w != "same" && w != "split" && w != "free") {
          usage();
          return 2;
        }
        o.placements.push_back(w);
      }
    } else if (a == "--no-spawn") o.do_spawn = false;
    else if (a == "--no-load") o.do_load = false;
    else if (a == "--no-baseline") o.do_baseline = false;
    else if (a == "--inflight") {
      o.inflight.clear();
      std::stringstream ss(next());
      std::string w;
      while (std::getline(ss, w, ',')) o.inflight.push_back(std::max(1, std::stoi(w)));
    } else {
      usage();
      return 2;
    }
  }
  if (o.station.empty() || o.pki.empty() || o.work.empty() || o.password_file.empty()) {
    usage();
    return 2;
  }
  o.station = fs::absolute(o.station).string();
  if (::sched_getaffinity(0, sizeof g_all_cpus, &g_all_cpus) != 0) CPU_ZERO(&g_all_cpus);
  if (!CPU_ISSET(o.client_cpu, &g_all_cpus) || !CPU_ISSET(o.peer_cpu, &g_all_cpus)) {
    std::cerr << "cg_load_csms: CPU " << o.client_cpu << " or " << o.peer_cpu << " is not available; "
              << "dropping the pinned placements\n";
    o.placements = {"free"};
  }
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGALRM, on_alarm);
  ::signal(SIGTERM, on_term);
  ::signal(SIGINT, on_term);
  ::signal(SIGHUP, on_term);
  fs::create_directories(o.work);
  try {
    Csms csms(o);
    std::cerr << "cg_load_csms: listening on 127.0.0.1:" << csms.port() << "\n";
    emit("config.requests", o.requests);
    emit("config.spawn_reps", o.spawn_reps);
    emit("config.evse_count", o.evse_count);
    if (o.do_spawn) run_spawn(csms, o);
    if (o.do_load) {
      run_load(csms, o, PeerKind{"station", true});
      if (o.do_baseline) run_load(csms, o, PeerKind{"echo", false});
    }
  } catch (const std::exception& e) {
    die(e.what());
  }
  ::alarm(0);
  kill_children();
  return 0;
}
