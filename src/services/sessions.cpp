#include "services/sessions.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <chrono>

#include "core/clock.hpp"
#include "security/base64.hpp"

namespace cg::services {
namespace {

std::string random_hex32() {
  unsigned char b[32];
  if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("CSPRNG failed");
  std::string s = security::hex_encode(b, sizeof b);
  OPENSSL_cleanse(b, sizeof b);
  return s;
}

std::string sha256_hex(std::string_view s) {
  unsigned char md[32];
  unsigned int len = 0;
  if (EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr) != 1) throw std::runtime_error("SHA-256 failed");
  return security::hex_encode(md, len);
}

bool is_token(std::string_view t) {
  if (t.size() != 64) return false;
  for (char c : t)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

SessionService::SessionService(Gate& gate, config::Config::Web rules, Now now)
    : gate_(gate), rules_(std::move(rules)), now_(now ? std::move(now) : Now(&clock::unix_seconds)) {}

SessionService::Opened SessionService::open(const policy::Principal& who, std::string_view address,
                                            bool must_change, bool password_expired, LoginHistory history) {
  Opened o;
  o.token = random_hex32();
  const std::string key = sha256_hex(o.token);
  const std::int64_t now = now_();
  o.info.handle = key.substr(0, 16);
  o.info.principal = who;
  o.info.address = std::string(address);
  o.info.created_at = o.info.last_activity = now;
  o.info.must_change = must_change;
  o.info.password_expired = password_expired;
  o.info.csrf = random_hex32();
  o.info.history = std::move(history);
  std::lock_guard lock(mu_);
  while (sessions_.size() >= static_cast<std::size_t>(rules_.max_sessions)) {
    auto oldest = sessions_.begin();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it)
      if (it->second.last_activity < oldest->second.last_activity) oldest = it;
    end_locked(oldest, "too many sessions: the least recently used one ended", audit::Source::system());
  }
  sessions_.emplace(key, o.info);
  return o;
}

SessionService::Checked SessionService::check(std::string_view token, std::string_view address, bool activity) {
  Checked c;
  if (!is_token(token)) return c;
  const std::string key = sha256_hex(token);
  const std::int64_t now = now_();
  std::lock_guard lock(mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) {
    if (auto e = ended_.find(key); e != ended_.end()) {
      c.ended = e->second;
      ended_.erase(e);  // said once
    }
    return c;
  }
  SessionInfo& s = it->second;
  if (now - s.last_activity >= rules_.idle_timeout.count()) {
    c.ended = "idle";
    end_locked(it, "idle timeout", audit::Source::system());
    return c;
  }
  if (now - s.created_at >= rules_.session_lifetime.count()) {
    c.ended = "expired";
    end_locked(it, "session lifetime reached", audit::Source::system());
    return c;
  }
  if (s.address != address) {
    // AUTH-6: the cookie came from another address: end the session everywhere.
    c.ended = "address";
    end_locked(it, "request from another address (" + std::string(address) + ")",
               audit::Source{"LocalMaintenance", std::string(address), s.principal.name});
    return c;
  }
  if (activity) s.last_activity = now;
  c.session = s;
  return c;
}

bool SessionService::csrf_ok(const SessionInfo& s, std::string_view token) const {
  return token.size() == s.csrf.size() && CRYPTO_memcmp(token.data(), s.csrf.data(), s.csrf.size()) == 0;
}

void SessionService::logout(std::string_view token) {
  if (!is_token(token)) return;
  std::lock_guard lock(mu_);
  auto it = sessions_.find(sha256_hex(token));
  if (it == sessions_.end()) return;
  const auto by = audit::Source::of(it->second.principal, it->second.address);
  end_locked(it, "logout", by);
}

void SessionService::password_changed(std::string_view account, std::string_view keep_handle) {
  std::lock_guard lock(mu_);
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    auto cur = it++;
    SessionInfo& s = cur->second;
    if (s.principal.name != account) continue;
    if (s.handle == keep_handle) {
      s.must_change = false;
      s.password_expired = false;
    } else {
      end_locked(cur, "the account's password was changed in another session", audit::Source::system());
    }
  }
}

void SessionService::end_account(std::string_view account, std::string_view why) {
  std::lock_guard lock(mu_);
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    auto cur = it++;
    if (cur->second.principal.name == account) end_locked(cur, why, audit::Source::system());
  }
}

Result<void> SessionService::end(const policy::Principal& who, std::string_view handle) {
  if (auto a = gate_.admit(who, policy::Operation::ManageAccounts, "end session"); !a) return a.error();
  std::lock_guard lock(mu_);
  const auto key = key_of_handle(handle);
  if (!key) return fail(Errc::NotFound, "no such session (it may have ended already)");
  end_locked(sessions_.find(*key), "ended by an administrator", audit::Source::of(who));
  return {};
}

Result<std::vector<SessionInfo>> SessionService::list(const policy::Principal& who) {
  if (auto a = gate_.admit(who, policy::Operation::ManageAccounts, "list sessions"); !a) return a.error();
  std::lock_guard lock(mu_);
  std::vector<SessionInfo> out;
  for (const auto& [k, e] : sessions_) {
    out.push_back(e);
    out.back().csrf.clear();
  }
  return out;
}

std::size_t SessionService::size() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

void SessionService::sweep() {
  const std::int64_t now = now_();
  std::lock_guard lock(mu_);
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    auto cur = it++;
    const SessionInfo& s = cur->second;
    if (now - s.last_activity >= rules_.idle_timeout.count()) end_locked(cur, "idle timeout", audit::Source::system());
    else if (now - s.created_at >= rules_.session_lifetime.count())
      end_locked(cur, "session lifetime reached", audit::Source::system());
  }
}

std::optional<std::string> SessionService::key_of_handle(std::string_view handle) const {
  if (handle.size() != 16) return std::nullopt;
  for (const auto& [k, e] : sessions_)
    if (e.handle == handle) return k;
  return std::nullopt;
}

void SessionService::end_locked(std::map<std::string, SessionInfo>::iterator it, std::string_view why,
                                const audit::Source& by) {
  const SessionInfo s = it->second;
  std::string code = "ended";
  if (why == "idle timeout") code = "idle";
  else if (why == "session lifetime reached") code = "expired";
  else if (why.starts_with("request from another address")) code = "address";
  if (why != "logout") {
    if (ended_.size() >= 256) ended_.erase(ended_.begin());
    ended_[it->first] = code;
  }
  sessions_.erase(it);
  gate_.record(by, audit::Event::SessionEnded, audit::Outcome::Success,
               audit::Details().text("account", s.principal.name).text("session", s.handle)
                   .text("address", s.address).text("reason", why));
}

}  // namespace cg::services
