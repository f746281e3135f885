// The one thread that computes password hashes for the web front end (AUTH-8,
// NET-3). Argon2id costs ≈ 19 MiB and tens of milliseconds per hash; doing it
// on the I/O thread would stall OCPP and every page, doing it on many threads
// would let a login flood take the memory and the cores from the control
// loop. So: one worker, a bounded queue (kMaxQueued jobs, at most
// kMaxPerAddress from one client address), and a clear "busy" answer beyond.
// The thread runs at a lower priority (nice 10), so that under a flood the
// scheduler gives the control loop and the I/O thread the cores first.
// The worker owns its database connection and its Gate (a Gate is not shared
// between threads); the job runs there and posts its answer back.
#pragma once
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace cg::web {

class AuthWorker {
 public:
  static constexpr int kMaxQueued = 32;
  static constexpr int kMaxPerAddress = 2;
  static constexpr int kNice = 10;  // the worker thread's nice value: below the control loop and the I/O thread

  AuthWorker();
  ~AuthWorker();
  AuthWorker(const AuthWorker&) = delete;
  AuthWorker& operator=(const AuthWorker&) = delete;

  // Runs `job` on the worker thread; false (job not run) when the queue or
  // that address's share of it is full.
  bool submit(const std::string& address, std::function<void()> job);
  // Runs `fn` on the worker thread and waits (set-up and shut-down).
  void run_sync(const std::function<void()>& fn);
  void stop();

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::mutex mu_;
  int queued_ = 0;
  std::map<std::string, int> per_address_;
  std::thread thread_;
};

}  // namespace cg::web
