// Small helpers shared by the unit tests.
#pragma once
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
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

// The whole content of a file ("" when it cannot be read).
inline std::string read_all(const std::filesystem::path& f) {
  std::ifstream in(f, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Every byte of every file under dir (recursively), concatenated: to prove
// that a secret is in no file.
inline std::string all_bytes(const std::filesystem::path& dir) {
  std::string out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out += read_all(e.path());
  return out;
}

}  // namespace cg::test
