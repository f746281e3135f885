// Persistent state: one SQLite database (WAL, synchronous=FULL) under the state
// directory. Prepared statements only. Schema migrations are versioned by
// PRAGMA user_version.
#pragma once
#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace cg::storage {

struct DbError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Stmt {
 public:
  Stmt(sqlite3* db, std::string_view sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int idx, std::int64_t v);
  Stmt& bind(int idx, std::string_view v);
  Stmt& bind(int idx, double v);
  Stmt& bind_null(int idx);
  // true: a row is available; false: done.
  bool step();
  void run();  // step to completion, expecting no rows
  void reset();

  std::int64_t col_int(int i) const;
  double col_double(int i) const;
  std::string col_text(int i) const;
  bool col_null(int i) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
};

class Db {
 public:
  // Opens (creating if needed, mode 0600) and migrates the database.
  explicit Db(const std::filesystem::path& file);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  sqlite3* raw() { return db_; }
  void exec(std::string_view sql);
  Stmt prepare(std::string_view sql) { return Stmt(db_, sql); }
  std::int64_t last_insert_id() const { return sqlite3_last_insert_rowid(db_); }

  // Key/value metadata (boot reason, counters, secrets of later issues).
  std::optional<std::string> meta(std::string_view key);
  void set_meta(std::string_view key, std::string_view value);

  // RAII transaction: commits at commit(), rolls back otherwise. The
  // outermost one is BEGIN IMMEDIATE: it takes the write lock at once
  // (waiting for another connection's writer up to the busy timeout), so a
  // read-then-write unit of work never finds its snapshot stale at the write
  // (WAL's SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out). Nested ones
  // are savepoints.
  class Tx {
   public:
    explicit Tx(Db& db);
    ~Tx();
    void commit();

   private:
    Db& db_;
    bool outer_ = false;
    bool done_ = false;
  };

 private:
  void migrate();
  sqlite3* db_ = nullptr;
};

}  // namespace cg::storage
