#include "security/secret_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace cg::security {

Result<void> write_file_durably(const std::string& file, std::string_view data) {
  const std::string tmp = file + ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return fail(Errc::Storage, "cannot create " + tmp + " (" + std::strerror(errno) + ")");
  const bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), file.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return fail(Errc::Storage, "cannot write " + file);
  }
  const auto slash = file.rfind('/');
  fsync_dir(slash == std::string::npos ? "." : slash == 0 ? "/" : file.substr(0, slash));
  return {};
}

void fsync_dir(const std::string& dir) {
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

Result<std::string> read_file_bounded(const std::filesystem::path& file, std::size_t max, bool follow_symlinks) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | (follow_symlinks ? 0 : O_NOFOLLOW));
  if (fd < 0) return fail(Errc::NotFound, "cannot read " + file.string() + ": " + std::strerror(errno));
  std::string out(max + 1, '\0');
  std::size_t got = 0;
  int err = 0;
  while (got < out.size()) {
    const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) err = errno;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (err != 0) return fail(Errc::NotFound, "cannot read " + file.string() + ": " + std::strerror(err));
  if (got > max) {
    return fail(Errc::InvalidArgument, file.string() + " is larger than " + std::to_string(max) + " bytes");
  }
  out.resize(got);
  return out;
}

}  // namespace cg::security
