// REQ: FW-3, FW-4, FW-5 — see firmware_station.hpp.
#include "app/firmware_station.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "app/audit_cli.hpp"
#include "app/firmware_cli.hpp"
#include "app/pki_cli.hpp"
#include "app/station_setup.hpp"
#include "audit/audit_log.hpp"
#include "core/log.hpp"
#include "firmware/floor.hpp"
#include "firmware/slots.hpp"
#include "security/cert_store.hpp"
#include "security/key_store.hpp"
#include "security/secret_file.hpp"
#include "services/firmware.hpp"

namespace cg::app {
namespace fs = std::filesystem;

namespace {

// Everything a firmware command needs, opened in dependency order; closed
// (lock released) when it goes out of scope.
struct FirmwareSession {
  int lock = -1;
  std::unique_ptr<security::KeyStore> keys;
  std::unique_ptr<audit::AuditLog> audit_log;
  std::unique_ptr<services::Gate> gate;
  std::unique_ptr<security::CertStore> certs;
  std::unique_ptr<firmware::SlotStore> slots;
  std::unique_ptr<firmware::SecurityFloor> floor;
  std::unique_ptr<services::FirmwareService> service;

  ~FirmwareSession() {
    service.reset();
    audit_log.reset();
    keys.reset();
    if (lock >= 0) ::close(lock);
  }

  // read_only: beside a running daemon (status): no lock, no audit records.
  bool open(const config::Config& cfg, const services::PolicyFn& policy, bool read_only) {
    if (!read_only) {
      lock = prepare_state_dir(cfg);  // creates it; the lock: fails when a daemon runs there
      if (lock < 0) return false;
    } else if (!fs::is_directory(cfg.state_dir)) {
      std::cerr << "error: station.state_dir " << cfg.state_dir.string() << " does not exist\n";
      return false;
    }
    try {
      keys = open_configured_key_store(cfg);
      if (!read_only) audit_log = audit::AuditLog::open(cfg.state_dir / "audit", *keys);
      gate = std::make_unique<services::Gate>(audit_log.get(), policy);
      certs = std::make_unique<security::CertStore>(cfg.state_dir);
      slots = std::make_unique<firmware::SlotStore>(cfg.state_dir / "firmware");
      floor = std::make_unique<firmware::SecurityFloor>(cfg.state_dir / "firmware" / "floor", keys.get());
      service = std::make_unique<services::FirmwareService>(
          *gate, *slots, *floor, *certs,
          services::firmware_rules(cfg));
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      return false;
    }
    return true;
  }
};

int refused(const Error& e) {
  std::cerr << "error: " << e.message << "\n";
  return 1;
}

}  // namespace

// ---- install, install-factory, status

int firmware_install(const config::Config& cfg, const FirmwareFiles& f, bool factory, const services::PolicyFn& policy) {
  std::string error;
  const std::string signature = read_signature_file(f.signature, error);
  if (!error.empty()) return refused(fail(Errc::InvalidArgument, error));
  auto pem = security::read_file_bounded(f.cert, firmware::kMaxSigningCertificatePem, true);
  if (!pem) return refused(pem.error());
  FirmwareSession s;
  if (!s.open(cfg, policy, false)) return 1;
  const auto who = local_engineer();
  auto r = factory ? s.service->install_factory(who, f.image, *pem, signature)
                   : s.service->install_local(who, f.image, *pem, signature);
  if (!r) return refused(r.error());
  const auto& m = r->info.manifest;
  std::cout << (factory ? "factory image installed" : "firmware installed") << " in slot "
            << firmware::to_string(r->slot) << ":\n"
            << "  model             " << m.model << "\n"
            << "  version           " << m.version << "\n"
            << "  security version  " << m.security_version << "\n"
            << "  signed by         " << r->info.signer << "\n"
            << "  image digest      " << r->info.image_digest_hex << " (" << r->info.digest << ")\n";
  if (factory) {
    std::cout << "The station boots it with: chargeguard boot --config FILE\n";
  } else {
    std::cout << "The next boot tries it (" << cfg.firmware.boot_attempts
              << " attempt(s)); it becomes the good image once it confirms itself ("
              << (cfg.firmware.confirm == "running" ? "after running " + std::to_string(cfg.firmware.confirm_after_s) + " s"
                                                    : std::string("BootNotification accepted by the CSMS"))
              << "), otherwise the previous image boots again.\n";
  }
  return 0;
}

int firmware_status(const config::Config& cfg, const services::PolicyFn& policy) {
  FirmwareSession s;
  if (!s.open(cfg, policy, true)) return 1;
  auto r = s.service->status_json(local_engineer());
  if (!r) return refused(r.error());
  std::cout << *r << "\n";
  return 0;
}

// ---- the boot stage

std::optional<BootEnv> boot_env_from_environment() {
  const char* slot = std::getenv("CG_BOOT_SLOT");
  const char* version = std::getenv("CG_BOOT_VERSION");
  if (!slot || !version || !firmware::slot_from_string(slot)) return std::nullopt;
  BootEnv e;
  e.slot = slot;
  e.version = version;
  if (const char* sv = std::getenv("CG_BOOT_SECURITY_VERSION")) e.security_version = static_cast<std::uint32_t>(std::strtoul(sv, nullptr, 10));
  const char* trying = std::getenv("CG_BOOT_TRYING");
  e.trying = trying && std::string_view(trying) == "1";
  return e;
}

namespace {

std::atomic<pid_t> g_child{0};
std::atomic<int> g_stop_signal{0};

void forward_signal(int sig) {
  g_stop_signal = sig;
  const pid_t c = g_child.load();
  if (c > 0) ::kill(c, sig);
}

// Runs the verified payload; returns its wait status.
int run_payload(const services::FirmwareService::BootDecision& d, const config::Config& cfg,
                const std::vector<std::string>& run_args) {
  std::vector<std::string> args{"chargeguard", "run"};
  args.insert(args.end(), run_args.begin(), run_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string env_slot = std::string(firmware::to_string(d.slot));
  const std::string env_sv = std::to_string(d.image.security_version);
  std::cerr.flush();
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    // The boot stage and its payload are one device: when the boot stage dies
    // (kill -9, the simulated power loss), the payload dies with it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGINT, SIG_DFL);
    ::setenv("CG_BOOT_SLOT", env_slot.c_str(), 1);
    ::setenv("CG_BOOT_VERSION", d.image.version.c_str(), 1);
    ::setenv("CG_BOOT_SECURITY_VERSION", env_sv.c_str(), 1);
    ::setenv("CG_BOOT_TRYING", d.trying ? "1" : "0", 1);
    // A script payload's interpreter opens /dev/fd/N: the descriptor must survive exec.
    ::fcntl(d.payload_fd, F_SETFD, 0);
    ::fexecve(d.payload_fd, argv.data(), environ);
    const char msg[] = "error: cannot execute the payload\n";
    (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(127);
  }
  g_child = pid;
  if (g_stop_signal.load() != 0) ::kill(pid, g_stop_signal.load());
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      status = -1;
      break;
    }
  }
  g_child = 0;
  (void)cfg;
  return status;
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + strsignal(WTERMSIG(status));
  return "ended abnormally";
}

}  // namespace

int firmware_boot(const config::Config& cfg, const std::vector<std::string>& run_args) {
  struct sigaction sa {};
  sa.sa_handler = forward_signal;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  // A payload of a boot stage that just died (power loss simulated with
  // kill -9) may take a moment to go: wait for the state directory's lock.
  for (int i = 0; i < 50 && fs::is_directory(cfg.state_dir); ++i) {
    const int fd = try_lock_state_dir(cfg.state_dir);
    if (fd >= 0) {
      ::close(fd);
      break;
    }
    ::usleep(100 * 1000);
  }
  for (int boots = 1;; ++boots) {
    if (g_stop_signal.load() != 0) return 0;
    std::optional<services::FirmwareService::BootDecision> d;
    {
      FirmwareSession s;
      if (!s.open(cfg, &policy::authorize, false)) return 1;
      auto r = s.service->boot();
      if (!r) {
        std::cerr << "error: the station cannot start: " << r.error().message
                  << " (install a signed image with `chargeguard firmware install-factory`)\n";
        return 1;
      }
      d = *r;
    }  // lock, audit log and key store closed: the payload opens its own
    log::info("boot", "booting slot ", firmware::to_string(d->slot), ": ", d->image.model, " ", d->image.version,
              " (security version ", d->image.security_version, ")", d->trying ? ", new image on trial" : "");
    const int status = run_payload(*d, cfg, run_args);
    ::close(d->payload_fd);
    if (status == -1) {
      std::cerr << "error: cannot start the payload: " << std::strerror(errno) << "\n";
      return 1;
    }
    if (g_stop_signal.load() != 0) {
      // Stopped from outside: pass the payload's status on.
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == kRebootExitCode) {
      log::info("boot", "the firmware asked for a reboot");
      continue;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    if (d->trying) {
      // A new image that fails counts as a failed boot; the counter decides.
      log::warn("boot", "the new image in slot ", firmware::to_string(d->slot), " ", describe(status),
                ": a failed boot");
      continue;
    }
    std::cerr << "error: the firmware in slot " << firmware::to_string(d->slot) << " (" << d->image.version << ") "
              << describe(status) << "\n";
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  }
}

}  // namespace cg::app
