#include "core/storage.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace cg::storage {
namespace {
[[noreturn]] void fail(sqlite3* db, std::string_view what) {
  throw DbError(std::string(what) + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

// Migrations: index i brings the schema from version i to i+1. Append only.
constexpr const char* kMigrations[] = {
    // v1: the foundation
    R"sql(
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE variables (
      name TEXT PRIMARY KEY,              -- Component[.instance][@evse[.connector]]/Variable[.instance]
      value TEXT NOT NULL);
    CREATE TABLE outbox (                 -- messages that must reach the CSMS, in order
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      action TEXT NOT NULL,
      payload TEXT NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      tx_id TEXT);
    CREATE TABLE transactions (
      tx_id TEXT PRIMARY KEY,
      evse_id INTEGER NOT NULL,
      connector_id INTEGER NOT NULL,
      seq_no INTEGER NOT NULL,            -- next seqNo to use
      started_at TEXT NOT NULL,
      energy_wh REAL NOT NULL DEFAULT 0,
      id_token TEXT,                      -- JSON of the idToken (needed for the Ended event)
      remote_start_id INTEGER,
      ended INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE auth_list (              -- local authorization list, keyed by HMAC of the token
      token_key TEXT PRIMARY KEY,
      info TEXT NOT NULL);
    CREATE TABLE auth_cache (
      token_key TEXT PRIMARY KEY,
      info TEXT NOT NULL,
      updated_at INTEGER NOT NULL);
    CREATE TABLE availability (
      evse_id INTEGER PRIMARY KEY,        -- 0 = whole station
      operative INTEGER NOT NULL);
    )sql",
    // v2: messages taken out of the outbox (refused by the CSMS, or invalid)
    R"sql(
    CREATE TABLE outbox_rejected (
      seq INTEGER PRIMARY KEY,
      action TEXT NOT NULL,
      payload TEXT NOT NULL,
      tx_id TEXT,
      reason TEXT NOT NULL,
      at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')));
    )sql",
    // v3: network connection profiles set by the CSMS (B09); slot 0 is the configuration file's
    R"sql(
    CREATE TABLE network_profiles (
      slot INTEGER PRIMARY KEY CHECK (slot >= 1),
      security_profile INTEGER NOT NULL CHECK (security_profile BETWEEN 1 AND 3),
      url TEXT NOT NULL,
      ocpp_interface TEXT NOT NULL,
      message_timeout INTEGER NOT NULL DEFAULT 0,
      stored_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')));
    )sql",
    // v4: transactions are deleted when they end; the flag was never set
    R"sql(
    ALTER TABLE transactions DROP COLUMN ended;
    )sql",
    // v5 (CHG-2): an open transaction keeps only the keyed hash of its idToken
    // (the Started event in the outbox carries the id until the CSMS has it;
    // after a crash the Ended event, PowerLoss, carries none). secure_delete
    // zeroes the dropped column's pages.
    R"sql(
    ALTER TABLE transactions DROP COLUMN id_token;
    ALTER TABLE transactions ADD COLUMN token_hash TEXT;
    )sql",
    // v6 (AUTH-1…AUTH-10): maintenance accounts (Argon2id hashes only) and the
    // login locks, per account and per source address, that survive a restart.
    R"sql(
    CREATE TABLE accounts (
      name TEXT PRIMARY KEY,
      role TEXT NOT NULL CHECK (role IN ('admin', 'engineer', 'viewer')),
      hash TEXT NOT NULL,
      must_change INTEGER NOT NULL DEFAULT 1,
      enabled INTEGER NOT NULL DEFAULT 1,
      created_at INTEGER NOT NULL,
      password_set_at INTEGER NOT NULL,
      last_login_at INTEGER,
      last_login_addr TEXT,
      failures_since INTEGER NOT NULL DEFAULT 0,
      last_failure_at INTEGER,
      last_failure_addr TEXT);
    CREATE TABLE login_locks (
      subject TEXT PRIMARY KEY,
      failures INTEGER NOT NULL DEFAULT 0,
      step INTEGER NOT NULL DEFAULT 0,
      locked_until INTEGER NOT NULL DEFAULT 0,
      last_failure_at INTEGER NOT NULL);
    )sql",
    // v7 (AUTH-9): the commissioning PIN, one per station, Argon2id hash only.
    R"sql(
    CREATE TABLE commissioning_pin (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      hash TEXT NOT NULL,
      is_default INTEGER NOT NULL,
      set_at INTEGER NOT NULL);
    )sql",
};
}  // namespace

Stmt::Stmt(sqlite3* db, std::string_view sql) : db_(db) {
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &st_, nullptr) != SQLITE_OK)
    fail(db, "prepare");
}
Stmt::~Stmt() { sqlite3_finalize(st_); }
Stmt& Stmt::bind(int idx, std::int64_t v) {
  if (sqlite3_bind_int64(st_, idx, v) != SQLITE_OK) fail(db_, "bind");
  return *this;
}
Stmt& Stmt::bind(int idx, std::string_view v) {
  if (sqlite3_bind_text(st_, idx, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT) != SQLITE_OK)
    fail(db_, "bind");
  return *this;
}
Stmt& Stmt::bind(int idx, double v) {
  if (sqlite3_bind_double(st_, idx, v) != SQLITE_OK) fail(db_, "bind");
  return *this;
}
Stmt& Stmt::bind_null(int idx) {
  if (sqlite3_bind_null(st_, idx) != SQLITE_OK) fail(db_, "bind");
  return *this;
}
bool Stmt::step() {
  const int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(db_, "step");
}
void Stmt::run() {
  while (step()) {
  }
  reset();
}
void Stmt::reset() {
  sqlite3_reset(st_);
  sqlite3_clear_bindings(st_);
}
std::int64_t Stmt::col_int(int i) const { return sqlite3_column_int64(st_, i); }
double Stmt::col_double(int i) const { return sqlite3_column_double(st_, i); }
std::string Stmt::col_text(int i) const {
  const auto* p = sqlite3_column_text(st_, i);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(st_, i)))
           : std::string();
}
bool Stmt::col_null(int i) const { return sqlite3_column_type(st_, i) == SQLITE_NULL; }

Db::Db(const std::filesystem::path& file) {
  // Create the file 0600 before SQLite opens it, so state is never world-readable.
  const int fd = ::open(file.c_str(), O_CREAT | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) throw DbError("cannot open " + file.string());
  ::fchmod(fd, 0600);
  ::close(fd);
  if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw DbError("open " + file.string() + ": " + msg);
  }
  // The destructor does not run when the constructor throws: close here.
  try {
    sqlite3_busy_timeout(db_, 5000);
    sqlite3_db_config(db_, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
    sqlite3_db_config(db_, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
    exec("PRAGMA journal_mode=WAL");
    // FULL: a commit is fsynced before it returns, so whatever we acknowledged
    // survives kill -9 and power loss.
    exec("PRAGMA synchronous=FULL");
    exec("PRAGMA foreign_keys=ON");
    exec("PRAGMA secure_delete=ON");
    migrate();
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

Db::~Db() { sqlite3_close(db_); }

void Db::exec(std::string_view sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown";
    sqlite3_free(err);
    throw DbError("exec: " + msg);
  }
}

void Db::migrate() {
  const auto read_version = [this] {
    Stmt v(db_, "PRAGMA user_version");
    v.step();
    return static_cast<std::size_t>(v.col_int(0));
  };
  auto version = read_version();
  const std::size_t target = std::size(kMigrations);
  if (version > target) throw DbError("database schema is newer than this build (version " + std::to_string(version) + ")");
  if (version == target) return;
  // All pending steps in one transaction: one commit (and fsync) at the first start.
  // The version is read again under the write lock: another connection may have migrated meanwhile.
  Tx tx(*this);
  version = read_version();
  for (; version < target; ++version) {
    exec(kMigrations[version]);
    exec("PRAGMA user_version=" + std::to_string(version + 1));
  }
  tx.commit();
}

std::optional<std::string> Db::meta(std::string_view key) {
  Stmt s(db_, "SELECT value FROM meta WHERE key=?");
  s.bind(1, key);
  if (s.step()) return s.col_text(0);
  return std::nullopt;
}

void Db::set_meta(std::string_view key, std::string_view value) {
  Stmt s(db_, "INSERT INTO meta(key,value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value");
  s.bind(1, key).bind(2, value).run();
}

// Savepoints nest, so a unit of work can contain another (a transaction's
// start row and its Started event in one commit). The outermost one commits.
Db::Tx::Tx(Db& db) : db_(db), outer_(sqlite3_get_autocommit(db.db_) != 0) {
  db_.exec(outer_ ? "BEGIN IMMEDIATE" : "SAVEPOINT cg_tx");
}
Db::Tx::~Tx() {
  if (!done_) {
    try {
      db_.exec(outer_ ? "ROLLBACK" : "ROLLBACK TO cg_tx; RELEASE cg_tx");
    } catch (...) {
    }
  }
}
void Db::Tx::commit() {
  db_.exec(outer_ ? "COMMIT" : "RELEASE cg_tx");
  done_ = true;
}

}  // namespace cg::storage
