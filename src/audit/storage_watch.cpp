#include "audit/storage_watch.hpp"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

#include "audit/audit_log.hpp"
#include "core/log.hpp"

namespace cg::audit {

void StorageWatch::check() {
  struct statvfs v{};
  if (::statvfs(dir_.c_str(), &v) != 0) {
    log::warn("audit", "cannot check the free space of ", dir_.string(), ": ", std::strerror(errno));
    return;
  }
  const std::uint64_t unit = v.f_frsize ? v.f_frsize : v.f_bsize;
  check(static_cast<std::uint64_t>(v.f_bavail) * unit, static_cast<std::uint64_t>(v.f_blocks) * unit);
}

void StorageWatch::check(std::uint64_t free_bytes, std::uint64_t total_bytes) {
  const auto below = [&](std::uint64_t factor) {
    return free_bytes < min_bytes_ * factor || free_bytes * 100 < total_bytes * min_percent_ * factor;
  };
  if (alarmed_) {
    if (!below(2)) {
      alarmed_ = false;
      log::info("audit", "free space of ", dir_.string(), " recovered: ", free_bytes >> 20, " MiB");
    }
    return;
  }
  if (!below(1)) return;
  alarmed_ = true;
  log::warn("audit", "ALARM: the file system of ", dir_.string(), " is nearly full: ", free_bytes >> 20, " MiB of ",
            total_bytes >> 20, " MiB free");
  Details d;
  d.text("resource", "stateFilesystem")
      .number("freeBytes", static_cast<long long>(free_bytes))
      .number("totalBytes", static_cast<long long>(total_bytes));
  log_.record(Event::MemoryExhaustion, Outcome::Failure, Source::system(), d);
}

}  // namespace cg::audit
