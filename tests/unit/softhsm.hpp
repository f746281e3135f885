// One SoftHSM2 installation per test process (own SOFTHSM2_CONF and token
// directory in a temporary directory, random PINs made at test time), shared
// by the unit tests that need a PKCS#11 token. Without SoftHSM2 they fail.
#pragma once
#include <openssl/rand.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "programs.hpp"
#include "security/key_store.hpp"
#include "test_util.hpp"

namespace cg::test {

inline std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> b(bytes);
  if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1) throw std::runtime_error("RAND_bytes");
  std::string out;
  for (unsigned char c : b) out += "0123456789abcdef"[c >> 4], out += "0123456789abcdef"[c & 15];
  return out;
}

// A file with the given mode (PIN files: 0600).
inline void write_file_mode(const std::filesystem::path& p, const std::string& data, mode_t mode) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
  ::chmod(p.c_str(), mode);
}

// One SoftHSM2 installation per test process: a temporary directory holding
// softhsm2.conf and the token directory (the "HSM"; never under a state dir).
class SoftHsm {
 public:
  struct Token {
    std::string label;
    std::string user_pin;
  };

  static SoftHsm& get() {
    static SoftHsm* hsm = new SoftHsm();  // removed by the environment below
    return *hsm;
  }

  // A fresh token with random SO and user PINs. Tokens must be made before the
  // first store of the process opens the module (SoftHSM lists tokens at
  // C_Initialize), so fixtures create all they need in SetUp.
  Token new_token() {
    if (!error_.empty()) throw std::runtime_error(error_);
    Token t{"cg-" + random_hex(4), random_hex(12)};
    const auto r = cg::test::run_program(
        "softhsm2-util", {"--init-token", "--free", "--label", t.label, "--so-pin", random_hex(12), "--pin", t.user_pin});
    if (r.status != 0) throw std::runtime_error("softhsm2-util --init-token failed: " + r.output);
    return t;
  }

  void remove() {
    if (!root_.empty()) std::filesystem::remove_all(root_);
  }
  const std::filesystem::path& token_dir() const { return token_dir_; }

 private:
  SoftHsm() {
    if (!std::filesystem::exists(security::kSoftHsm2Module)) {
      error_ = std::string("SoftHSM2 is not installed (") + security::kSoftHsm2Module +
               " missing): install the Debian package softhsm2 (scripts/test.sh does)";
      return;
    }
    try {
      cg::test::program("softhsm2-util");
    } catch (const std::exception& e) {
      error_ = e.what();
      return;
    }
    root_ = cg::test::make_temp_dir("softhsm");
    token_dir_ = root_ / "tokens";
    std::filesystem::create_directory(token_dir_);
    write_file_mode(root_ / "softhsm2.conf",
               "directories.tokendir = " + token_dir_.string() +
                   "\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
               0600);
    ::setenv("SOFTHSM2_CONF", (root_ / "softhsm2.conf").c_str(), 1);
  }
  std::filesystem::path root_, token_dir_;
  std::string error_;
};

// Removes the installation at the end of the test program.
class SoftHsmCleanup : public ::testing::Environment {
 public:
  void TearDown() override { SoftHsm::get().remove(); }
};
inline const auto* const kSoftHsmCleanup = ::testing::AddGlobalTestEnvironment(new SoftHsmCleanup);

}  // namespace cg::test
