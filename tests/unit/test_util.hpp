// Small helpers shared by the unit tests.
#pragma once
#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace cg::test {

// A fresh directory under /tmp, e.g. /tmp/cg-storage-Ab12Cd; the caller removes it.
inline std::filesystem::path make_temp_dir(const char* tag) {
  std::string tmpl = std::string("/tmp/cg-") + tag + "-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

}  // namespace cg::test
