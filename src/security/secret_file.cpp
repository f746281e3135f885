#include "security/secret_file.hpp"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace cg::security {

Secret32 load_or_create_secret(const std::string& file) {
  Secret32 key{};
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno != ENOENT)
    throw std::runtime_error(file + ": cannot read the key (" + std::strerror(errno) + ")");
  if (fd >= 0) {
    const auto n = ::read(fd, key.data(), key.size());
    ::close(fd);
    if (n != static_cast<ssize_t>(key.size())) throw std::runtime_error(file + ": key file is damaged");
    return key;
  }
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) throw std::runtime_error("CSPRNG failure");
  const std::string tmp = file + ".tmp";
  fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + tmp);
  const bool ok = ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), file.c_str()) != 0) throw std::runtime_error("cannot write " + file);
  return key;
}

}  // namespace cg::security
