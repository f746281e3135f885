// Small helpers shared by the unit tests.
#pragma once
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace cg::test {

// A fresh directory under /tmp, e.g. /tmp/cg-storage-Ab12Cd; the caller removes it.
inline std::filesystem::path make_temp_dir(const char* tag) {
  std::string tmpl = std::string("/tmp/cg-") + tag + "-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

// Substring check with a readable failure message (gmock is not linked).
inline ::testing::AssertionResult has(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

// Replaces the file's content (test fixtures, damaged files).
inline void write_file(const std::filesystem::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

}  // namespace cg::test
