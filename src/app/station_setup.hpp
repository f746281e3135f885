// The checks and preparations of a station start that come before anything
// runs: the state directory (0700, one daemon at a time), the CSMS password
// sealed by the key store, the station identity for profile 3. Each returns
// false (or throws) after printing what is wrong and how to fix it.
// REQ: COM-1, COM-4, NET-1
#pragma once
#include <filesystem>

#include "core/config.hpp"
#include "security/key_store.hpp"
#include "security/sealed_password.hpp"
#include "security/station_identity.hpp"

namespace cg::app {

// Creates the state directory (0700) or checks an existing one (nobody but
// its owner may write it) and takes the one-daemon lock. Returns the lock's
// descriptor, or -1 after printing why.
int prepare_state_dir(const config::Config& cfg);

// The CSMS password (profiles 1/2). There is no default: the first start
// seals csms.password_file; from then on the sealed password is the source
// of truth (A01 may have rotated it). False after printing why.
bool prepare_password(const config::Config& cfg, security::KeyStore& keys, security::SealedPassword& sealed);

// Profile 3: the station's key and certificate must be there and usable.
// Completes an interrupted promotion (recover) in any case. False after printing why.
bool prepare_identity(const config::Config& cfg, security::StationIdentity& identity, std::string_view backend);

// Closes every descriptor from `first` on (before the re-exec of a reset).
void close_descriptors_from(int first);

}  // namespace cg::app
