#include "audit/audit_log.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "core/log.hpp"
#include "security/redact.hpp"
#include "audit/chain.hpp"
#include "security/sealed_secret.hpp"

namespace cg::audit {
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace detail;

fs::path log_file(const fs::path& audit_dir) { return audit_dir / "security.log"; }

Source Source::of(const policy::Principal& p, std::string address) {
  return {std::string(policy::to_string(p.iface)), std::move(address), clean_text(p.name)};
}

Details& Details::text(std::string_view key, std::string_view value) {
  obj_[key] = clean_text(value);
  return *this;
}
Details& Details::number(std::string_view key, long long value) {
  obj_[key] = value;
  return *this;
}
Details& Details::flag(std::string_view key, bool value) {
  obj_[key] = value;
  return *this;
}
Details& Details::id_token(std::string_view key, std::string_view type, std::string_view id) {
  tokens_.push_back({std::string(key), clean_text(type), std::string(id.substr(0, 64))});
  return *this;
}
Details& Details::secret_changed(std::string_view key) {
  obj_[key] = "(secret: not recorded)";
  return *this;
}

std::string RecordView::tech_info() const {
  // techInfo: the details object of the record, at most 255 characters.
  auto pos = line.find(",\"details\":");
  std::string t;
  if (pos != std::string::npos) {
    auto end = line.rfind(",\"prev\":");
    t = line.substr(pos + 11, end == std::string::npos ? std::string::npos : end - pos - 11);
  }
  if (t.size() > 255) {
    t.resize(252);
    while (!t.empty() && (static_cast<unsigned char>(t.back()) & 0xC0) == 0x80) t.pop_back();
    if (!t.empty() && (static_cast<unsigned char>(t.back()) & 0xC0) == 0xC0) t.pop_back();
    t += "...";
  }
  return t;
}

AuditLog::AuditLog(fs::path dir, Options opt) : dir_(std::move(dir)), opt_(opt) {}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
  if (anchor_fd_ >= 0) ::close(anchor_fd_);
  OPENSSL_cleanse(key_.data(), key_.size());
}



std::unique_ptr<AuditLog> AuditLog::open(const fs::path& dir, security::KeyStore& keys, Options opt) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create " + dir.string() + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  std::unique_ptr<AuditLog> log(new AuditLog(dir, opt));
  log->key_ = security::load_or_create_sealed_secret(keys, sealed_key_file(dir), security::kAuditMacKeyPurpose,
                                                     legacy_key_file(dir));
  log->crypto_ = std::make_unique<Crypto>(&log->key_);
  const fs::path file = log_file(dir);
  ::unlink((dir / "security.log.tmp").c_str());  // left by a crash during a reclaim; the log is whole
  log->fd_ = ::open(file.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (log->fd_ < 0) throw std::runtime_error("cannot open " + file.string() + ": " + std::strerror(errno));
  log->anchor_fd_ = ::open((dir / "anchor").c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (log->anchor_fd_ < 0) throw std::runtime_error("cannot open the audit anchor: " + std::string(std::strerror(errno)));

  struct stat st{};
  ::fstat(log->fd_, &st);
  auto size = static_cast<std::uint64_t>(st.st_size);
  log->prev_hash_ = kZeroHash;
  // A continuation line first: the chain goes on from the record it names.
  if (size > 0) {
    char head[256];
    const ssize_t n = ::pread(log->fd_, head, sizeof head, 0);
    const std::string_view h(head, n > 0 ? static_cast<std::size_t>(n) : 0);
    if (h.rfind(kContinues, 0) == 0) {
      const auto nl = h.find('\n');
      auto c = nl == std::string_view::npos ? std::nullopt
                                             : parse_signed(*log->crypto_, kContinues, h.substr(0, nl + 1));
      if (!c)
        throw std::runtime_error(file.string() + ": the continuation line is damaged; run `chargeguard audit verify`");
      log->header_bytes_ = nl + 1;
      log->seq_ = c->seq;
      log->prev_hash_ = c->hash;
    }
  }
  // Find the last complete record: its seq and hash continue the chain.
  if (size > log->header_bytes_) {
    const std::uint64_t tail = std::min<std::uint64_t>(size - log->header_bytes_, 64 * 1024);
    std::string buf(tail, '\0');
    if (::pread(log->fd_, buf.data(), tail, static_cast<off_t>(size - tail)) != static_cast<ssize_t>(tail))
      throw std::runtime_error("cannot read " + file.string());
    if (buf.back() != '\n') {
      // A torn last line: only a power loss during its write leaves one; it was
      // never acknowledged. Drop it so the chain continues from a whole record.
      const auto nl = buf.rfind('\n');
      const std::uint64_t keep = nl == std::string::npos ? size - tail : size - tail + nl + 1;
      log::warn("audit", "dropping a torn last record (", size - keep, " bytes) of ", file.string());
      if (::ftruncate(log->fd_, static_cast<off_t>(keep)) != 0 || ::fdatasync(log->fd_) != 0)
        throw std::runtime_error("cannot repair " + file.string());
      buf.resize(nl == std::string::npos ? 0 : nl + 1);
      size = keep;
    }
    if (!buf.empty()) {
      const auto start = buf.rfind('\n', buf.size() - 2);
      const std::string last = buf.substr(start == std::string::npos ? 0 : start + 1, std::string::npos);
      const auto t1 = last.find('\t');
      std::uint64_t seq = 0;
      if (!parse_seq(last, seq) || t1 == std::string::npos || t1 + 1 + kHashHex > last.size())
        throw std::runtime_error(file.string() + ": the last record is not readable; run `chargeguard audit verify`");
      log->seq_ = seq;
      log->prev_hash_ = last.substr(t1 + 1, kHashHex);
    }
  }
  log->bytes_ = size;
  log->first_seq_ = log->seq_ + 1;
  if (size > log->header_bytes_) {
    char first[32];
    const ssize_t n = ::pread(log->fd_, first, sizeof first, static_cast<off_t>(log->header_bytes_));
    std::uint64_t seq = 0;
    if (n > 0 && parse_seq(std::string_view(first, static_cast<std::size_t>(n)), seq)) log->first_seq_ = seq;
  }
  log->warned_nearly_full_ = log->bytes_ * 5 >= log->opt_.max_bytes * 4;
  return log;
}

void AuditLog::on_record(std::function<void(const RecordView&)> fn) {
  std::lock_guard lk(mu_);
  listeners_.push_back(std::move(fn));
}

std::uint64_t AuditLog::last_seq() const {
  std::lock_guard lk(mu_);
  return seq_;
}

std::uint64_t AuditLog::first_seq() const {
  std::lock_guard lk(mu_);
  return first_seq_;
}

std::uint64_t AuditLog::size_bytes() const {
  std::lock_guard lk(mu_);
  return bytes_;
}

std::string AuditLog::continuation_line(std::uint64_t after_seq, std::string_view prev_hash) const {
  std::lock_guard lk(mu_);
  return signed_text(*crypto_, kContinues, after_seq, prev_hash);
}

void AuditLog::mark_exported(std::uint64_t first, std::uint64_t last) {
  std::lock_guard lk(mu_);
  ExportedMark(dir_).update(*crypto_, first_seq_, first, last);
}

std::uint64_t AuditLog::exported_seq() const {
  std::lock_guard lk(mu_);
  return ExportedMark(dir_).read(*crypto_);
}


AuditLog::Result AuditLog::append_locked(Event e, Outcome o, const Source& src, const Details& d,
                                         std::vector<RecordView>& views) {
  // overwrite_exported: make room from 80% on, so that the alarm only sounds
  // for records that were never exported.
  if (opt_.full_policy == FullPolicy::OverwriteExported && bytes_ * 5 >= opt_.max_bytes * 4) reclaim_locked(views);
  return write_record_locked(e, o, src, d, views);
}

AuditLog::Result AuditLog::write_record_locked(Event e, Outcome o, const Source& src, const Details& d,
                                               std::vector<RecordView>& views) {
  const EventInfo& ei = info(e);
  Crypto& c = *crypto_;
  json::object details = d.json();
  for (const auto& t : d.tokens()) {
    // Badge ids (LOG-5): masked, plus a keyed hash to match records of one badge.
    const std::string msg = t.type + '\x1f' + t.id;
    unsigned char mac[32];
    c.hmac(reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac);
    details[t.key] = t.type + ":" + security::mask_identifier(t.id) + "#" + hex(mac, 6);
  }
  const std::string time = clock::format_rfc3339(clock::now_utc(), true);
  json::object body{{"seq", seq_ + 1},
                    {"time", time},
                    {"type", ei.name},
                    {"critical", ei.critical},
                    {"outcome", to_string(o)},
                    {"source", json::object{{"interface", clean_text(src.interface)},
                                            {"address", clean_text(src.address)},
                                            {"principal", clean_text(src.principal)}}},
                    {"details", std::move(details)}};
  std::string text = json::serialize(body);
  text.pop_back();  // '}'
  text += ",\"prev\":\"" + prev_hash_ + "\"}";
  // Capacity (LOG-3): never a silent loss. When full, non-critical records are
  // refused (and the refusal is reported to the caller and the diagnostics log).
  const std::uint64_t need = text.size() + 2 * kHashHex + 3;
  if (bytes_ + need > opt_.max_bytes && !ei.critical) {
    log::error("audit", "security log full (", bytes_, " bytes): refusing a non-critical ", ei.name, " record");
    return Result{0, false, "audit log full"};
  }
  unsigned char h[32], m[32];
  c.sha256(text, h);
  c.hmac(h, 32, m);
  const std::string hash = hex(h, 32);
  std::string line = text + '\t' + hash + '\t' + hex(m, 32) + '\n';
  if (!write_all(fd_, line.data(), line.size())) {
    const int err = errno;
    // Take back a partly written line (disk full…): the next record must
    // follow a whole one, or the chain breaks for every record after it.
    if (::ftruncate(fd_, static_cast<off_t>(bytes_)) != 0)
      log::error("audit", "cannot remove a partial record from the security log: ", std::strerror(errno));
    log::error("audit", "cannot write the security log: ", std::strerror(err));
    return Result{0, false, "audit log write failed"};
  }
  ++seq_;
  prev_hash_ = hash;
  bytes_ += line.size();
  line.pop_back();
  views.push_back(RecordView{seq_, time, e, o, std::move(line)});
  return Result{seq_, true, {}};
}

bool AuditLog::reclaim_locked(std::vector<RecordView>& views) {
  const std::uint64_t mark = ExportedMark(dir_).read(*crypto_);
  if (mark < first_seq_ || mark == reclaim_tried_at_) return false;
  reclaim_tried_at_ = mark;
  // Find the cut: after the last exported record, or earlier once the rest
  // fits in 60% of the capacity.
  const std::uint64_t target = opt_.max_bytes * 3 / 5;
  std::uint64_t off = header_bytes_, cut = 0, cut_seq = 0;
  std::string cut_hash, buf, carry;
  bool done = false;
  while (!done && off < bytes_) {
    buf.resize(static_cast<std::size_t>(std::min<std::uint64_t>(bytes_ - off, 256 * 1024)));
    const ssize_t n = ::pread(fd_, buf.data(), buf.size(), static_cast<off_t>(off));
    if (n <= 0) return false;
    buf.resize(static_cast<std::size_t>(n));
    carry += buf;
    const std::uint64_t carry_start = off - (carry.size() - buf.size());
    off += static_cast<std::uint64_t>(n);
    std::size_t pos = 0;
    for (std::size_t nl; !done && (nl = carry.find('\n', pos)) != std::string::npos; pos = nl + 1) {
      const std::string_view line(carry.data() + pos, nl - pos);
      std::uint64_t seq = 0;
      const auto t1 = line.find('\t');
      if (!parse_seq(line, seq) || t1 == std::string_view::npos || line.size() < t1 + 1 + kHashHex) return false;
      if (seq > mark) {
        done = true;
        break;
      }
      cut = carry_start + nl + 1;
      cut_seq = seq;
      cut_hash.assign(line.substr(t1 + 1, kHashHex));
      done = bytes_ - cut <= target;
      if (seq == mark) done = true;
    }
    carry.erase(0, pos);
  }
  if (cut == 0) return false;

  const fs::path file = log_file(dir_), tmp = dir_ / "security.log.tmp";
  const std::string header = signed_text(*crypto_, kContinues, cut_seq, cut_hash);
  const int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  bool ok = out >= 0 && write_all(out, header.data(), header.size());
  for (std::uint64_t p = cut; ok && p < bytes_;) {
    buf.resize(static_cast<std::size_t>(std::min<std::uint64_t>(bytes_ - p, 256 * 1024)));
    const ssize_t n = ::pread(fd_, buf.data(), buf.size(), static_cast<off_t>(p));
    ok = n > 0 && write_all(out, buf.data(), static_cast<std::size_t>(n));
    p += n > 0 ? static_cast<std::uint64_t>(n) : 0;
  }
  ok = ok && ::fdatasync(out) == 0;
  if (out >= 0) ::close(out);
  // The rename is the commit: before it the old log is whole, after it the new one.
  ok = ok && ::rename(tmp.c_str(), file.c_str()) == 0;
  if (!ok) {
    log::error("audit", "cannot drop exported records from the security log: ", std::strerror(errno));
    ::unlink(tmp.c_str());
    return false;
  }
  security::fsync_dir(dir_.string());
  const int nfd = ::open(file.c_str(), O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
  if (nfd < 0) throw std::runtime_error("cannot reopen the security log: " + std::string(std::strerror(errno)));
  ::close(fd_);
  fd_ = nfd;
  const std::uint64_t dropped_first = first_seq_;
  bytes_ = header.size() + (bytes_ - cut);
  header_bytes_ = header.size();
  first_seq_ = cut_seq + 1;
  reclaim_tried_at_ = 0;
  log::warn("audit", "security log: dropped exported records ", dropped_first, "..", cut_seq, " to make room");
  Details d;
  d.number("firstDropped", static_cast<long long>(dropped_first))
      .number("lastDropped", static_cast<long long>(cut_seq))
      .number("exportedUpTo", static_cast<long long>(mark))
      .number("bytes", static_cast<long long>(bytes_))
      .number("capacity", static_cast<long long>(opt_.max_bytes));
  write_record_locked(Event::SecurityLogOverwritten, Outcome::Success, Source::system(), d, views);
  return true;
}

void AuditLog::check_capacity_locked(std::vector<RecordView>& views) {
  if (warned_nearly_full_ && bytes_ * 10 < opt_.max_bytes * 7) warned_nearly_full_ = false;  // room again: re-arm
  if (warned_nearly_full_ || bytes_ * 5 < opt_.max_bytes * 4) return;
  warned_nearly_full_ = true;
  const bool overwrite = opt_.full_policy == FullPolicy::OverwriteExported;
  log::warn("audit", "ALARM: the security log is ", bytes_ * 100 / opt_.max_bytes, "% full",
            overwrite ? " of records not exported yet; export it (GetLog or `chargeguard audit export`)"
                      : "; export and clear it");
  Details nd;
  nd.text("resource", "securityLog")
      .number("bytes", static_cast<long long>(bytes_))
      .number("capacity", static_cast<long long>(opt_.max_bytes))
      .text("fullPolicy", overwrite ? "overwrite_exported" : "refuse_noncritical");
  write_record_locked(Event::MemoryExhaustion, Outcome::Failure, Source::system(), nd, views);
}

void AuditLog::write_anchor_locked() {
  // Not synced: after kill -9 the page cache keeps it; after a power loss it
  // may be older than the log, never newer (the log was synced first).
  const std::string a = anchor_text(*crypto_, seq_, prev_hash_);
  [[maybe_unused]] auto w = ::pwrite(anchor_fd_, a.data(), a.size(), 0);
}

AuditLog::Result AuditLog::clear(const Source& who) {
  std::vector<RecordView> views;
  Result r;
  std::vector<std::function<void(const RecordView&)>> listeners;
  {
    std::lock_guard lk(mu_);
    const std::uint64_t removed = bytes_ > header_bytes_ ? seq_ - first_seq_ + 1 : 0;
    const std::uint64_t exported = std::max(ExportedMark(dir_).read(*crypto_), first_seq_ - 1);
    const std::uint64_t unexported = removed && seq_ > exported ? seq_ - exported : 0;
    if (::ftruncate(fd_, 0) != 0) return Result{0, false, "cannot clear the audit log"};
    bytes_ = 0;
    header_bytes_ = 0;
    first_seq_ = seq_ + 1;
    warned_nearly_full_ = false;
    Details d;
    d.number("recordsRemoved", static_cast<long long>(removed))
        .number("lastSeqBefore", static_cast<long long>(seq_))
        .number("unexportedRemoved", static_cast<long long>(unexported));
    r = write_record_locked(Event::SecurityLogWasCleared, Outcome::Success, who, d, views);
    if (!r.stored || ::fdatasync(fd_) != 0) return Result{0, false, "cannot write the audit log"};
    write_anchor_locked();
    listeners = listeners_;
  }
  for (const auto& v : views)
    for (const auto& l : listeners) l(v);
  return r;
}

AuditLog::Result AuditLog::record(Event e, Outcome o, const Source& src, const Details& d) {
  std::vector<std::tuple<Event, Outcome, Source, Details>> one;
  one.emplace_back(e, o, src, d);
  return record_batch(one).front();
}

std::vector<AuditLog::Result> AuditLog::record_batch(
    const std::vector<std::tuple<Event, Outcome, Source, Details>>& items) {
  std::vector<Result> results;
  std::vector<RecordView> views;
  std::vector<std::function<void(const RecordView&)>> listeners;
  {
    std::lock_guard lk(mu_);
    for (const auto& [e, o, src, d] : items) results.push_back(append_locked(e, o, src, d, views));
    if (!views.empty()) check_capacity_locked(views);
    // Durable before anyone is told the action is done.
    if (!views.empty() && ::fdatasync(fd_) != 0) {
      log::error("audit", "cannot sync the security log: ", std::strerror(errno));
      for (auto& r : results) r = Result{0, false, "audit log sync failed"};
      return results;
    }
    if (!views.empty()) write_anchor_locked();
    listeners = listeners_;
  }
  for (const auto& v : views)
    for (const auto& l : listeners) l(v);
  return results;
}

}  // namespace cg::audit
