#include "services/lockout.hpp"

#include <algorithm>

namespace cg::services {

Lockout::Lockout(storage::Db& db, std::vector<config::Config::LockStep> steps) : db_(db), steps_(std::move(steps)) {
  if (steps_.empty()) steps_.push_back({});
}

std::optional<std::int64_t> Lockout::locked_until(std::string_view subject, std::int64_t now) {
  auto st = db_.prepare("SELECT locked_until FROM login_locks WHERE subject = ?");
  st.bind(1, subject);
  if (!st.step()) return std::nullopt;
  const std::int64_t until = st.col_int(0);
  if (until > now) return until;
  return std::nullopt;
}

std::optional<std::int64_t> Lockout::failure(std::string_view subject, std::int64_t now) {
  storage::Db::Tx tx(db_);
  std::int64_t failures = 0, step = 0;
  {
    auto st = db_.prepare("SELECT failures, step FROM login_locks WHERE subject = ?");
    st.bind(1, subject);
    if (st.step()) {
      failures = st.col_int(0);
      step = st.col_int(1);
    }
  }
  ++failures;
  const auto& rule = steps_[static_cast<std::size_t>(std::min<std::int64_t>(step, static_cast<std::int64_t>(steps_.size()) - 1))];
  std::optional<std::int64_t> until;
  if (failures >= rule.failures) {
    until = now + rule.duration.count();
    failures = 0;  // the next step counts its own failures after this lock
    ++step;
  }
  auto up = db_.prepare(
      "INSERT INTO login_locks(subject, failures, step, locked_until, last_failure_at) VALUES (?, ?, ?, ?, ?) "
      "ON CONFLICT(subject) DO UPDATE SET failures = excluded.failures, step = excluded.step, "
      "locked_until = CASE WHEN excluded.locked_until > 0 THEN excluded.locked_until ELSE locked_until END, "
      "last_failure_at = excluded.last_failure_at");
  up.bind(1, subject).bind(2, failures).bind(3, step).bind(4, until.value_or(0)).bind(5, now);
  up.run();
  tx.commit();
  return until;
}

void Lockout::success(std::string_view subject) {
  auto st = db_.prepare("DELETE FROM login_locks WHERE subject = ?");
  st.bind(1, subject);
  st.run();
}

void Lockout::purge(std::int64_t now) {
  auto st = db_.prepare("DELETE FROM login_locks WHERE locked_until < ? AND last_failure_at < ?");
  st.bind(1, now).bind(2, now - 86400);
  st.run();
}

}  // namespace cg::services
