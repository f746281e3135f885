// StorageWatch: a state file system running short of space is one
// MemoryExhaustion record (not one per check), again only after it recovered.
#include "audit/storage_watch.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>

#include "audit/audit_log.hpp"
#include "security/key_store.hpp"
#include "test_util.hpp"

namespace {
namespace fs = std::filesystem;
using namespace cg::audit;

struct Seen {
  int alarms = 0;
  boost::json::object last;
};

class StorageWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = cg::test::make_temp_dir("storage-watch");
    keys_ = cg::security::open_file_key_store({root_ / "keys"});
    log_ = AuditLog::open(root_ / "audit", *keys_);
    log_->on_record([this](const RecordView& v) {
      if (v.type != Event::MemoryExhaustion) return;
      ++seen_.alarms;
      seen_.last = boost::json::parse(v.line.substr(0, v.line.find('\t'))).as_object();
    });
  }
  void TearDown() override {
    log_.reset();
    fs::remove_all(root_);
  }
  fs::path root_;
  std::unique_ptr<cg::security::KeyStore> keys_;
  std::unique_ptr<AuditLog> log_;
  Seen seen_;
};

constexpr std::uint64_t MiB = 1 << 20;

TEST_F(StorageWatchTest, OneRecordWhenShortThenAgainOnlyAfterRecovery) {
  StorageWatch w(*log_, root_, 32 * MiB, 5);
  w.check(900 * MiB, 1000 * MiB);
  EXPECT_EQ(seen_.alarms, 0);
  w.check(40 * MiB, 1000 * MiB);  // 4 %: below 5 %
  EXPECT_EQ(seen_.alarms, 1);
  EXPECT_TRUE(w.alarmed());
  EXPECT_EQ(seen_.last.at("type").as_string(), "MemoryExhaustion");
  EXPECT_TRUE(seen_.last.at("critical").as_bool()) << "the CSMS hears of it";
  const auto& d = seen_.last.at("details").as_object();
  EXPECT_EQ(d.at("resource").as_string(), "stateFilesystem");
  EXPECT_EQ(d.at("freeBytes").as_int64(), static_cast<long long>(40 * MiB));
  for (int i = 0; i < 10; ++i) w.check(10 * MiB, 1000 * MiB);
  EXPECT_EQ(seen_.alarms, 1) << "not one record per check";
  w.check(80 * MiB, 1000 * MiB);  // 8 %: above the limit but not twice it
  EXPECT_TRUE(w.alarmed());
  w.check(200 * MiB, 1000 * MiB);
  EXPECT_FALSE(w.alarmed());
  w.check(20 * MiB, 1000 * MiB);
  EXPECT_EQ(seen_.alarms, 2);
}

TEST_F(StorageWatchTest, AbsoluteLimitOnLargeDisks) {
  StorageWatch w(*log_, root_, 32 * MiB, 5);
  w.check(31 * MiB, 1ull << 40);  // far more than 5 % … of nothing: 31 MiB is too little anyway
  EXPECT_EQ(seen_.alarms, 1);
}

TEST_F(StorageWatchTest, TheRealFileSystemOfATempDirIsNotShort) {
  StorageWatch w(*log_, root_, 1, 0);  // any free space at all is enough
  w.check();
  EXPECT_EQ(seen_.alarms, 0);
  EXPECT_FALSE(w.alarmed());
}

}  // namespace
