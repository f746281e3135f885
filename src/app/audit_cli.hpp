// `chargeguard audit …`: verify, export and clear the security log of a state
// directory (a local admin with access to it). Each asks the one policy
// (ReadSecurityLog, ClearSecurityLog) with a local-admin principal naming the
// OS user, so that the decision and its audit source stay in one place.
// REQ: LOG-2, LOG-3, AUTHZ-3
#pragma once
#include <filesystem>
#include <string>

#include "policy/policy.hpp"
#include "services/gate.hpp"

namespace cg::app {

// Which station: its state directory and, for a key store other than the
// development file store in <state_dir>/keys (PKCS#11), its configuration file
// ([key_store]; its station.state_dir when no state directory is given). The
// log's MAC key is sealed by that key store (LOG-2).
struct AuditTarget {
  std::filesystem::path state_dir;
  std::string config_file;
};

// Each goes through the security-log service, which asks the one policy
// (`policy`: a test injects another to prove it is asked).
int audit_verify(const AuditTarget& t, const std::string& export_file,
                 const services::PolicyFn& policy = &policy::authorize);
int audit_export(const AuditTarget& t, const std::string& out_file,
                 const services::PolicyFn& policy = &policy::authorize);
// Refuses while a daemon owns the state directory, and refuses to drop records
// that never left the station unless discard_unexported.
int audit_clear(const AuditTarget& t, bool discard_unexported, const services::PolicyFn& policy = &policy::authorize);

// The person at the console of a CLI command: a local admin (file access to
// the state directory is what the OS granted), named by the OS account.
policy::Principal local_admin();
// The console user in the engineer's role (firmware installs: separation of duties, AUTH-2).
policy::Principal local_engineer();
// Takes the one-daemon-per-state-directory lock; -1 when another process holds it.
int try_lock_state_dir(const std::filesystem::path& state_dir);

}  // namespace cg::app
