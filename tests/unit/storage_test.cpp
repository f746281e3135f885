// Persistent state (SQLite): schema migrations, file permissions, durability
// across close/reopen, transactions that roll back, key/value metadata.
#include "core/storage.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;
using cg::storage::Db;
using cg::storage::DbError;

class Storage : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = cg::test::make_temp_dir("storage");
    file_ = dir_ / "station.db";
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::int64_t user_version(Db& db) {
    auto s = db.prepare("PRAGMA user_version");
    EXPECT_TRUE(s.step());
    return s.col_int(0);
  }
  static std::int64_t count(Db& db, const std::string& table) {
    auto s = db.prepare("SELECT COUNT(*) FROM " + table);
    EXPECT_TRUE(s.step());
    return s.col_int(0);
  }
  static unsigned mode_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  }

  fs::path dir_, file_;
};

TEST_F(Storage, MigrationsCreateTheSchemaAndSetUserVersion) {
  Db db(file_);
  EXPECT_EQ(user_version(db), 7);
  for (const char* t : {"meta", "variables", "outbox", "transactions", "auth_list", "auth_cache", "availability",
                        "outbox_rejected", "network_profiles", "accounts", "login_locks", "commissioning_pin"}) {
    auto s = db.prepare("SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name=?");
    s.bind(1, std::string_view(t));
    ASSERT_TRUE(s.step());
    EXPECT_EQ(s.col_int(0), 1) << t;
  }
}

TEST_F(Storage, ReopeningDoesNotMigrateAgain) {
  {
    Db db(file_);
    db.set_meta("k", "v");
  }
  Db db(file_);  // CREATE TABLE again would throw
  EXPECT_EQ(user_version(db), 7);
  EXPECT_EQ(db.meta("k"), "v");
}

TEST_F(Storage, NewerSchemaIsRefused) {
  {
    Db db(file_);
    db.exec("PRAGMA user_version=99");
  }
  try {
    Db db(file_);
    FAIL() << "a database from a newer build was opened";
  } catch (const DbError& e) {
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
  }
}

TEST_F(Storage, DatabaseFileIsCreatedWithMode0600) {
  const mode_t old = ::umask(0);  // even with a permissive umask
  {
    Db db(file_);
    db.set_meta("k", "v");
    EXPECT_EQ(mode_of(file_), 0600u);
    // SQLite gives the WAL and shared-memory files the database file's mode.
    for (const char* suffix : {"-wal", "-shm"}) {
      const fs::path p = file_.string() + suffix;
      if (fs::exists(p)) {
        EXPECT_EQ(mode_of(p), 0600u) << p;
      }
    }
  }
  ::umask(old);
}

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

TEST_F(Storage, FailedOpenLeavesNothingOpen) {
  {
    Db db(file_);
    db.exec("PRAGMA user_version=99");
  }
  const std::size_t before = open_fds();
  for (int i = 0; i < 3; ++i) EXPECT_THROW(Db db(file_), DbError);
  EXPECT_EQ(open_fds(), before) << "the connection of a failed open stays open";
}

TEST_F(Storage, CorruptFileIsADbError) {
  {
    std::ofstream out(file_, std::ios::binary);
    out << std::string(8192, '\x5a');
  }
  const std::size_t before = open_fds();
  EXPECT_THROW(Db db(file_), DbError);
  EXPECT_EQ(open_fds(), before);
}

TEST_F(Storage, ExistingWorldReadableFileIsTightenedTo0600) {
  { Db db(file_); }
  ASSERT_EQ(::chmod(file_.c_str(), 0644), 0);
  Db db(file_);
  EXPECT_EQ(mode_of(file_), 0600u);
}

TEST_F(Storage, SymlinkIsNotFollowed) {
  const fs::path target = dir_ / "elsewhere.db";
  fs::create_symlink(target, file_);
  EXPECT_THROW(Db db(file_), DbError);
  EXPECT_FALSE(fs::exists(target));
}

TEST_F(Storage, MissingDirectoryIsAnError) {
  EXPECT_THROW(Db db(dir_ / "no" / "such.db"), DbError);
}

TEST_F(Storage, WalModeIsOn) {
  Db db(file_);
  auto s = db.prepare("PRAGMA journal_mode");
  ASSERT_TRUE(s.step());
  EXPECT_EQ(s.col_text(0), "wal");
}

TEST_F(Storage, CommittedDataSurvivesCloseAndReopen) {
  {
    Db db(file_);
    Db::Tx tx(db);
    db.prepare("INSERT INTO outbox(action,payload,tx_id) VALUES(?,?,?)")
        .bind(1, std::string_view("TransactionEvent"))
        .bind(2, std::string_view("{\"seqNo\":0}"))
        .bind_null(3)
        .run();
    db.prepare("INSERT INTO transactions(tx_id,evse_id,connector_id,seq_no,started_at,energy_wh) VALUES(?,?,?,?,?,?)")
        .bind(1, std::string_view("tx-1"))
        .bind(2, std::int64_t{1})
        .bind(3, std::int64_t{1})
        .bind(4, std::int64_t{3})
        .bind(5, std::string_view("2026-01-01T00:00:00Z"))
        .bind(6, 1234.5)
        .run();
    tx.commit();
  }
  Db db(file_);
  auto s = db.prepare("SELECT action, payload, tx_id FROM outbox");
  ASSERT_TRUE(s.step());
  EXPECT_EQ(s.col_text(0), "TransactionEvent");
  EXPECT_EQ(s.col_text(1), "{\"seqNo\":0}");
  EXPECT_TRUE(s.col_null(2));
  EXPECT_FALSE(s.step());

  auto t = db.prepare("SELECT seq_no, energy_wh, token_hash FROM transactions WHERE tx_id=?");
  t.bind(1, std::string_view("tx-1"));
  ASSERT_TRUE(t.step());
  EXPECT_EQ(t.col_int(0), 3);
  EXPECT_DOUBLE_EQ(t.col_double(1), 1234.5);
  EXPECT_TRUE(t.col_null(2));
}

TEST_F(Storage, UncommittedTxRollsBack) {
  Db db(file_);
  {
    Db::Tx tx(db);
    db.set_meta("a", "1");
    db.prepare("INSERT INTO availability(evse_id,operative) VALUES(1,0)").run();
    // no commit
  }
  EXPECT_FALSE(db.meta("a").has_value());
  EXPECT_EQ(count(db, "availability"), 0);

  // and the database is usable afterwards
  db.set_meta("b", "2");
  EXPECT_EQ(db.meta("b"), "2");
}

TEST_F(Storage, TxRollsBackWhenAnExceptionLeavesTheScope) {
  Db db(file_);
  try {
    Db::Tx tx(db);
    db.set_meta("a", "1");
    db.exec("INSERT INTO no_such_table VALUES(1)");  // throws
    tx.commit();
  } catch (const DbError&) {
  }
  EXPECT_FALSE(db.meta("a").has_value());
}

TEST_F(Storage, RolledBackDataIsAbsentAfterReopen) {
  {
    Db db(file_);
    Db::Tx tx(db);
    db.set_meta("lost", "x");
  }
  Db db(file_);
  EXPECT_FALSE(db.meta("lost").has_value());
}

TEST_F(Storage, NestedTxRollsBackAloneInsideTheOuterOne) {
  Db db(file_);
  {
    Db::Tx outer(db);
    db.set_meta("kept", "1");
    {
      Db::Tx inner(db);
      db.set_meta("dropped", "2");
    }
    outer.commit();
  }
  EXPECT_EQ(db.meta("kept"), "1");
  EXPECT_FALSE(db.meta("dropped").has_value());
}

// Two connections (the station's and the web UI worker's): a unit of work that
// reads, then writes, must not fail because the other connection wrote in
// between (WAL: a deferred transaction's stale snapshot cannot be upgraded).
// The other writer waits for the transaction instead.
TEST_F(Storage, ReadThenWriteTxIsNotBrokenByAnotherConnectionsWrite) {
  Db a(file_);
  Db b(file_);
  std::atomic<bool> read_done{false};
  std::thread other([&] {
    while (!read_done) std::this_thread::yield();
    b.set_meta("other", "x");  // waits for a's transaction (busy timeout), then writes
  });
  {
    Db::Tx tx(a);
    EXPECT_FALSE(a.meta("mine").has_value());  // the read
    read_done = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the other writer tries meanwhile
    EXPECT_NO_THROW(a.set_meta("mine", "y"));  // the write
    tx.commit();
  }
  other.join();
  EXPECT_EQ(a.meta("mine"), "y");
  EXPECT_EQ(a.meta("other"), "x");
}

TEST_F(Storage, MetaGetSetOverwriteAndPersist) {
  {
    Db db(file_);
    EXPECT_FALSE(db.meta("boot.reason").has_value());
    db.set_meta("boot.reason", "PowerUp");
    EXPECT_EQ(db.meta("boot.reason"), "PowerUp");
    db.set_meta("boot.reason", "RemoteReset");
    EXPECT_EQ(db.meta("boot.reason"), "RemoteReset");
    db.set_meta("empty", "");
    EXPECT_EQ(db.meta("empty"), "");
    db.set_meta("quote'\"; DROP TABLE meta;--", "v");  // bound, never spliced into SQL
    EXPECT_EQ(count(db, "meta"), 3);
  }
  Db db(file_);
  EXPECT_EQ(db.meta("boot.reason"), "RemoteReset");
  EXPECT_EQ(db.meta("quote'\"; DROP TABLE meta;--"), "v");
}

TEST_F(Storage, BadSqlIsADbError) {
  Db db(file_);
  EXPECT_THROW(db.prepare("SELEC 1"), DbError);
  EXPECT_THROW(db.exec("SELEC 1"), DbError);
}

TEST_F(Storage, ConstraintViolationIsADbError) {
  Db db(file_);
  auto ins = [&] {
    db.prepare("INSERT INTO transactions(tx_id,evse_id,connector_id,seq_no,started_at) VALUES('t',1,1,0,'x')").run();
  };
  ins();
  EXPECT_THROW(ins(), DbError);  // duplicate primary key
}

TEST_F(Storage, StatementReuseAfterRun) {
  Db db(file_);
  auto ins = db.prepare("INSERT INTO meta(key,value) VALUES(?,?)");
  for (int i = 0; i < 5; ++i) ins.bind(1, "k" + std::to_string(i)).bind(2, std::string_view("v")).run();
  EXPECT_EQ(count(db, "meta"), 5);
  EXPECT_EQ(db.last_insert_id(), 5);
}

}  // namespace
