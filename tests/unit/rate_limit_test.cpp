// RecordLimiter: the audit records a peer can trigger at will (malformed
// frames, TLS failures on every reconnect) are capped per window, and what was
// held back is counted into the next record, never silently dropped.
#include "audit/rate_limit.hpp"

#include <gtest/gtest.h>

namespace {
using cg::audit::RecordLimiter;
using namespace std::chrono_literals;

TEST(AuditRateLimit, BurstThenCountedThenANewWindow) {
  RecordLimiter l(3, 15min);
  const auto t0 = RecordLimiter::Clock::time_point{} + 1h;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(l.admit(t0 + i * 1s)) << i;
  EXPECT_EQ(l.take_suppressed(), 0);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(l.admit(t0 + 10s + i * 1min)) << i;
  // Still inside the window: refused, and the count keeps growing.
  EXPECT_FALSE(l.admit(t0 + 14min + 59s));
  // A new window: the next record is written and carries the six held back.
  EXPECT_TRUE(l.admit(t0 + 15min));
  EXPECT_EQ(l.take_suppressed(), 6);
  EXPECT_EQ(l.take_suppressed(), 0) << "counted once";
  EXPECT_TRUE(l.admit(t0 + 15min + 1s));
  EXPECT_TRUE(l.admit(t0 + 15min + 2s));
  EXPECT_FALSE(l.admit(t0 + 15min + 3s));
}

TEST(AuditRateLimit, TheFirstRecordIsAlwaysWritten) {
  // Whatever the clock reads at start (steady_clock may start near zero).
  RecordLimiter l(1, 1min);
  EXPECT_TRUE(l.admit(RecordLimiter::Clock::time_point{}));
  EXPECT_FALSE(l.admit(RecordLimiter::Clock::time_point{} + 59s));
  EXPECT_TRUE(l.admit(RecordLimiter::Clock::time_point{} + 60s));
  EXPECT_EQ(l.take_suppressed(), 1);
}

}  // namespace
