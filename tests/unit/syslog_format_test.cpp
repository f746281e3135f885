// Syslog forwarding of the audit log (issue 3): the RFC 5424 message format,
// SD-PARAM escaping, PRI/severity mapping and RFC 5425 framing; and, when
// rsyslogd (with the ossl stream driver) is installed, an end-to-end test
// against a real rsyslog over mutual TLS: in-order delivery, catch-up from
// the log file at start, resend from the cursor after the collector was down
// (with a queue overflow meanwhile), restart from a saved cursor, and a
// collector that fails verification.
#include "audit/syslog_forwarder.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "audit/audit_log.hpp"
#include "audit/catalog.hpp"
#include "security/dev_pki.hpp"
#include "security/key_store.hpp"
#include "programs.hpp"
#include "test_util.hpp"

extern char** environ;

namespace fs = std::filesystem;
using namespace cg::audit;
namespace sl = cg::audit::syslog;

namespace {

RecordView rec(std::uint64_t seq, Event e, Outcome o, std::string time = "2026-11-22T08:13:53.123Z") {
  RecordView r;
  r.seq = seq;
  r.time = std::move(time);
  r.type = e;
  r.outcome = o;
  r.line = "{\"seq\":" + std::to_string(seq) + ",\"type\":\"" + std::string(info(e).name) + "\"}\tHASH\tMAC";
  return r;
}

}  // namespace

// ---- pure parts -------------------------------------------------------------

TEST(SyslogFormat, SeverityByCriticalityAndOutcome) {
  EXPECT_EQ(sl::severity_for(true, Outcome::Failure), 2);
  EXPECT_EQ(sl::severity_for(true, Outcome::Success), 4);
  EXPECT_EQ(sl::severity_for(false, Outcome::Failure), 5);
  EXPECT_EQ(sl::severity_for(false, Outcome::Success), 6);
  // From the catalog: StartupOfTheDevice is critical, InvalidMessages is not.
  EXPECT_EQ(sl::severity_for(Event::StartupOfTheDevice, Outcome::Success), 4);
  EXPECT_EQ(sl::severity_for(Event::TamperDetectionActivated, Outcome::Failure), 2);
  EXPECT_EQ(sl::severity_for(Event::InvalidMessages, Outcome::Failure), 5);
  EXPECT_EQ(sl::severity_for(Event::ConfigurationChanged, Outcome::Success), 6);
}

TEST(SyslogFormat, Pri) {
  EXPECT_EQ(sl::pri(10, 2), 82);  // authpriv.crit
  EXPECT_EQ(sl::pri(10, 6), 86);  // authpriv.info
  EXPECT_EQ(sl::pri(0, 0), 0);
  EXPECT_EQ(sl::pri(23, 7), 191);  // largest valid PRI
  EXPECT_EQ(sl::pri(4, 5), 37);
}

TEST(SyslogFormat, SdParamEscaping) {
  EXPECT_EQ(sl::sd_escape("plain"), "plain");
  EXPECT_EQ(sl::sd_escape(R"(a"b)"), R"(a\"b)");
  EXPECT_EQ(sl::sd_escape(R"(a\b)"), R"(a\\b)");
  EXPECT_EQ(sl::sd_escape("a]b"), R"(a\]b)");
  EXPECT_EQ(sl::sd_escape(R"("\])"), R"(\"\\\])");
  EXPECT_EQ(sl::sd_escape("[ = ok"), "[ = ok");  // only ", \ and ] are escaped
  EXPECT_EQ(sl::sd_escape(""), "");
}

TEST(SyslogFormat, HeaderFieldsArePrintableAsciiAndBounded) {
  EXPECT_EQ(sl::header_field("CS001", 255), "CS001");
  EXPECT_EQ(sl::header_field("", 255), "-");
  EXPECT_EQ(sl::header_field("a b\tc\xc3\xa9", 255), "a_b_c__");
  EXPECT_EQ(sl::header_field("ReconfigurationOfSecurityParameters", 32), "ReconfigurationOfSecurityParamet");
  EXPECT_EQ(sl::header_field(std::string(300, 'x'), 255).size(), 255u);
}

TEST(SyslogFormat, JsonBodyIsTheLineWithoutHashAndMac) {
  EXPECT_EQ(sl::json_body("{\"seq\":1}\tab\tcd"), "{\"seq\":1}");
  EXPECT_EQ(sl::json_body("{\"seq\":1}"), "{\"seq\":1}");
}

TEST(SyslogFormat, MessageLayout) {
  const auto r = rec(42, Event::StartupOfTheDevice, Outcome::Success);
  EXPECT_EQ(sl::format_message(r, 10, "CS001"),
            "<84>1 2026-11-22T08:13:53.123Z CS001 chargeguard - StartupOfTheDevice "
            "[cg@32473 seq=\"42\" outcome=\"success\"] {\"seq\":42,\"type\":\"StartupOfTheDevice\"}");
  const auto f = rec(7, Event::InvalidMessages, Outcome::Failure);
  EXPECT_EQ(sl::format_message(f, 4, "CS 001", "app"),
            "<37>1 2026-11-22T08:13:53.123Z CS_001 app - InvalidMessages "
            "[cg@32473 seq=\"7\" outcome=\"failure\"] {\"seq\":7,\"type\":\"InvalidMessages\"}");
}

TEST(SyslogFormat, LongTypeNamesAreCutToTheMsgidLimitAndBadTimesAreNil) {
  const auto r = rec(1, Event::ReconfigurationOfSecurityParameters, Outcome::Success, "yesterday");
  const auto m = sl::format_message(r, 10, "CS001");
  EXPECT_EQ(m.rfind("<86>1 - CS001 chargeguard - ReconfigurationOfSecurityParamet [cg@32473 ", 0), 0u) << m;
  // The full name is still in the JSON body.
  EXPECT_NE(m.find("\"type\":\"ReconfigurationOfSecurityParameters\""), std::string::npos);
}

// A hand-written check of the RFC 5424 header (std::regex trips GCC 12 warnings under ASan).
// Returns the PRI, or -1 when the layout is wrong.
static int check_header(const std::string& m) {
  auto printable = [](std::string_view f, std::size_t max) {
    if (f.empty() || f.size() > max) return false;
    for (unsigned char c : f)
      if (c < 33 || c > 126) return false;
    return true;
  };
  if (m.size() < 4 || m[0] != '<') return -1;
  const auto gt = m.find('>');
  if (gt == std::string::npos || gt < 2 || gt > 4) return -1;
  const int pri = std::stoi(m.substr(1, gt - 1));
  if (m.compare(gt + 1, 2, "1 ") != 0) return -1;
  std::size_t pos = gt + 3;
  std::vector<std::string> f;
  for (int i = 0; i < 5; ++i) {
    const auto sp = m.find(' ', pos);
    if (sp == std::string::npos) return -1;
    f.push_back(m.substr(pos, sp - pos));
    pos = sp + 1;
  }
  if (!printable(f[0], 64) || !printable(f[1], 255) || !printable(f[2], 48) || f[3] != "-" || !printable(f[4], 32))
    return -1;
  const std::string sd = "[cg@32473 seq=\"";
  if (m.compare(pos, sd.size(), sd) != 0) return -1;
  pos += sd.size();
  const auto q = m.find('"', pos);
  if (q == pos || q == std::string::npos || m.find_first_not_of("0123456789", pos) != q) return -1;
  const std::string rest = m.substr(q);
  if (rest.rfind("\" outcome=\"success\"] {", 0) != 0 && rest.rfind("\" outcome=\"failure\"] {", 0) != 0) return -1;
  if (m.back() != '}') return -1;
  return pri;
}

TEST(SyslogFormat, EveryCatalogEventFormatsToAValidHeader) {
  EXPECT_EQ(check_header("<1>1 - h a - T [cg@32473 seq=\"1\" outcome=\"success\"] {}"), 1);  // the checker itself
  EXPECT_EQ(check_header("<1>1 - h a - T [cg@32473 seq=\"\" outcome=\"success\"] {}"), -1);
  for (int i = 0; i < kEventCount; ++i) {
    for (auto o : {Outcome::Success, Outcome::Failure}) {
      const auto e = static_cast<Event>(i);
      const auto m = sl::format_message(rec(static_cast<std::uint64_t>(i + 1), e, o), 10, "CS001");
      EXPECT_EQ(check_header(m), 80 + sl::severity_for(e, o)) << m;
    }
  }
}

TEST(SyslogFormat, OctetCountedFraming) {
  EXPECT_EQ(sl::frame("abc"), "3 abc");
  EXPECT_EQ(sl::frame(""), "0 ");
  // The count is of octets, not characters.
  EXPECT_EQ(sl::frame("\xc3\xa9"), "2 \xc3\xa9");
  const std::string big(1234, 'x');
  EXPECT_EQ(sl::frame(big), "1234 " + big);
}

TEST(SyslogForwarderConfig, RejectsBadSettings) {
  boost::asio::io_context io;
  SyslogSettings s;
  s.host = "localhost";
  s.ca_file = "/nonexistent/ca.pem";
  s.cert_file = "/nonexistent/c.pem";
  s.key_file = "/nonexistent/k.pem";
  EXPECT_THROW(SyslogForwarder(io, s, 0, nullptr), std::runtime_error);
  s.facility = 24;
  EXPECT_THROW(SyslogForwarder(io, s, 0, nullptr), std::runtime_error);
  s.facility = 10;
  s.host.clear();
  EXPECT_THROW(SyslogForwarder(io, s, 0, nullptr), std::runtime_error);
}

// ---- end to end against a real rsyslogd over mutual TLS ------------------------

namespace {

// rsyslogd and its ossl stream driver (scripts/programs.tsv: rsyslog,
// rsyslog-openssl): what is missing, or "" when both are there. A missing one
// fails the test; it is never skipped.
std::string rsyslog_missing() {
  try {
    cg::test::program("rsyslogd");
  } catch (const std::exception& e) {
    return e.what();
  }
  for (const char* d : {"/usr/lib/x86_64-linux-gnu/rsyslog", "/usr/lib/aarch64-linux-gnu/rsyslog", "/usr/lib/rsyslog"})
    if (fs::exists(fs::path(d) / "lmnsd_ossl.so")) return {};
  return "rsyslog's ossl stream driver (lmnsd_ossl.so) is not installed (Debian package rsyslog-openssl)";
}

// rsyslogd may run as another user after start-up: the files must be readable
// by others (chmod -R a+rX).
void make_world_readable(const fs::path& dir) {
  using P = fs::perms;
  fs::permissions(dir, P::others_read | P::others_exec | P::group_read | P::group_exec, fs::perm_options::add);
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const bool d = e.is_directory();
    fs::permissions(e.path(),
                    d ? P::others_read | P::others_exec | P::group_read | P::group_exec : P::others_read | P::group_read,
                    fs::perm_options::add);
  }
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool port_open(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

template <typename F>
bool wait_for(F&& cond, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return cond();
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// seq values of the received messages, in file order
std::vector<std::uint64_t> received_seqs(const fs::path& p) {
  std::vector<std::uint64_t> out;
  const std::string key = "[cg@32473 seq=\"";
  std::istringstream in(slurp(p));
  std::string line;
  while (std::getline(in, line)) {
    const auto k = line.find(key);
    if (k == std::string::npos) continue;
    out.push_back(std::stoull(line.substr(k + key.size())));
  }
  return out;
}

std::vector<std::uint64_t> iota(std::uint64_t from, std::uint64_t to) {
  std::vector<std::uint64_t> v;
  for (auto i = from; i <= to; ++i) v.push_back(i);
  return v;
}

class Rsyslogd {
 public:
  Rsyslogd(fs::path dir, int port) : dir_(std::move(dir)), port_(port) {}
  ~Rsyslogd() { stop(); }
  fs::path received() const { return dir_ / "received.log"; }
  void write_config(const fs::path& ca, const fs::path& cert, const fs::path& key) {
    fs::create_directories(dir_ / "work");
    std::ofstream c(dir_ / "rsyslog.conf");
    c << "global(workDirectory=\"" << (dir_ / "work").string() << "\" DefaultNetstreamDriver=\"ossl\"\n"
      << "  DefaultNetstreamDriverCAFile=\"" << ca.string() << "\"\n"
      << "  DefaultNetstreamDriverCertFile=\"" << cert.string() << "\"\n"
      << "  DefaultNetstreamDriverKeyFile=\"" << key.string() << "\")\n"
      << "module(load=\"imtcp\" StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\"\n"
      << "  StreamDriver.AuthMode=\"x509/name\" PermittedPeer=[\"CS001\"])\n"
      << "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"" << port_ << "\")\n"
      << "action(type=\"omfile\" file=\"" << received().string()
      << "\" template=\"RSYSLOG_SyslogProtocol23Format\")\n";
  }
  bool start() {
    const std::string conf = (dir_ / "rsyslog.conf").string(), pidf = (dir_ / "rsyslog.pid").string();
    fs::remove(pidf);
    pid_ = cg::test::spawn_program("rsyslogd", {"-n", "-f", conf, "-i", pidf}, dir_ / "rsyslogd.out");
    return wait_for([&] { return port_open(port_); }, std::chrono::seconds(10));
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  std::string output() const { return slurp(dir_ / "rsyslogd.out"); }

 private:
  fs::path dir_;
  int port_;
  pid_t pid_ = -1;
};

struct IoThread {
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{io.get_executor()};
  std::thread th{[this] { io.run(); }};
  ~IoThread() {
    guard.reset();
    io.stop();
    th.join();
  }
};

}  // namespace

TEST(SyslogEndToEnd, DeliversInOrderAndResendsAfterTheCollectorWasDown) {
  const std::string missing = rsyslog_missing();
  ASSERT_TRUE(missing.empty()) << missing;

  const fs::path dir = fs::temp_directory_path() / ("cg-syslog-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  struct Cleanup {
    fs::path d;
    ~Cleanup() {
      if (!std::getenv("CG_KEEP_TMP")) fs::remove_all(d);
    }
  } cleanup{dir};

  // Development PKI: the collector uses the CSMS server certificate (localhost);
  // the station's client certificate (CN=CS001) is signed by the operator root.
  const fs::path pki = dir / "pki";
  auto pr = cg::security::dev_pki_init(pki);
  ASSERT_TRUE(pr.ok) << pr.error;
  cg::test::write_file(pki / "ext.cnf",
                       "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "cs.ec"},
           {"pkcs8", "-topk8", "-nocrypt", "-in", "cs.ec", "-out", "station.key"},
           {"req", "-new", "-key", "station.key", "-subj", "/O=chargeguard dev/CN=CS001", "-out", "cs.csr"},
           {"x509", "-req", "-in", "cs.csr", "-CA", "operator-root-ca.pem", "-CAkey", "operator-root-ca.key",
            "-CAcreateserial", "-days", "2", "-sha256", "-extfile", "ext.cnf", "-out", "station.pem"}}) {
    const auto r = cg::test::run_program("openssl", args, pki);
    ASSERT_EQ(r.status, 0) << "openssl " << args[0] << ": " << r.output;
  }
  make_world_readable(dir);

  const int port = free_port();
  Rsyslogd rs(dir / "rsyslog", port);
  rs.write_config(pki / "operator-root-ca.pem", pki / "csms-server.pem", pki / "csms-server.key");
  ASSERT_TRUE(rs.start()) << "rsyslogd did not listen on " << port << ":\n" << rs.output();

  fs::create_directories(dir / "state");
  auto keys = cg::security::open_file_key_store({dir / "state" / "keys"});
  auto audit = AuditLog::open(dir / "state" / "audit", *keys);
  ASSERT_TRUE(audit);

  SyslogSettings s;
  s.host = "localhost";
  s.port = static_cast<std::uint16_t>(port);
  s.ca_file = (pki / "csms-root-ca.pem").string();
  s.cert_file = (pki / "station.pem").string();
  s.key_file = (pki / "station.key").string();
  s.hostname = "CS001";
  s.audit_log_file = log_file(dir / "state" / "audit");
  s.queue_limit = 3;
  s.backoff_min = std::chrono::milliseconds(200);
  s.backoff_max = std::chrono::milliseconds(800);

  std::atomic<std::uint64_t> saved{0};
  auto io = std::make_unique<IoThread>();
  auto fwd = std::make_unique<SyslogForwarder>(io->io, s, 0, [&](std::uint64_t c) { saved = c; });
  // 1..2 are in the log before the forwarder hears of records (as at a
  // daemon start): they can only come from the file.
  audit->record(Event::StartupOfTheDevice, Outcome::Success, Source::system());
  audit->record(Event::InvalidMessages, Outcome::Failure, Source::system(), Details().text("action", "Foo\"]"));
  audit->on_record([&](const RecordView& r) {
    if (fwd) fwd->submit(r);
  });
  fwd->start();
  for (int i = 0; i < 3; ++i) audit->record(Event::ConfigurationChanged, Outcome::Success, Source::system());
  ASSERT_TRUE(wait_for([&] { return received_seqs(rs.received()).size() >= 5; }, std::chrono::seconds(15)))
      << "received:\n" << slurp(rs.received()) << "\nrsyslogd:\n" << rs.output() << "\nlast error: "
      << fwd->status().last_error;
  EXPECT_EQ(received_seqs(rs.received()), iota(1, 5));
  EXPECT_TRUE(wait_for([&] { return saved.load() == 5; }, std::chrono::seconds(5)));
  {
    const std::string got = slurp(rs.received());
    EXPECT_NE(got.find("<84>1 "), std::string::npos) << got;  // authpriv.warning: critical, success
    EXPECT_NE(got.find("<85>1 "), std::string::npos) << got;  // authpriv.notice: non-critical failure
    EXPECT_NE(got.find(" CS001 chargeguard - StartupOfTheDevice [cg@32473 seq=\"1\" outcome=\"success\"] {\"seq\":1,"),
              std::string::npos)
        << got;
  }
  EXPECT_GE(fwd->status().from_file, 2u);

  // Collector down: records 6..11 are logged meanwhile (the queue holds 3, the
  // rest is dropped from memory and read back from the file).
  rs.stop();
  ASSERT_TRUE(wait_for([&] { return !fwd->status().connected; }, std::chrono::seconds(10)));
  for (int i = 0; i < 6; ++i) audit->record(Event::TamperDetectionActivated, Outcome::Failure, Source::system());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_GT(fwd->status().dropped, 0u);
  ASSERT_TRUE(rs.start()) << rs.output();
  ASSERT_TRUE(wait_for([&] { return received_seqs(rs.received()).size() >= 11; }, std::chrono::seconds(15)))
      << slurp(rs.received()) << "\nlast error: " << fwd->status().last_error;
  EXPECT_EQ(received_seqs(rs.received()), iota(1, 11));
  EXPECT_TRUE(wait_for([&] { return saved.load() == 11; }, std::chrono::seconds(5)));
  EXPECT_GE(fwd->status().connects, 2u);

  // Station restart: a new forwarder from the saved cursor sends only what followed it.
  fwd->stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  fwd.reset();
  io.reset();  // joins the io thread; the old forwarder's handlers go with it
  audit->record(Event::Shutdown, Outcome::Success, Source::system());
  audit->record(Event::StartupOfTheDevice, Outcome::Success, Source::system());
  io = std::make_unique<IoThread>();
  fwd = std::make_unique<SyslogForwarder>(io->io, s, saved.load(), [&](std::uint64_t c) { saved = c; });
  fwd->start();
  audit->record(Event::ServiceChanged, Outcome::Success, Source::system());
  ASSERT_TRUE(wait_for([&] { return received_seqs(rs.received()).size() >= 14; }, std::chrono::seconds(15)))
      << slurp(rs.received()) << "\nlast error: " << fwd->status().last_error;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // no duplicates trailing in
  EXPECT_EQ(received_seqs(rs.received()), iota(1, 14));
  fwd.reset();
  io.reset();
}

TEST(SyslogEndToEnd, RefusesACollectorItCannotVerify) {
  const std::string missing = rsyslog_missing();
  ASSERT_TRUE(missing.empty()) << missing;
  const fs::path dir = fs::temp_directory_path() / ("cg-syslog-bad-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  struct Cleanup {
    fs::path d;
    ~Cleanup() { fs::remove_all(d); }
  } cleanup{dir};
  const fs::path pki = dir / "pki";
  ASSERT_TRUE(cg::security::dev_pki_init(pki).ok);
  make_world_readable(dir);
  const int port = free_port();
  Rsyslogd rs(dir / "rsyslog", port);
  rs.write_config(pki / "operator-root-ca.pem", pki / "csms-server.pem", pki / "csms-server.key");
  ASSERT_TRUE(rs.start()) << rs.output();

  SyslogSettings s;
  s.host = "localhost";
  s.port = static_cast<std::uint16_t>(port);
  s.ca_file = (pki / "manufacturer-root-ca.pem").string();  // not the collector's CA
  s.cert_file = (pki / "csms-server.pem").string();          // any valid pair; never gets that far
  s.key_file = (pki / "csms-server.key").string();
  s.hostname = "CS001";
  IoThread io;
  SyslogForwarder fwd(io.io, s, 0, nullptr);
  fwd.start();
  ASSERT_TRUE(wait_for([&] { return !fwd.status().last_error.empty(); }, std::chrono::seconds(10)));
  EXPECT_FALSE(fwd.status().connected);
  EXPECT_NE(fwd.status().last_error.find("certificate"), std::string::npos) << fwd.status().last_error;
  fwd.stop();
}

TEST(SyslogEndToEnd, RefusesACollectorWhoseCertificateNamesAnotherHost) {
  const std::string missing = rsyslog_missing();
  ASSERT_TRUE(missing.empty()) << missing;
  const fs::path dir = fs::temp_directory_path() / ("cg-syslog-host-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  struct Cleanup {
    fs::path d;
    ~Cleanup() { fs::remove_all(d); }
  } cleanup{dir};
  const fs::path pki = dir / "pki";
  cg::security::DevPkiOptions o;
  o.csms_host = "collector.example";  // certificate for another name (its SAN also has IP 127.0.0.1)
  ASSERT_TRUE(cg::security::dev_pki_init(pki, o).ok);
  make_world_readable(dir);
  const int port = free_port();
  Rsyslogd rs(dir / "rsyslog", port);
  rs.write_config(pki / "operator-root-ca.pem", pki / "csms-server.pem", pki / "csms-server.key");
  ASSERT_TRUE(rs.start()) << rs.output();

  SyslogSettings s;
  s.host = "localhost";  // right CA, wrong name
  s.port = static_cast<std::uint16_t>(port);
  s.ca_file = (pki / "csms-root-ca.pem").string();
  s.cert_file = (pki / "csms-server.pem").string();
  s.key_file = (pki / "csms-server.key").string();
  s.hostname = "CS001";
  IoThread io;
  SyslogForwarder fwd(io.io, s, 0, nullptr);
  fwd.start();
  ASSERT_TRUE(wait_for([&] { return !fwd.status().last_error.empty(); }, std::chrono::seconds(10)));
  EXPECT_FALSE(fwd.status().connected);
  EXPECT_NE(fwd.status().last_error.find("hostname mismatch"), std::string::npos) << fwd.status().last_error;
  fwd.stop();
}
