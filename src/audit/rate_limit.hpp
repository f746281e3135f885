// Rate limit for audit records a peer can trigger at will (malformed frames,
// TLS failures on every reconnect): at most `burst` records per window; the
// rest are counted and the count goes into the next record that is written
// ("suppressedBefore"), so nothing disappears without a trace and a flood
// cannot fill the log (LOG-3) or the CSMS queue.
// REQ: LOG-1, LOG-3
#pragma once
#include <chrono>

namespace cg::audit {

class RecordLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  RecordLimiter(int burst, Clock::duration window) : burst_(burst), window_(window) {}

  // True: write the record now (with take_suppressed() in its details when
  // non-zero). False: it was counted instead.
  bool admit(Clock::time_point now = Clock::now()) {
    if (!started_ || now - window_start_ >= window_) {
      started_ = true;
      window_start_ = now;
      in_window_ = 0;
    }
    if (++in_window_ > burst_) {
      ++suppressed_;
      return false;
    }
    return true;
  }
  long long take_suppressed() {
    const long long n = suppressed_;
    suppressed_ = 0;
    return n;
  }

 private:
  int burst_;
  Clock::duration window_;
  bool started_ = false;
  Clock::time_point window_start_{};
  int in_window_ = 0;
  long long suppressed_ = 0;
};

}  // namespace cg::audit
