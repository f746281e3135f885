#include "app/audit_cli.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>
#include <openssl/crypto.h>
#include <iostream>

#include "app/pki_cli.hpp"
#include "audit/audit_log.hpp"
#include "core/config.hpp"
#include "policy/policy.hpp"
#include "security/key_store.hpp"
#include "services/security_log.hpp"

namespace cg::app {
namespace fs = std::filesystem;

namespace {

// The station's key store (the log's MAC key is sealed by it) and its state
// directory; prints the problem and returns nullptr when it cannot be opened.
std::unique_ptr<security::KeyStore> open_keys(const AuditTarget& t, fs::path& state_dir) {
  config::Config cfg;
  if (!t.config_file.empty()) {
    // Only the key store and the state directory are needed: the file is
    // parsed (strictly), not checked for what running the station takes.
    if (auto err = config::load_file(t.config_file, cfg)) {
      std::cerr << "error: " << err->text() << "\n";
      return nullptr;
    }
  }
  if (!t.state_dir.empty()) cfg.state_dir = t.state_dir;
  if (cfg.state_dir.empty()) {
    std::cerr << "error: give --state-dir, or --config with station.state_dir\n";
    return nullptr;
  }
  state_dir = cfg.state_dir;
  if (!fs::is_directory(state_dir)) {
    std::cerr << "error: no state directory " << state_dir.string() << "\n";
    return nullptr;
  }
  try {
    return open_configured_key_store(cfg);
  } catch (const std::exception& e) {
    std::cerr << "error: key store: " << e.what() << "\n";
    return nullptr;
  }
}

const char* kKeyHint =
    " (the log's key is sealed by the station's key store: for a PKCS#11 store pass --config with its [key_store])";

std::string range(const audit::VerifyResult& r) {
  if (r.records == 0) return "no records";
  return std::to_string(r.records) + " records (" + std::to_string(r.first_seq) + ".." + std::to_string(r.last_seq) +
         ")";
}

}  // namespace

policy::Principal local_admin() {
  const uid_t uid = ::getuid();
  const passwd* pw = ::getpwuid(uid);
  return {policy::Role::Admin, policy::Interface::LocalMaintenance,
          "cli:" + (pw ? std::string(pw->pw_name) : "uid " + std::to_string(uid))};
}

policy::Principal local_engineer() {
  policy::Principal p = local_admin();
  p.role = policy::Role::Engineer;
  return p;
}

int try_lock_state_dir(const fs::path& state_dir) {
  const fs::path lock_path = state_dir / "chargeguard.lock";
  const int fd = ::open(lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int audit_verify(const AuditTarget& t, const std::string& export_file, const services::PolicyFn& policy) {
  fs::path state_dir;
  auto keys = open_keys(t, state_dir);
  if (!keys) return 1;
  // Read-only beside a running daemon: nothing is recorded (the daemon owns the log).
  services::Gate gate(nullptr, policy);
  services::SecurityLogService log(gate, state_dir / "audit", *keys);
  auto res = log.verify(local_admin(), export_file.empty() ? std::nullopt : std::optional<fs::path>(export_file));
  if (!res) {
    std::cerr << "error: " << res.error().message << "\n";
    return 1;
  }
  auto& r = *res;
  if (!r.ok && r.problem.find("key") != std::string::npos && t.config_file.empty()) r.problem += kKeyHint;
  if (r.ok) {
    std::cout << "audit log OK: " << range(r);
    if (r.first_seq > 1) std::cout << "; records before " << r.first_seq << " are not part of it (exported and dropped, "
                                   << "cleared, or outside the export)";
    std::cout << "\n";
    if (!r.warning.empty()) std::cerr << "warning: " << r.warning << "\n";
    return 0;
  }
  std::cerr << "audit log BROKEN: " << r.problem << "\n";
  if (r.records) std::cerr << "(" << r.records << " records before it verified)\n";
  return 1;
}

int audit_export(const AuditTarget& t, const std::string& out_file, const services::PolicyFn& policy) {
  fs::path state_dir;
  auto keys = open_keys(t, state_dir);
  if (!keys) return 1;
  services::Gate gate(nullptr, policy);
  services::SecurityLogService log(gate, state_dir / "audit", *keys);
  std::ofstream file;
  if (!out_file.empty()) {
    file.open(out_file, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::cerr << "error: cannot write " << out_file << "\n";
      return 1;
    }
  }
  auto res = log.export_to(local_admin(), out_file.empty() ? std::cout : file);
  if (!res) {
    std::cerr << "error: " << res.error().message << "\n";
    return 1;
  }
  auto& r = *res;
  if (!r.ok) {
    if (r.problem.find("key") != std::string::npos && t.config_file.empty()) r.problem += kKeyHint;
    std::cerr << "exported " << r.records << " records — WARNING: " << r.problem << "\n";
    return 1;
  }
  if (!r.warning.empty()) std::cerr << "warning: " << r.warning << "\n";
  std::cerr << "exported " << range(r) << " (chain verified)\n";
  return 0;
}

int audit_clear(const AuditTarget& t, bool discard_unexported, const services::PolicyFn& policy) {
  fs::path state_dir;
  auto keys = open_keys(t, state_dir);
  if (!keys) return 1;
  const auto dir = state_dir / "audit";
  if (!fs::exists(dir / "audit.key.sealed") && !fs::exists(dir / "audit.key")) {
    std::cerr << "error: no security log in " << state_dir.string() << " (is this a chargeguard state directory?)\n";
    return 1;
  }
  const int lock = try_lock_state_dir(state_dir);
  if (lock < 0) {
    std::cerr << "error: a chargeguard daemon is running with state directory " << state_dir.string()
              << "; stop it first (the running station owns its security log)\n";
    return 1;
  }
  int rc = 1;
  try {
    auto open_log = audit::AuditLog::open(dir, *keys);
    services::Gate gate(open_log.get(), policy);
    services::SecurityLogService log(gate, dir, *keys, open_log.get());
    const auto res = log.clear(local_admin(), discard_unexported);
    if (!res && res.error().code == Errc::Conflict) {
      std::cerr << "error: " << res.error().message << "; run `chargeguard audit export --state-dir "
                << state_dir.string() << " --out FILE` first, or pass --discard-unexported\n";
    } else if (!res) {
      std::cerr << "error: " << res.error().message << "\n";
    } else if (res->stored) {
      std::cout << "security log cleared; the new chain starts with record " << res->seq << " (SecurityLogWasCleared)\n";
      rc = 0;
    } else {
      std::cerr << "error: " << res->error << "\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
  }
  ::close(lock);
  return rc;
}

}  // namespace cg::app
