// RFC 3339 date-times as OCPP carries them, and the station's wall-clock offset.
#include "core/clock.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace {

using namespace std::chrono;
using cg::clock::format_rfc3339;
using cg::clock::parse_rfc3339;
using cg::clock::SysTime;

SysTime at(int y, unsigned mo, unsigned d, int h, int mi, int s, int ms = 0) {
  const auto days = sys_days{year{y} / month{mo} / day{d}};
  return SysTime{(time_point_cast<milliseconds>(days) + hours{h} + minutes{mi} + seconds{s} + milliseconds{ms})
                     .time_since_epoch()};
}

TEST(Clock, FormatsUtcWithAndWithoutMillis) {
  EXPECT_EQ(format_rfc3339(SysTime{}), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_rfc3339(SysTime{}, true), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(at(2026, 3, 14, 15, 9, 26, 535)), "2026-03-14T15:09:26Z");
  EXPECT_EQ(format_rfc3339(at(2026, 3, 14, 15, 9, 26, 535), true), "2026-03-14T15:09:26.535Z");
  EXPECT_EQ(format_rfc3339(at(2026, 3, 14, 15, 9, 26, 7), true), "2026-03-14T15:09:26.007Z");
  // before the epoch the fraction is still 0-999
  EXPECT_EQ(format_rfc3339(SysTime{milliseconds{-1}}, true), "1969-12-31T23:59:59.999Z");
}

TEST(Clock, ParsesUtc) {
  auto t = parse_rfc3339("2026-03-14T15:09:26Z");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(*t, at(2026, 3, 14, 15, 9, 26));
  // RFC 3339 allows lower-case t and z
  EXPECT_EQ(parse_rfc3339("2026-03-14t15:09:26z"), at(2026, 3, 14, 15, 9, 26));
}

TEST(Clock, RoundTrips) {
  const std::vector<SysTime> times{SysTime{}, at(2000, 2, 29, 23, 59, 59, 999), at(2026, 1, 1, 0, 0, 0, 1),
                                   at(2026, 12, 31, 12, 30, 45, 500), at(2099, 6, 15, 6, 6, 6, 60)};
  for (const auto& t : times) {
    const std::string ms = format_rfc3339(t, true);
    auto back = parse_rfc3339(ms);
    ASSERT_TRUE(back.has_value()) << ms;
    EXPECT_EQ(*back, t) << ms;
    EXPECT_EQ(format_rfc3339(*back, true), ms);

    const std::string s = format_rfc3339(t);
    auto back_s = parse_rfc3339(s);
    ASSERT_TRUE(back_s.has_value()) << s;
    EXPECT_EQ(*back_s, time_point_cast<seconds>(t)) << s;  // whole seconds
    EXPECT_EQ(format_rfc3339(*back_s), s);
  }
  for (const char* s : {"2026-03-14T15:09:26Z", "1999-12-31T23:59:59Z", "2024-02-29T00:00:00Z"}) {
    auto t = parse_rfc3339(s);
    ASSERT_TRUE(t.has_value()) << s;
    EXPECT_EQ(format_rfc3339(*t), s);
  }
}

TEST(Clock, OffsetsAreConvertedToUtc) {
  const SysTime utc = at(2026, 3, 14, 15, 9, 26);
  EXPECT_EQ(parse_rfc3339("2026-03-14T16:09:26+01:00"), utc);
  EXPECT_EQ(parse_rfc3339("2026-03-14T09:39:26-05:30"), utc);
  EXPECT_EQ(parse_rfc3339("2026-03-14T15:09:26+00:00"), utc);
  EXPECT_EQ(parse_rfc3339("2026-03-14T15:09:26-00:00"), utc);
  // an offset that crosses midnight and a year boundary
  EXPECT_EQ(parse_rfc3339("2027-01-01T01:30:00+02:00"), at(2026, 12, 31, 23, 30, 0));
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2026-03-14T16:09:26.250+01:00"), true), "2026-03-14T15:09:26.250Z");
}

TEST(Clock, FractionalSeconds) {
  const SysTime base = at(2026, 3, 14, 15, 9, 26);
  EXPECT_EQ(parse_rfc3339("2026-03-14T15:09:26.5Z"), base + milliseconds{500});
  EXPECT_EQ(parse_rfc3339("2026-03-14T15:09:26.05Z"), base + milliseconds{50});
  EXPECT_EQ(parse_rfc3339("2026-03-14T15:09:26.123Z"), base + milliseconds{123});
  EXPECT_EQ(parse_rfc3339("2026-03-14T15:09:26.000Z"), base);
  // more than millisecond precision: truncated to milliseconds
  EXPECT_EQ(parse_rfc3339("2026-03-14T15:09:26.123456789Z"), base + milliseconds{123});
  EXPECT_EQ(parse_rfc3339("2026-03-14T15:09:26.9999Z"), base + milliseconds{999});
  EXPECT_EQ(parse_rfc3339("2026-03-14T15:09:26.1+01:00"), base - hours{1} + milliseconds{100});
}

TEST(Clock, LeapDays) {
  EXPECT_TRUE(parse_rfc3339("2024-02-29T12:00:00Z").has_value());
  EXPECT_TRUE(parse_rfc3339("2000-02-29T12:00:00Z").has_value());
  EXPECT_FALSE(parse_rfc3339("2026-02-29T12:00:00Z").has_value());
  EXPECT_FALSE(parse_rfc3339("1900-02-29T12:00:00Z").has_value());
}

TEST(Clock, LeapSecondsOnlyAt2359Utc) {
  EXPECT_EQ(parse_rfc3339("2016-12-31T23:59:60Z"), at(2017, 1, 1, 0, 0, 0));
  EXPECT_EQ(parse_rfc3339("2017-01-01T00:59:60+01:00"), at(2017, 1, 1, 0, 0, 0));
  EXPECT_FALSE(parse_rfc3339("2026-11-22T10:00:60Z"));
  EXPECT_FALSE(parse_rfc3339("2016-12-31T23:59:60+01:00")) << "22:59 UTC";
}

TEST(Clock, InvalidTextIsRejected) {
  const std::vector<std::string> bad{
      "2026-02-30T00:00:00Z",                         // no 30 February
      "2026-04-31T00:00:00Z",                         // April has 30 days
      "2026-13-01T00:00:00Z",                         // month 13
      "2026-00-10T00:00:00Z",                         // month 0
      "2026-01-00T00:00:00Z",                         // day 0
      "2026-01-32T00:00:00Z",                         // day 32
      "2026-03-14T25:00:00Z",                         // hour 25
      "2026-03-14T24:00:00Z",                         // hour 24
      "2026-03-14T12:60:00Z",                         // minute 60
      "2026-03-14T12:00:61Z",                         // second 61
      "2026-03-14T15:09:26",                          // no zone
      "2026-03-14T15:09:26.Z",                        // empty fraction
      "2026-03-14T15:09:26.5",                        // fraction, no zone
      "2026-03-14T15:09:26ZZ",                        // trailing text
      "2026-03-14T15:09:26Z ",                        // trailing space
      "2026-03-14T15:09:26+1:00",                     // offset hour with one digit
      "2026-03-14T15:09:26+01",                       // offset without minutes
      "2026-03-14T15:09:26+0100",                     // offset without colon
      "2026-03-14T15:09:26+24:00",                    // offset hour 24
      "2026-03-14T15:09:26+01:60",                    // offset minute 60
      "2026-03-14X15:09:26Z",                         // wrong separator
      "2026/03/14T15:09:26Z",                         // wrong date separators
      "2026-3-14T15:09:26Z",                          // one-digit month
      "26-03-14T15:09:26Z",                           // two-digit year
      "2026-03-14T15:09Z",                            // no seconds
      "2026-03-14",                                   // date only
      "",                                             //
      "not a date at all, really",                    //
      "2026-03-14T15:09:26.1234567890123456789012Z",  // longer than 40 characters
      "+2026-03-14T15:09:26Z",                        // sign before the year
      "2026-03-14T15:09:2xZ",                         // non-digit
  };
  for (const auto& s : bad) EXPECT_FALSE(parse_rfc3339(s).has_value()) << '"' << s << '"';
}

TEST(Clock, OffsetShiftsNowUtc) {
  using namespace std::chrono_literals;
  const auto saved = cg::clock::offset();
  cg::clock::set_offset(1h);
  EXPECT_EQ(cg::clock::offset(), 1h);
  const auto sys = time_point_cast<milliseconds>(system_clock::now());
  const auto ours = cg::clock::now_utc();
  EXPECT_GE(ours - sys, 1h - 1s);
  EXPECT_LE(ours - sys, 1h + 1s);
  cg::clock::set_offset(-30s);
  EXPECT_LE(cg::clock::now_utc() - time_point_cast<milliseconds>(system_clock::now()), -29s);
  cg::clock::set_offset(saved);
  EXPECT_EQ(cg::clock::offset(), saved);
}

}  // namespace
