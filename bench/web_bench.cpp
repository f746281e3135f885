// Web UI benchmark (issue 12):
//  1. the dashboard's round trip over HTTPS on loopback, logged in, against a
//     static file served by the same server (/static/app.css: no session
//     check, no rendering) — p50 and p99 of each, and the ratio, measured
//     interleaved on one keep-alive connection;
//  2. a flood of wrong logins (--flood-rate per second, from
//     --flood-addresses client addresses 127.0.1.0…, unknown user names) for
//     --flood-seconds, while a simulated charge runs (EVSE 1, 16 A, meter
//     values every second: TxUpdatedInterval = 1) and an engineer logs in
//     correctly from 127.0.0.2 once a second: the control loop's missed
//     periods (its own counter, from `chargeguard sim status`), the gaps
//     between the charge's periodic meter values during the flood (their
//     timestamps in the queued TransactionEvents), the station's peak RSS, the
//     correct logins' latency and failures, and the flood's answers by status.
//
//   cg_web_bench --station BUILD/chargeguard --dir DIR [--requests 2000] [--flood-seconds 10] [--flood-rate 200]
//                [--flood-addresses 4]
//
// It makes a throw-away station (dev PKI for the CSMS root it needs in its
// configuration; no CSMS runs: the station is offline and queues its
// TransactionEvents; unknown tokens may charge offline), creates the admin
// with `accounts init`, logs in and changes the password through the forms,
// then measures. Output: "key value" lines (web.*, flood.*).
#include <sys/prctl.h>
#include <signal.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <sqlite3.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "core/clock.hpp"
#include "fw_bench_common.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using cg::bench::die;
namespace fs = std::filesystem;

namespace {

std::string run_capture(const std::vector<std::string>& args) {
  std::string cmd;
  for (const auto& a : args) cmd += "'" + a + "' ";
  cmd += "2>/dev/null";  // the tools' explanations; only their output is wanted
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) die("web_bench", "cannot run " + args[0]);
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  if (::pclose(p) != 0) die("web_bench", "failed: " + cmd);
  return out;
}

std::uint16_t free_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

class Client {
 public:
  explicit Client(std::uint16_t port, const char* from = nullptr)
      : ctx_(asio::ssl::context::tls_client), stream_(io_, ctx_) {
    ctx_.set_verify_mode(asio::ssl::verify_none);  // the station's self-signed certificate
    for (int i = 0; i < 100; ++i) {
      try {
        auto& sock = beast::get_lowest_layer(stream_).socket();
        if (from) {
          sock.open(asio::ip::tcp::v4());
          sock.bind({asio::ip::make_address(from), 0});
        }
        beast::get_lowest_layer(stream_).connect({asio::ip::make_address("127.0.0.1"), port});
        stream_.handshake(asio::ssl::stream_base::client);
        return;
      } catch (const std::exception&) {
        beast::get_lowest_layer(stream_).close();
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    die("web_bench", "the station's web UI did not come up");
  }
  http::response<http::string_body> request(http::verb v, const std::string& target, const std::string& body = {}) {
    http::request<http::string_body> req{v, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!cookie_.empty()) req.set(http::field::cookie, cookie_);
    if (v == http::verb::post) {
      req.set(http::field::content_type, "application/x-www-form-urlencoded");
      req.body() = body;
      req.prepare_payload();
    }
    http::write(stream_, req);
    http::response<http::string_body> res;
    http::read(stream_, buf_, res);
    if (auto it = res.find(http::field::set_cookie); it != res.end()) {
      const std::string c(it->value());
      cookie_ = c.substr(0, c.find(';'));
    }
    return res;
  }

 private:
  asio::io_context io_;
  asio::ssl::context ctx_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  beast::flat_buffer buf_;
  std::string cookie_;
};

std::string csrf_of(const std::string& html) {
  const std::string key = "name=\"csrf\" value=\"";
  const auto p = html.find(key);
  if (p == std::string::npos) die("web_bench", "no CSRF token on the page");
  return html.substr(p + key.size(), 64);
}

long rss_kb(pid_t pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(key.size()));
  return -1;
}

// The control loop's counters from `chargeguard sim status`.
std::pair<long long, long long> loop_counters(const std::string& station, const fs::path& state) {
  const std::string out = run_capture({station, "sim", "--state-dir", state.string(), "status"});
  const auto num = [&](const std::string& key) {
    const auto p = out.find("\"" + key + "\":");
    return p == std::string::npos ? -1LL : std::stoll(out.substr(p + key.size() + 3));
  };
  return {num("ticks"), num("overruns")};
}

// The times (ms since the epoch) of the periodic meter values the station
// queued (offline: they stay in the outbox), in order.
std::vector<double> periodic_meter_times(const fs::path& db_file) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK)
    die("web_bench", "cannot open " + db_file.string());
  sqlite3_busy_timeout(db, 2000);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT payload FROM outbox WHERE action = 'TransactionEvent' ORDER BY seq", -1, &st, nullptr);
  std::vector<double> out;
  while (st && sqlite3_step(st) == SQLITE_ROW) {
    const std::string p(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
    if (p.find("\"MeterValuePeriodic\"") == std::string::npos) continue;
    const auto k = p.find("\"timestamp\":\"");
    if (k == std::string::npos) continue;
    const auto t = cg::clock::parse_rfc3339(std::string_view(p).substr(k + 13, 24));
    if (t) out.push_back(std::chrono::duration<double, std::milli>(t->time_since_epoch()).count());
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  std::string station;
  fs::path dir;
  int requests = 2000, flood_seconds = 10, flood_rate = 200, flood_addresses = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--station") station = argv[i + 1];
    else if (k == "--dir") dir = argv[i + 1];
    else if (k == "--requests") requests = std::stoi(argv[i + 1]);
    else if (k == "--flood-seconds") flood_seconds = std::stoi(argv[i + 1]);
    else if (k == "--flood-rate") flood_rate = std::stoi(argv[i + 1]);
    else if (k == "--flood-addresses") flood_addresses = std::clamp(std::stoi(argv[i + 1]), 1, 250);
    else die("web_bench", "usage: cg_web_bench --station BIN --dir DIR [--requests N]");
  }
  if (station.empty() || dir.empty()) die("web_bench", "usage: cg_web_bench --station BIN --dir DIR [--requests N]");
  const fs::path work = dir / "web-bench";
  fs::remove_all(work);
  fs::create_directories(work);
  run_capture({station, "pki", "dev-init", "--out", (work / "pki").string()});
  { std::ofstream(work / "password") << "bench-password-0123\n"; }
  const std::uint16_t port = free_port();
  {
    std::ofstream cfg(work / "station.toml");
    cfg << "[station]\nidentity = \"CS-BENCH\"\nstate_dir = \"" << (work / "state").string() << "\"\n"
        << "log_level = \"warn\"\n[csms]\nurl = \"wss://127.0.0.1:1/ocpp\"\nsecurity_profile = 2\nca_file = \""
        << (work / "pki" / "csms-root-ca.pem").string() << "\"\npassword_file = \"" << (work / "password").string()
        << "\"\n[web]\nlisten = \"127.0.0.1:" << port << "\"\n"
        << "[device_model]\n\"AuthCtrlr.OfflineTxForUnknownIdEnabled\" = true\n\"SampledDataCtrlr.TxUpdatedInterval\" = 1\n";
  }
  std::string initial = run_capture({station, "accounts", "init", "--config", (work / "station.toml").string()});
  while (!initial.empty() && (initial.back() == '\n')) initial.pop_back();

  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execl(station.c_str(), station.c_str(), "run", "--config", (work / "station.toml").c_str(), nullptr);
    ::_exit(127);
  }
  int rc = 0;
  {
    Client c(port);
    auto r = c.request(http::verb::post, "/login", "username=admin&password=" + initial);
    if (r.result_int() != 303) die("web_bench", "login failed: " + std::to_string(r.result_int()));
    r = c.request(http::verb::get, "/password");
    const std::string pw = "Bq7v-mT3x.Lp9";
    r = c.request(http::verb::post, "/password",
                  "csrf=" + csrf_of(r.body()) + "&current=" + initial + "&new=" + pw + "&confirm=" + pw);
    if (r.body().find("Your password was changed") == std::string::npos) die("web_bench", "password change failed");
  }
  if (requests > 0) {  // phase 1 (--requests 0: only the flood)
    Client c(port);
    auto r = c.request(http::verb::post, "/login", "username=admin&password=Bq7v-mT3x.Lp9");
    if (r.result_int() != 303) die("web_bench", "login failed: " + std::to_string(r.result_int()));
    std::size_t dash_bytes = 0, css_bytes = 0;
    for (int i = 0; i < 50; ++i) {  // warm-up
      dash_bytes = c.request(http::verb::get, "/").body().size();
      css_bytes = c.request(http::verb::get, "/static/app.css").body().size();
    }
    std::vector<double> dash, css;
    for (int i = 0; i < requests; ++i) {
      for (int which = 0; which < 2; ++which) {
        const auto t0 = std::chrono::steady_clock::now();
        auto res = c.request(http::verb::get, which == 0 ? "/" : "/static/app.css");
        const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
        if (res.result_int() != 200) die("web_bench", "status " + std::to_string(res.result_int()));
        (which == 0 ? dash : css).push_back(us);
      }
    }
    std::cout << "web.requests " << requests << "\n"
              << "web.dashboard.p50_us " << percentile(dash, 0.5) << "\n"
              << "web.dashboard.p99_us " << percentile(dash, 0.99) << "\n"
              << "web.static.p50_us " << percentile(css, 0.5) << "\n"
              << "web.static.p99_us " << percentile(css, 0.99) << "\n"
              << "web.p99_ratio " << percentile(dash, 0.99) / percentile(css, 0.99) << "\n"
              << "web.dashboard.bytes " << dash_bytes << "\n"
              << "web.static.bytes " << css_bytes << "\n"
              << "web.dashboard.total_kb " << static_cast<double>(dash_bytes + css_bytes) / 1024.0 << "\n";
  }
  if (flood_seconds > 0) {
    // A charge runs through the flood: plugged, badged (offline: unknown tokens allowed), drawing 16 A.
    const std::string state = (work / "state").string();
    for (const auto& args : std::vector<std::vector<std::string>>{{"plug", "1"}, {"badge", "1", "BENCH0001"}, {"draw", "1", "16"}}) {
      std::vector<std::string> cmd{station, "sim", "--state-dir", state};
      cmd.insert(cmd.end(), args.begin(), args.end());
      run_capture(cmd);
    }
    for (int i = 0; run_capture({station, "sim", "--state-dir", state, "status"}).find("\"state\":\"C\"") == std::string::npos; ++i) {
      if (i > 50) die("web_bench", "the simulated charge did not start");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // a few meter values before the flood
    const long rss_before = rss_kb(pid, "VmRSS");
    const auto [ticks0, over0] = loop_counters(station, work / "state");
    const auto wall = [] {
      return std::chrono::duration<double, std::milli>(std::chrono::system_clock::now().time_since_epoch()).count();
    };
    const double flood_from = wall();
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::map<unsigned, long> answers;
    long sent = 0;
    std::vector<std::thread> flooders;
    // Each flooder waits for its answer: up to 32 at once (half the server's
    // connection slots: with all 64 taken nobody else gets in, see docs/benchmarks.md).
    const int kFlooders = std::min(32, flood_addresses);
    for (int t = 0; t < kFlooders; ++t) {
      flooders.emplace_back([&, t] {
        // This thread's addresses: t, t + kFlooders, … (one: a kept-alive connection; more: one connection each request).
        std::vector<std::string> from;
        for (int a = t; a < flood_addresses; a += kFlooders) from.push_back("127.0.1." + std::to_string(a));
        const auto period = std::chrono::microseconds(1'000'000LL * kFlooders / std::max(1, flood_rate));
        auto next = std::chrono::steady_clock::now();
        std::unique_ptr<Client> c;
        for (long i = 0; !stop; ++i) {
          try {
            if (from.size() > 1) c.reset();
            if (!c) c = std::make_unique<Client>(port, from[static_cast<std::size_t>(i) % from.size()].c_str());
            auto r = c->request(http::verb::post, "/login",
                                "username=nobody" + std::to_string(i) + "&password=Wrong-pass" + std::to_string(i));
            std::lock_guard lock(mu);
            ++answers[r.result_int()];
            ++sent;
            if (r.keep_alive() == false) c.reset();
          } catch (const std::exception&) {
            c.reset();
            std::lock_guard lock(mu);
            ++answers[0];
          }
          next += period;
          std::this_thread::sleep_until(next);
        }
      });
    }
    // The engineer, from another address, once a second.
    std::vector<double> good;
    int good_failures = 0;
    const auto t_end = std::chrono::steady_clock::now() + std::chrono::seconds(flood_seconds);
    long peak_rss = rss_before;
    while (std::chrono::steady_clock::now() < t_end) {
      const auto t0 = std::chrono::steady_clock::now();
      try {
        Client c(port, "127.0.0.2");
        auto r = c.request(http::verb::post, "/login", "username=admin&password=Bq7v-mT3x.Lp9");
        if (r.result_int() != 303) ++good_failures;
      } catch (const std::exception&) {
        ++good_failures;
      }
      good.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      peak_rss = std::max(peak_rss, rss_kb(pid, "VmRSS"));
      std::this_thread::sleep_until(t0 + std::chrono::seconds(1));
    }
    stop = true;
    for (auto& f : flooders) f.join();
    const double flood_to = wall();
    const auto [ticks1, over1] = loop_counters(station, work / "state");
    // The meter values' rhythm during the flood: the gaps between consecutive periodic values.
    std::vector<double> gaps;
    const auto times = periodic_meter_times(work / "state" / "station.db");
    for (std::size_t i = 1; i < times.size(); ++i)
      if (times[i] >= flood_from && times[i] <= flood_to) gaps.push_back(times[i] - times[i - 1]);
    if (gaps.empty()) die("web_bench", "no periodic meter values during the flood");
    std::cout << "flood.seconds " << flood_seconds << "\n"
              << "flood.addresses " << flood_addresses << "\n"
              << "flood.target_rate " << flood_rate << "\n"
              << "flood.sent " << sent << "\n"
              << "flood.rate " << static_cast<double>(sent) / flood_seconds << "\n";
    for (const auto& [status, n] : answers) std::cout << "flood.status_" << status << " " << n << "\n";
    std::cout << "flood.loop_ticks " << (ticks1 - ticks0) << "\n"
              << "flood.loop_overruns " << (over1 - over0) << "\n"
              << "flood.meter_values " << gaps.size() << "\n"
              << "flood.meter_interval_ms 1000\n"
              << "flood.meter_gap_min_ms " << percentile(gaps, 0.0) << "\n"
              << "flood.meter_gap_max_ms " << percentile(gaps, 1.0) << "\n"
              << "flood.good_logins " << good.size() << "\n"
              << "flood.good_failures " << good_failures << "\n"
              << "flood.good_p50_ms " << percentile(good, 0.5) << "\n"
              << "flood.good_max_ms " << percentile(good, 1.0) << "\n"
              << "flood.rss_before_kb " << rss_before << "\n"
              << "flood.rss_peak_kb " << peak_rss << "\n"
              << "flood.station_hwm_kb " << rss_kb(pid, "VmHWM") << "\n";
  }
  ::kill(pid, SIGTERM);
  ::waitpid(pid, &rc, 0);
  fs::remove_all(work);
  return 0;
}
