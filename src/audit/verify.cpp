// The readers of the security log: verification record by record (chain,
// hash, MAC, anchor, continuation line), iteration for the forwarders and
// exports, and the exported mark as the CLI moves it.
// REQ: LOG-2, LOG-4
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <fstream>
#include <memory>

#include "audit/audit_log.hpp"
#include "audit/chain.hpp"
#include "security/sealed_secret.hpp"

namespace cg::audit {
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace detail;

security::Secret32 load_key(const fs::path& audit_dir, security::KeyStore& keys) {
  return security::load_sealed_secret(keys, sealed_key_file(audit_dir), security::kAuditMacKeyPurpose,
                                      legacy_key_file(audit_dir));
}

void mark_exported(const fs::path& audit_dir, security::KeyStore& keys, std::uint64_t first, std::uint64_t last) {
  security::Secret32 key = load_key(audit_dir, keys);
  Crypto c(&key);
  OPENSSL_cleanse(key.data(), key.size());
  ExportedMark(audit_dir).update(c, first, first, last);
}


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
