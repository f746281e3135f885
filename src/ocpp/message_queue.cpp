#include "ocpp/message_queue.hpp"

namespace cg::ocpp {

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
  db_.prepare(
         "INSERT INTO outbox_rejected(seq,action,payload,tx_id,reason) "
         "SELECT seq,action,payload,tx_id,? FROM outbox WHERE seq=?")
      .bind(1, reason)
      .bind(2, seq)
      .run();
  remove(seq);
  tx.commit();
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

}  // namespace cg::ocpp
