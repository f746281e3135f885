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
#include "security/ossl.hpp"
#include "security/sealed_secret.hpp"

namespace cg::audit {
namespace json = boost::json;
namespace fs = std::filesystem;

namespace detail {
class Crypto;
}
using detail::Crypto;

namespace {

constexpr std::size_t kHashHex = 64;
constexpr std::size_t kMaxText = 256;
const std::string kZeroHash(kHashHex, '0');

}  // namespace

// SHA-256 and HMAC-SHA256 with contexts fetched once (OpenSSL 3 fetches are costly).
// The HMAC (RFC 2104) is computed from SHA-256 states precomputed once per key:
// the states after absorbing the one-block (key ^ ipad) and (key ^ opad); each
// hmac() continues copies of them. Same bytes as EVP_MAC "HMAC", without the
// MAC provider's init/final per call and without hashing the two pad blocks
// again (2 of the 4 compression calls of a MAC over a 32-byte hash).
class detail::Crypto {
 public:
  explicit Crypto(const security::Secret32* key)
      : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)), md_ctx_(EVP_MD_CTX_new()) {
    if (!md_ || !md_ctx_) throw std::runtime_error("SHA-256 unavailable");
    if (key) {
      static_assert(std::tuple_size_v<security::Secret32> <= kShaBlock,
                    "HMAC keys longer than a block are hashed first");
      inner_.reset(EVP_MD_CTX_new());
      outer_.reset(EVP_MD_CTX_new());
      mac_ctx_.reset(EVP_MD_CTX_new());
      unsigned char ipad[kShaBlock], opad[kShaBlock];
      for (std::size_t i = 0; i < kShaBlock; ++i) {
        const unsigned char k = i < key->size() ? (*key)[i] : 0;
        ipad[i] = k ^ 0x36;
        opad[i] = k ^ 0x5c;
      }
      const bool ok = inner_ && outer_ && mac_ctx_ && EVP_DigestInit_ex(inner_.get(), md_.get(), nullptr) == 1 &&
                      EVP_DigestUpdate(inner_.get(), ipad, kShaBlock) == 1 &&
                      EVP_DigestInit_ex(outer_.get(), md_.get(), nullptr) == 1 &&
                      EVP_DigestUpdate(outer_.get(), opad, kShaBlock) == 1;
      OPENSSL_cleanse(ipad, sizeof ipad);
      OPENSSL_cleanse(opad, sizeof opad);
      if (!ok) throw std::runtime_error("HMAC init failed");
    }
  }
  Crypto(const Crypto&) = delete;
  Crypto& operator=(const Crypto&) = delete;

  void sha256(std::string_view data, unsigned char out[32]) {
    unsigned int n = 0;
    if (EVP_DigestInit_ex(md_ctx_.get(), md_.get(), nullptr) != 1 ||
        EVP_DigestUpdate(md_ctx_.get(), data.data(), data.size()) != 1 ||
        EVP_DigestFinal_ex(md_ctx_.get(), out, &n) != 1)
      throw std::runtime_error("SHA-256 failed");
  }
  // HMAC-SHA256(key, data) = SHA-256((key ^ opad) || SHA-256((key ^ ipad) || data)).
  void hmac(const unsigned char* data, std::size_t len, unsigned char out[32]) {
    EVP_MD_CTX* w = mac_ctx_.get();
    unsigned char in[32];
    unsigned int n = 0;
    if (!w || EVP_MD_CTX_copy_ex(w, inner_.get()) != 1 || EVP_DigestUpdate(w, data, len) != 1 ||
        EVP_DigestFinal_ex(w, in, &n) != 1 || EVP_MD_CTX_copy_ex(w, outer_.get()) != 1 ||
        EVP_DigestUpdate(w, in, sizeof in) != 1 || EVP_DigestFinal_ex(w, out, &n) != 1)
      throw std::runtime_error("HMAC failed");
  }
  bool has_key() const { return inner_ != nullptr; }

 private:
  static constexpr std::size_t kShaBlock = 64;  // SHA-256 block size
  using Ctx = security::MdCtxPtr;  // providers clear their state on free
  security::MdPtr md_;
  Ctx md_ctx_;
  Ctx inner_, outer_;  // after (key ^ ipad) and (key ^ opad); only with a key
  Ctx mac_ctx_;        // hmac()'s working copy
};

namespace {

void to_hex(const unsigned char* in, std::size_t n, char* out) {
  static const char* hex = "0123456789abcdef";
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = hex[in[i] >> 4];
    out[2 * i + 1] = hex[in[i] & 15];
  }
}

std::string hex(const unsigned char* in, std::size_t n) {
  std::string s(2 * n, '\0');
  to_hex(in, n, s.data());
  return s;
}

// Length of the valid UTF-8 sequence at the start of s (RFC 3629: no overlong
// forms, no surrogates, <= U+10FFFF), 0 when it is not one.
std::size_t utf8_seq(std::string_view s) {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
  else if (c >= 0xF0 && c <= 0xF4) n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
  else return 0;
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (std::size_t i = 2; i < n; ++i)
    if ((b(i) & 0xC0) != 0x80) return 0;
  return n;
}

// Printable, bounded text: control characters and bytes that are not valid
// UTF-8 become '?' (so every record parses as JSON again), cut at kMaxText
// bytes on a UTF-8 character boundary.
std::string clean_text(std::string_view v) {
  std::string out;
  out.reserve(std::min(v.size(), kMaxText));
  for (std::size_t i = 0; i < v.size();) {
    const std::size_t n = utf8_seq(v.substr(i));
    if (out.size() + std::max<std::size_t>(n, 1) > kMaxText) break;
    if (n == 0 || (n == 1 && (static_cast<unsigned char>(v[i]) < 0x20 || v[i] == 0x7f))) {
      out += '?';
      ++i;
    } else {
      out.append(v.substr(i, n));
      i += n;
    }
  }
  return out;
}

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// "<word> <seq, 20 digits> <hash> <mac>\n", mac = HMAC(device key, "<word> <seq> <hash>"):
// the anchor, the continuation line and the exported mark.
std::string signed_text(Crypto& c, std::string_view word, std::uint64_t seq, std::string_view hash) {
  char buf[21];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(seq));
  std::string msg(word);
  msg.append(" ").append(buf).append(" ").append(hash);
  unsigned char mac[32];
  c.hmac(reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac);
  return msg + " " + hex(mac, 32) + "\n";
}

struct Signed {
  std::uint64_t seq = 0;
  std::string hash;
};
// Parses a signed_text line (with or without its newline). The MAC is checked
// when the crypto holds the key. nullopt when it is not such a line or forged.
std::optional<Signed> parse_signed(Crypto& c, std::string_view word, std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  // word, 20 digits, 64 hex, 64 hex, separated by single spaces
  if (line.size() != word.size() + 1 + 20 + 1 + kHashHex + 1 + kHashHex || line.substr(0, word.size()) != word ||
      line[word.size()] != ' ')
    return std::nullopt;
  const std::string_view seq = line.substr(word.size() + 1, 20);
  const std::string_view hash = line.substr(word.size() + 22, kHashHex);
  if (seq.find_first_not_of("0123456789") != std::string_view::npos || seq > "18446744073709551615" ||
      line[word.size() + 21] != ' ' || line[word.size() + 22 + kHashHex] != ' ')
    return std::nullopt;
  for (char ch : hash)
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return std::nullopt;
  Signed out{std::stoull(std::string(seq)), std::string(hash)};
  if (c.has_key()) {
    const std::string expect = signed_text(c, word, out.seq, out.hash);
    if (expect.size() != line.size() + 1 || CRYPTO_memcmp(expect.data(), line.data(), line.size()) != 0)
      return std::nullopt;
  }
  return out;
}

std::string anchor_text(Crypto& c, std::uint64_t seq, const std::string& hash) {
  return signed_text(c, "anchor", seq, hash);
}

constexpr std::string_view kContinues = "#continues";

bool parse_seq(std::string_view body, std::uint64_t& seq) {
  if (body.rfind("{\"seq\":", 0) != 0) return false;
  std::size_t i = 7;
  seq = 0;
  std::size_t digits = 0;
  while (i < body.size() && body[i] >= '0' && body[i] <= '9' && digits < 20) {
    seq = seq * 10 + static_cast<std::uint64_t>(body[i] - '0');
    ++i;
    ++digits;
  }
  return digits > 0 && i < body.size() && body[i] == ',';
}


// The exported mark (<audit>/exported): records up to it left the station.
// Read under an exclusive flock by both the daemon and the CLI. A damaged or
// forged mark reads as 0: nothing counts as exported, nothing is dropped.
class ExportedMark {
 public:
  ExportedMark(const fs::path& dir) {
    fd_ = ::open((dir / "exported").c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~ExportedMark() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  ExportedMark(const ExportedMark&) = delete;
  ExportedMark& operator=(const ExportedMark&) = delete;
  std::uint64_t read(Crypto& c) const {
    char buf[256];
    const ssize_t n = fd_ < 0 ? -1 : ::pread(fd_, buf, sizeof buf, 0);
    if (n <= 0) return 0;
    auto v = parse_signed(c, "exported", std::string_view(buf, static_cast<std::size_t>(n)));
    return v ? v->seq : 0;
  }
  // Moves the mark when [first, last] joins the exported prefix (records
  // before log_first are gone, so they count as exported).
  void update(Crypto& c, std::uint64_t log_first, std::uint64_t first, std::uint64_t last) {
    const std::uint64_t cur = read(c);
    const std::uint64_t base = std::max(cur, log_first > 0 ? log_first - 1 : 0);
    if (fd_ < 0 || first > base + 1 || last <= cur) return;
    const std::string t = signed_text(c, "exported", last, kZeroHash);
    if (::pwrite(fd_, t.data(), t.size(), 0) != static_cast<ssize_t>(t.size()) ||
        ::ftruncate(fd_, static_cast<off_t>(t.size())) != 0 || ::fdatasync(fd_) != 0)
      log::error("audit", "cannot store the exported mark: ", std::strerror(errno));
  }

 private:
  int fd_ = -1;
};

}  // namespace

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

namespace {
fs::path sealed_key_file(const fs::path& dir) { return dir / "audit.key.sealed"; }
fs::path legacy_key_file(const fs::path& dir) { return dir / "audit.key"; }
}  // namespace

security::Secret32 load_key(const fs::path& audit_dir, security::KeyStore& keys) {
  return security::load_sealed_secret(keys, sealed_key_file(audit_dir), security::kAuditMacKeyPurpose,
                                      legacy_key_file(audit_dir));
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

void mark_exported(const fs::path& audit_dir, security::KeyStore& keys, std::uint64_t first, std::uint64_t last) {
  security::Secret32 key = load_key(audit_dir, keys);
  Crypto c(&key);
  OPENSSL_cleanse(key.data(), key.size());
  ExportedMark(audit_dir).update(c, first, first, last);
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

// ---- verification


namespace {

// The lines of a file, read in large blocks and handed out without a copy
// (for verify_file and for_each_record: std::getline on an ifstream, one
// std::string per line, cost more than a record's SHA-256). read(), not mmap:
// the daemon may append to (or a reclaim replace) the log while it is read.
class LineReader {
 public:
  // No record line comes near this (AuditLog::open finds the last record in
  // the last 64 KiB); a longer line is "not a record".
  static constexpr std::size_t kMaxLine = 64 * 1024;
  enum class Got {
    End,    // no more lines
    Line,   // a line that ended with '\n' (not included)
    Last,   // the final bytes of the file, without a '\n'
    Error,  // read() failed (e.g. the path names a directory)
  };
  explicit LineReader(const fs::path& p) : fd_(::open(p.c_str(), O_RDONLY | O_CLOEXEC)) {
    // Blocks of up to kReadBlock; a small file (forwarders read the log often) gets a small buffer.
    struct stat st{};
    const std::size_t block =
        fd_ >= 0 && ::fstat(fd_, &st) == 0 && st.st_size >= 0
            ? std::clamp<std::size_t>(static_cast<std::size_t>(st.st_size) + 1, 16 * 1024, kReadBlock)
            : 16 * 1024;
    cap_ = block + kMaxLine + 1;  // room for a whole longest line behind the unread bytes
    buf_ = std::make_unique_for_overwrite<char[]>(cap_);
  }
  ~LineReader() {
    if (fd_ >= 0) ::close(fd_);
  }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;
  bool is_open() const { return fd_ >= 0; }

  // The next line, valid until the next call. A line longer than kMaxLine is
  // skipped to its end and handed out as its first kPrefix bytes with
  // too_long set (enough to tell a record number or a continuation line).
  Got next(std::string_view& line, bool& too_long) {
    too_long = false;
    for (;;) {
      char* const p = buf_.get() + pos_;
      if (const auto* nl = static_cast<const char*>(std::memchr(p, '\n', end_ - pos_))) {
        const auto len = static_cast<std::size_t>(nl - p);
        pos_ += len + 1;
        too_long = len > kMaxLine;
        line = std::string_view(p, too_long ? kPrefix : len);
        return Got::Line;
      }
      if (end_ - pos_ > kMaxLine) return skip_long(line, too_long);
      if (eof_) {
        if (pos_ == end_) return Got::End;
        line = std::string_view(p, end_ - pos_);
        pos_ = end_;
        return Got::Last;
      }
      if (!fill()) return Got::Error;
    }
  }

 private:
  static constexpr std::size_t kReadBlock = 256 * 1024;
  static constexpr std::size_t kPrefix = 64;

  // Keeps the unread bytes (at most kMaxLine) and reads a block or more
  // behind them. False on a read error; sets eof_ at the end of the file.
  bool fill() {
    if (fd_ < 0) return false;
    if (pos_ > 0) {
      std::memmove(buf_.get(), buf_.get() + pos_, end_ - pos_);
      end_ -= pos_;
      pos_ = 0;
    }
    for (;;) {
      const ssize_t n = ::read(fd_, buf_.get() + end_, cap_ - end_);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return false;
      if (n == 0) eof_ = true;
      end_ += static_cast<std::size_t>(n);
      return true;
    }
  }
  Got skip_long(std::string_view& line, bool& too_long) {
    prefix_.assign(buf_.get() + pos_, kPrefix);
    line = prefix_;
    too_long = true;
    for (;;) {
      pos_ = end_;
      if (eof_) return Got::Last;
      if (!fill()) return Got::Error;
      if (const auto* nl = static_cast<const char*>(std::memchr(buf_.get(), '\n', end_))) {
        pos_ = static_cast<std::size_t>(nl - buf_.get()) + 1;
        return Got::Line;
      }
    }
  }

  int fd_ = -1;
  std::size_t cap_ = 0;
  std::unique_ptr<char[]> buf_;
  std::size_t pos_ = 0, end_ = 0;  // unread bytes: [pos_, end_)
  bool eof_ = false;
  std::string prefix_;
};

// Lowercase hex of a SHA-256 value, two characters per table load (to_hex's
// nibble loop compiles to vector stores and byte reloads through the stack:
// measured at ~15 % of the verification time).
void hex32(const unsigned char in[32], char out[kHashHex]) {
  static constexpr auto kPairs = [] {
    std::array<char, 512> t{};
    for (std::size_t i = 0; i < 256; ++i) {
      t[2 * i] = "0123456789abcdef"[i >> 4];
      t[2 * i + 1] = "0123456789abcdef"[i & 15];
    }
    return t;
  }();
  for (std::size_t i = 0; i < 32; ++i) std::memcpy(out + 2 * i, &kPairs[2 * std::size_t{in[i]}], 2);
}

}  // namespace

VerifyResult verify_file(const fs::path& file, const security::Secret32* key, std::optional<std::uint64_t> anchor_seq) {
  VerifyResult r;
  LineReader in(file);
  if (!in.is_open()) {
    r.problem = "cannot read " + file.string();
    return r;
  }
  Crypto c(key);
  std::string prev;
  std::uint64_t expected = 0;
  std::string_view line;
  bool too_long = false;
  std::uint64_t lineno = 0;
  char hexbuf[kHashHex];
  auto fail = [&](std::uint64_t seq, std::string why) {
    r.ok = false;
    r.bad_seq = seq;
    r.bad_line = lineno;
    r.problem = std::move(why);
    return r;
  };
  for (LineReader::Got got; (got = in.next(line, too_long)) != LineReader::Got::End;) {
    // A read error is not the end of the log: what follows was not checked.
    if (got == LineReader::Got::Error) return fail(0, "cannot read " + file.string());
    ++lineno;
    if (got == LineReader::Got::Last)
      return fail(expected + 1,
                  "line " + std::to_string(lineno) + ": the last record is incomplete (truncated mid-record)");
    if (lineno == 1 && line.starts_with(kContinues)) {
      // The log or export starts after record N on purpose; only the station
      // can say so (its MAC is checked when the key is at hand).
      auto cont = too_long ? std::nullopt : parse_signed(c, kContinues, line);
      if (!cont)
        return fail(0, std::string("line 1: the continuation line is damaged") +
                           (c.has_key() ? " or was not written by this station" : ""));
      expected = cont->seq;
      prev = cont->hash;
      continue;
    }
    // The last two tabs (memrchr: vectorised, unlike string_view::rfind).
    const auto rfind_tab = [&](std::size_t end) {
      const void* t = end == 0 ? nullptr : ::memrchr(line.data(), '\t', end);
      return t ? static_cast<std::size_t>(static_cast<const char*>(t) - line.data()) : std::string_view::npos;
    };
    const auto t2 = rfind_tab(line.size());
    const auto t1 = t2 == std::string_view::npos || t2 == 0 ? std::string_view::npos : rfind_tab(t2);
    std::uint64_t seq = 0;
    if (too_long || t1 == std::string_view::npos || t2 - t1 - 1 != kHashHex || line.size() - t2 - 1 != kHashHex)
      return fail(expected + 1, "line " + std::to_string(lineno) + ": not a record (fields damaged)");
    const std::string_view body = line.substr(0, t1);
    const std::string_view hash = line.substr(t1 + 1, kHashHex);
    const std::string_view mac = line.substr(t2 + 1, kHashHex);
    if (!parse_seq(body, seq)) return fail(expected + 1, "line " + std::to_string(lineno) + ": record number unreadable");
    const bool first = expected == 0;
    const bool cleared = first && body.find(",\"type\":\"SecurityLogWasCleared\",") != std::string_view::npos;
    if (first) {
      if (!(seq == 1 || cleared))
        return fail(seq, "record " + std::to_string(seq) + ": the log does not start at record 1 (records before it were removed)");
    } else if (seq != expected + 1) {
      // A record ahead of its place: missing, unless the expected one comes later (reordered).
      bool later = false;
      std::string_view rest;
      bool rest_long = false;
      for (LineReader::Got g;
           seq > expected + 1 && !later &&
           ((g = in.next(rest, rest_long)) == LineReader::Got::Line || g == LineReader::Got::Last);) {
        std::uint64_t s = 0;
        later = parse_seq(rest, s) && s == expected + 1;
      }
      return fail(seq, "record " + std::to_string(seq) + " follows record " + std::to_string(expected) +
                           (seq <= expected ? " (records out of order or duplicated)"
                            : later         ? " (records out of order)"
                                            : " (records missing)"));
    }
    // The body ends with "prev":"<hash>"}
    constexpr std::string_view kPrev = ",\"prev\":\"";
    if (body.size() < kPrev.size() + kHashHex + 2 ||
        body.substr(body.size() - kHashHex - 2 - kPrev.size(), kPrev.size()) != kPrev)
      return fail(seq, "record " + std::to_string(seq) + ": chain field missing");
    const std::string_view prev_field = body.substr(body.size() - kHashHex - 2, kHashHex);
    if (first) {
      if (!cleared && prev_field != kZeroHash)
        return fail(seq, "record 1: does not start a chain");
    } else if (prev_field != prev) {
      return fail(seq, "record " + std::to_string(seq) + ": does not chain to record " + std::to_string(expected) +
                           " (a record before it was changed, removed or reordered)");
    }
    unsigned char h[32];
    c.sha256(body, h);
    hex32(h, hexbuf);
    if (std::string_view(hexbuf, kHashHex) != hash)
      return fail(seq, "record " + std::to_string(seq) + ": content does not match its hash (the record was edited)");
    if (c.has_key()) {
      // Compared as hex text: equal exactly when the stored field is the
      // lowercase hex of the MAC (no data-dependent branches, unlike from_hex).
      unsigned char m[32];
      c.hmac(h, 32, m);
      hex32(m, hexbuf);
      if (CRYPTO_memcmp(hexbuf, mac.data(), kHashHex) != 0)
        return fail(seq, "record " + std::to_string(seq) + ": MAC invalid (the record was rewritten without the device key)");
    }
    prev.assign(hash);
    expected = seq;
    if (r.records++ == 0) r.first_seq = seq;
  }
  r.last_seq = expected;
  if (anchor_seq && *anchor_seq > expected) {
    return fail(expected + 1, "the log ends at record " + std::to_string(expected) + " but record " +
                                  std::to_string(*anchor_seq) + " was written (records removed from the end)");
  }
  r.ok = true;
  return r;
}

void for_each_record(const fs::path& file, std::uint64_t from, const std::function<bool(const RecordView&)>& fn) {
  LineReader in(file);
  std::string_view line;
  bool too_long = false;
  // Stops at the end, at an incomplete last line and at a read error.
  while (in.next(line, too_long) == LineReader::Got::Line) {
    std::uint64_t seq = 0;
    if (too_long || !parse_seq(line, seq) || seq < from) continue;
    const auto t1 = line.find('\t');
    json::error_code ec;
    auto v = json::parse(line.substr(0, t1), ec);
    if (ec || !v.is_object()) continue;
    const auto& o = v.as_object();
    const auto* type = o.if_contains("type");
    const auto* time = o.if_contains("time");
    const auto* outcome = o.if_contains("outcome");
    if (!type || !type->is_string() || !time || !time->is_string()) continue;
    auto ev = event_from_name(type->as_string());
    if (!ev) continue;
    const std::string_view stored =
        t1 == std::string_view::npos ? line : line.substr(0, t1 + 1 + 2 * kHashHex + 1 + kHashHex);
    RecordView rv{seq, std::string(time->as_string()), *ev,
                  outcome && outcome->is_string() && outcome->as_string() == "failure" ? Outcome::Failure : Outcome::Success,
                  std::string(stored)};
    if (!fn(rv)) return;
  }
}

VerifyResult verify_dir(const fs::path& audit_dir, security::KeyStore& keys) {
  VerifyResult r;
  if (!fs::exists(sealed_key_file(audit_dir)) && !fs::exists(legacy_key_file(audit_dir))) {
    r.problem = "no audit key in " + audit_dir.string() + " (is this a chargeguard state directory?)";
    return r;
  }
  security::Secret32 key{};
  try {
    key = load_key(audit_dir, keys);
  } catch (const std::exception& e) {  // damaged, unreadable or not ours: a finding, not a crash
    r.problem = e.what();
    return r;
  }
  std::optional<std::uint64_t> anchor_seq;
  {
    std::ifstream a(audit_dir / "anchor", std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(a)), std::istreambuf_iterator<char>());
    if (!text.empty()) {
      Crypto c(&key);
      auto v = text.size() <= 256 ? parse_signed(c, "anchor", text) : std::nullopt;
      if (!v) {
        r.problem = "the anchor file is damaged or forged";
        OPENSSL_cleanse(key.data(), key.size());
        return r;
      }
      anchor_seq = v->seq;
    }
  }
  r = verify_file(log_file(audit_dir), &key, anchor_seq);
  OPENSSL_cleanse(key.data(), key.size());
  // The station rewrites the anchor after every record. Without one, records
  // cut from the end go unnoticed; a power loss just after the first records
  // can leave it empty, so this is a warning, not a break.
  if (r.ok && !anchor_seq && r.records > 0)
    r.warning = "the anchor file is missing or empty: records removed from the end of the log could not be checked";
  return r;
}

}  // namespace cg::audit
