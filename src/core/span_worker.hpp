// A second thread that works through byte spans one at a time, in order, so
// that the caller can read the next chunk while this one is hashed or written
// (firmware verification and slot writes, FW-7). submit() waits until the
// previous span is done, then hands this one over and returns: a caller that
// alternates between two buffers never overwrites bytes still in use. Small
// spans (below `inline_below` bytes), or no thread available, run on the
// caller's thread. Nothing throws.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <system_error>
#include <thread>

namespace cg::core {

class SpanWorker {
 public:
  using Work = std::function<void(std::span<const std::uint8_t>)>;
  explicit SpanWorker(Work work, std::size_t inline_below = 64 * 1024)
      : work_(std::move(work)), inline_below_(inline_below) {}
  SpanWorker(const SpanWorker&) = delete;
  SpanWorker& operator=(const SpanWorker&) = delete;
  ~SpanWorker() {
    if (thread_.joinable()) {
      {
        std::lock_guard lk(mu_);
        stop_ = true;
      }
      cv_.notify_all();
      thread_.join();
    }
  }

  void submit(std::span<const std::uint8_t> bytes) {
    wait();
    if (bytes.size() < inline_below_ || !start_thread()) {
      work_(bytes);
      return;
    }
    {
      std::lock_guard lk(mu_);
      job_ = bytes;
      busy_ = true;
    }
    cv_.notify_all();
  }

  // Returns once every submitted span is done.
  void wait() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [this] { return !busy_; });
  }

 private:
  bool start_thread() {
    if (thread_.joinable()) return true;
    try {
      thread_ = std::thread([this] { run(); });
      return true;
    } catch (const std::system_error&) {
      return false;
    }
  }

  void run() {
    std::unique_lock lk(mu_);
    while (true) {
      cv_.wait(lk, [this] { return busy_ || stop_; });
      if (!busy_) return;  // stop
      const auto bytes = job_;
      lk.unlock();
      work_(bytes);
      lk.lock();
      busy_ = false;
      cv_.notify_all();
    }
  }

  Work work_;
  std::size_t inline_below_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::span<const std::uint8_t> job_;
  bool busy_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace cg::core
