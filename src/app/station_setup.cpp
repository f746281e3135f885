#include "app/station_setup.hpp"

#include <dirent.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <vector>

#include "app/audit_cli.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"

namespace cg::app {
namespace fs = std::filesystem;

namespace {

struct PasswordResult {
  std::string password;
  std::string error;
};

PasswordResult read_password(const fs::path& file) {
  struct stat st{};
  if (::stat(file.c_str(), &st) != 0) return {{}, "cannot read password file " + file.string()};
  if (!S_ISREG(st.st_mode)) return {{}, "password file " + file.string() + " is not a regular file"};
  if (st.st_size > 1024) return {{}, "password file " + file.string() + " is larger than 1 KiB"};
  if (st.st_mode & 0077)
    log::warn("station", "password file ", file.string(), " is readable by group/others; chmod 600 it");
  std::ifstream in(file);
  std::string pw;
  std::getline(in, pw);
  if (!pw.empty() && pw.back() == '\r') pw.pop_back();
  if (pw.empty()) return {{}, "password file " + file.string() + " is empty"};
  if (pw.size() > 64) return {{}, "password in " + file.string() + " is longer than 64 characters"};
  return {pw, {}};
}

}  // namespace

// Before the re-exec of a reset: the
// sockets (CSMS connection, simulator socket) are not close-on-exec and would
// otherwise live on, unused, in the new process, one more set per reset.
void close_descriptors_from(int first) {
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, static_cast<unsigned>(first), ~0U, 0U) == 0) return;
#endif
  std::vector<int> fds;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d)) {
      const int fd = std::atoi(e->d_name);
      if (fd >= first && fd != ::dirfd(d)) fds.push_back(fd);
    }
    ::closedir(d);
  }
  for (int fd : fds) ::close(fd);
}

int prepare_state_dir(const config::Config& cfg) {
  std::error_code ec;
  const bool existed = fs::exists(cfg.state_dir);
  fs::create_directories(cfg.state_dir, ec);
  if (ec) {
    std::cerr << "error: cannot create state directory " << cfg.state_dir << ": " << ec.message() << "\n";
    return -1;
  }
  if (!existed) {
    ::chmod(cfg.state_dir.c_str(), 0700);
  } else {
    // An existing directory is never re-permissioned (it could be /var/lib);
    // one that others can write is refused: they could replace our files.
    struct stat sd{};
    if (::stat(cfg.state_dir.c_str(), &sd) != 0 || !S_ISDIR(sd.st_mode) || (sd.st_mode & 0022)) {
      std::cerr << "error: station.state_dir " << cfg.state_dir
                << " must be a directory that only its owner can write (chmod 700)\n";
      return -1;
    }
  }
  // One daemon per state directory.
  const int lock_fd = try_lock_state_dir(cfg.state_dir);
  if (lock_fd < 0) {
    std::cerr << "error: another chargeguard is already running with state directory " << cfg.state_dir << "\n";
    return -1;
  }
  return lock_fd;
}

bool prepare_password(const config::Config& cfg, security::KeyStore& keys, security::SealedPassword& sealed_pw) {
  std::error_code ec;
  {
    const bool file_exists = !cfg.password_file.empty() && fs::exists(cfg.password_file, ec);
    if (!sealed_pw.has_current() && cfg.security_profile == 3 && !file_exists) {
      // Profile 3 authenticates with the station certificate; a password is
      // only needed for a later move to profile 2 (and can be set by A01).
    } else if (!sealed_pw.has_current()) {
      auto pw = read_password(cfg.password_file);
      if (!pw.error.empty()) {
        std::cerr << "error: csms.password_file: " << pw.error
                  << " (security profiles 1 and 2 need a password; there is no default and none is sealed in "
                  << cfg.state_dir.string() << " yet)\n";
        return false;
      }
      try {
        sealed_pw.store(pw.password);
      } catch (const std::exception& e) {
        OPENSSL_cleanse(pw.password.data(), pw.password.size());
        std::cerr << "error: cannot seal the CSMS password: " << e.what() << "\n";
        return false;
      }
      OPENSSL_cleanse(pw.password.data(), pw.password.size());
      log::info("station", "CSMS password from ", cfg.password_file.string(), " sealed into ",
                sealed_pw.current_file().string(), " (", keys.backend(),
                " key store); the sealed one is used from now on and the file may be removed");
    } else {
      // Fails closed on a damaged blob or another key store: say how to recover.
      try {
        const auto cur = sealed_pw.current();
        if (file_exists) {
          auto pw = read_password(cfg.password_file);
          const bool same = pw.error.empty() && pw.password.size() == cur.size() &&
                            CRYPTO_memcmp(pw.password.data(), cur.data(), cur.size()) == 0;
          OPENSSL_cleanse(pw.password.data(), pw.password.size());
          if (!same)
            log::warn("station", "csms.password_file differs from the sealed CSMS password (changed by the CSMS or "
                                 "not yet confirmed); using the sealed one in ",
                      sealed_pw.current_file().string());
          else
            log::info("station", "using the sealed CSMS password (", sealed_pw.current_file().string(), ")");
        } else {
          log::info("station", "using the sealed CSMS password (", sealed_pw.current_file().string(), ")");
        }
      } catch (const std::exception& e) {
        std::cerr << "error: cannot unseal the CSMS password: " << e.what() << " (sealed by another key store? "
                  << "remove " << sealed_pw.current_file().string() << " to seal csms.password_file again)\n";
        return false;
      }
    }
  }
  return true;
}

bool prepare_identity(const config::Config& cfg, security::StationIdentity& identity, std::string_view backend) {
  try {
    identity.recover();
    if (cfg.security_profile == 3) {
      if (!identity.has_certificate(security::kStationKeyLabel) || !identity.has_key(security::kStationKeyLabel)) {
        std::cerr << "error: security profile 3 needs the station's key and certificate, and "
                  << identity.chain_file(security::kStationKeyLabel).string()
                  << " or the key 'station' is missing; provision the station first:\n"
                  << "  chargeguard pki provision --config FILE (see docs/configuration.md)\n";
        return false;
      }
      (void)identity.load(security::kStationKeyLabel);  // fails here, not at every reconnect
      if (const auto s = identity.summary(security::kStationKeyLabel)) {
        log::info("station", "station certificate CN=", s->common_name, ", O=", s->organization, ", serial ",
                  s->serial_hex, ", valid until ", clock::format_rfc3339(s->not_after), " (key in the ",
                  backend, " key store)");
        if (s->not_after < std::chrono::system_clock::now())
          // A00.FR.430 (errata): an expired certificate is still tried; the CSMS decides.
          log::warn("station", "the station certificate has EXPIRED; trying it anyway (the CSMS decides)");
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "error: station identity: " << e.what() << "\n";
    return false;
  }
  return true;
}

}  // namespace cg::app
