// REQ: FW-5 — see floor.hpp.
#include "firmware/floor.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "security/key_store.hpp"
#include "security/secret_file.hpp"

namespace cg::firmware {
namespace fs = std::filesystem;

namespace {
constexpr std::size_t kMaxRecords = 10000;  // a directory flooded with names is damage, not a floor

std::string errno_text() { return std::strerror(errno); }

// The record's content when it is exactly "<name>\n".
bool record_matches(const fs::path& file, const std::string& name) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  char buf[32];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  return n > 0 && std::string(buf, static_cast<std::size_t>(n)) == name + "\n";
}
}  // namespace

SecurityFloor::SecurityFloor(fs::path dir, security::KeyStore* keys) : dir_(std::move(dir)), keys_(keys) {}

Result<std::uint32_t> SecurityFloor::records() const {
  DIR* d = ::opendir(dir_.c_str());
  if (!d) {
    if (errno == ENOENT) return 0u;
    return fail(Errc::Storage, "cannot read " + dir_.string() + ": " + errno_text());
  }
  std::uint32_t best = 0;
  std::size_t seen = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.empty() || name.size() > 10 || name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (++seen > kMaxRecords) {
      ::closedir(d);
      return fail(Errc::Storage, dir_.string() + " holds too many records");
    }
    const unsigned long long v = std::stoull(name);
    if (v > 0xffffffffull || std::to_string(v) != name) continue;
    if (!record_matches(dir_ / name, name)) continue;  // torn or foreign
    best = std::max(best, static_cast<std::uint32_t>(v));
  }
  ::closedir(d);
  return best;
}

Result<std::uint32_t> SecurityFloor::value() const {
  auto r = records();
  if (!r) return r;
  std::uint32_t v = *r;
  if (keys_) {
    try {
      if (const auto c = keys_->read_counter(kFloorCounter)) {
        v = std::max<std::uint64_t>(v, std::min<std::uint64_t>(*c, 0xffffffffull)) & 0xffffffffu;
      }
    } catch (const std::exception& e) {
      return fail(Errc::Storage, std::string("cannot read the security-version floor from the key store: ") + e.what());
    }
  }
  return v;
}

Result<std::uint32_t> SecurityFloor::raise(std::uint32_t version) {
  auto now = value();
  if (!now) return now;
  if (*now >= version) return *now;
  if (!keys_) return fail(Errc::Internal, "the security-version floor is raised only with the key store at hand");
  try {
    keys_->raise_counter(kFloorCounter, version);
  } catch (const std::exception& e) {
    return fail(Errc::Storage, std::string("cannot raise the security-version floor in the key store: ") + e.what());
  }
  for (const fs::path& d : {dir_.parent_path(), dir_}) {
    if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) {
      return fail(Errc::Storage, "cannot create " + d.string() + ": " + errno_text());
    }
  }
  const std::string name = std::to_string(version);
  if (auto w = security::write_file_durably((dir_ / name).string(), name + "\n"); !w) return w.error();
  return version;
}

}  // namespace cg::firmware
