#include "web/auth_worker.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <future>

#include "core/log.hpp"

namespace cg::web {

AuthWorker::AuthWorker() : work_(io_.get_executor()), thread_([this] {
  // NET-3: hashing yields the cores to charging and OCPP. Linux nice values are
  // per thread; lowering one's own needs no privilege.
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kNice) != 0)
    log::warn("web", "authentication worker: cannot lower its priority");
  for (;;) {
    try {
      io_.run();
      return;
    } catch (const std::exception& e) {
      log::error("web", "authentication worker: ", e.what());
    }
  }
}) {}

AuthWorker::~AuthWorker() { stop(); }

void AuthWorker::stop() {
  work_.reset();
  if (thread_.joinable()) thread_.join();
}

bool AuthWorker::submit(const std::string& address, std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    if (queued_ >= kMaxQueued) return false;
    int& mine = per_address_[address];
    if (mine >= kMaxPerAddress) return false;
    ++mine;
    ++queued_;
  }
  boost::asio::post(io_, [this, address, job = std::move(job)] {
    try {
      job();
    } catch (const std::exception& e) {
      log::error("web", "authentication job failed: ", e.what());
    }
    std::lock_guard lock(mu_);
    --queued_;
    if (--per_address_[address] <= 0) per_address_.erase(address);
  });
  return true;
}

void AuthWorker::run_sync(const std::function<void()>& fn) {
  std::promise<void> done;
  boost::asio::post(io_, [&] {
    try {
      fn();
      done.set_value();
    } catch (...) {
      done.set_exception(std::current_exception());
    }
  });
  done.get_future().get();
}

}  // namespace cg::web
