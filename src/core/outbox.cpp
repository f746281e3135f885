#include "core/outbox.hpp"

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

namespace cg::core {

std::int64_t Outbox::push(const std::string& action, const std::string& payload, const std::string& tx_id) {
  auto st = db_.prepare("INSERT INTO outbox(action,payload,tx_id) VALUES(?,?,?)");
  st.bind(1, action).bind(2, payload);
  if (tx_id.empty()) st.bind_null(3);
  else st.bind(3, tx_id);
  st.run();
  return db_.last_insert_id();
}

std::optional<QueuedMessage> Outbox::front() {
  auto st = db_.prepare("SELECT seq, action, payload, attempts, tx_id FROM outbox ORDER BY seq LIMIT 1");
  if (!st.step()) return std::nullopt;
  return QueuedMessage{st.col_int(0), st.col_text(1), st.col_text(2), static_cast<int>(st.col_int(3)), st.col_text(4)};
}

void Outbox::remove(std::int64_t seq) { db_.prepare("DELETE FROM outbox WHERE seq=?").bind(1, seq).run(); }

void Outbox::quarantine(std::int64_t seq, const std::string& reason) {
  storage::Db::Tx tx(db_);
  auto st = db_.prepare("SELECT action, payload, tx_id FROM outbox WHERE seq=?");
  st.bind(1, seq);
  if (st.step()) {
    const std::string payload = redact_ ? redact_(st.col_text(1)) : st.col_text(1);
    auto ins = db_.prepare("INSERT INTO outbox_rejected(seq,action,payload,tx_id,reason) VALUES(?,?,?,?,?)");
    ins.bind(1, seq).bind(2, st.col_text(0)).bind(3, payload);
    if (st.col_null(2)) ins.bind_null(4);
    else ins.bind(4, st.col_text(2));
    ins.bind(5, reason).run();
  }
  remove(seq);
  tx.commit();
}

Purged Outbox::purge_rejected(std::int64_t max_rows, std::chrono::seconds max_age) {
  Purged p;
  storage::Db::Tx tx(db_);
  auto range = [&](const char* where, auto bind) {
    auto st = db_.prepare(std::string("SELECT COUNT(*), MIN(seq), MAX(seq) FROM outbox_rejected WHERE ") + where);
    bind(st);
    st.step();
    return std::array<std::int64_t, 3>{st.col_int(0), st.col_null(1) ? 0 : st.col_int(1), st.col_null(2) ? 0 : st.col_int(2)};
  };
  auto note = [&](const std::array<std::int64_t, 3>& r) {
    if (r[0] == 0) return;
    p.first_seq = p.rows ? std::min(p.first_seq, r[1]) : r[1];
    p.last_seq = std::max(p.last_seq, r[2]);
    p.rows += r[0];
  };
  // `at` is written by SQLite as UTC "YYYY-MM-DDTHH:MM:SSZ": compared as text.
  const std::string cutoff = "-" + std::to_string(max_age.count()) + " seconds";
  const char* old = "at < strftime('%Y-%m-%dT%H:%M:%SZ','now',?)";
  const auto aged = range(old, [&](storage::Stmt& s) { s.bind(1, cutoff); });
  if (aged[0]) db_.prepare(std::string("DELETE FROM outbox_rejected WHERE ") + old).bind(1, cutoff).run();
  note(aged);
  p.by_age = aged[0];
  const std::int64_t left = rejected_count();
  if (left > max_rows) {
    // The oldest beyond the limit: seq below the (max_rows)-th newest.
    auto st = db_.prepare("SELECT seq FROM outbox_rejected ORDER BY seq DESC LIMIT 1 OFFSET ?");
    st.bind(1, max_rows);
    st.step();
    const std::int64_t keep_above = st.col_int(0);
    const char* over = "seq <= ?";
    note(range(over, [&](storage::Stmt& s) { s.bind(1, keep_above); }));
    db_.prepare(std::string("DELETE FROM outbox_rejected WHERE ") + over).bind(1, keep_above).run();
  }
  tx.commit();
  return p;
}

void Outbox::redact_rejected() {
  if (!redact_) return;
  storage::Db::Tx tx(db_);
  std::vector<std::pair<std::int64_t, std::string>> rows;
  {
    auto st = db_.prepare("SELECT seq, payload FROM outbox_rejected");
    while (st.step()) rows.emplace_back(st.col_int(0), st.col_text(1));
  }
  auto up = db_.prepare("UPDATE outbox_rejected SET payload=? WHERE seq=?");
  for (const auto& [seq, payload] : rows) {
    const std::string r = redact_(payload);
    if (r != payload) up.bind(1, r).bind(2, seq).run();
  }
  tx.commit();
}

std::int64_t Outbox::rejected_count() {
  auto st = db_.prepare("SELECT COUNT(*) FROM outbox_rejected");
  st.step();
  return st.col_int(0);
}

void Outbox::count_attempt(std::int64_t seq) {
  db_.prepare("UPDATE outbox SET attempts=attempts+1 WHERE seq=?").bind(1, seq).run();
}

std::int64_t Outbox::size() {
  auto st = db_.prepare("SELECT COUNT(*) FROM outbox");
  st.step();
  return st.col_int(0);
}

std::int64_t Outbox::size_for_tx(const std::string& tx_id) {
  auto st = db_.prepare("SELECT COUNT(*) FROM outbox WHERE tx_id=?");
  st.bind(1, tx_id);
  st.step();
  return st.col_int(0);
}

}  // namespace cg::core
