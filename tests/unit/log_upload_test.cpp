// GetLog (N01) without the network: which upload locations are accepted
// (https:// only, COM-9; bounded; no credentials; what the request target is),
// the text-log export (time window, continuation lines, size cap, missing
// files), and the multipart/form-data body (RFC 7578) of a POST upload.
#include "ocpp/log_export.hpp"
#include "audit/export.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace cg::ocpp {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;
using audit::build_text_export;

UploadUrl ok_url(std::string_view s) {
  auto u = parse_upload_url(s);
  EXPECT_TRUE(u) << s << ": " << (u ? "" : u.error().message);
  return u ? *u : UploadUrl{};
}

std::string refused(std::string_view s) {
  auto u = parse_upload_url(s);
  EXPECT_FALSE(u) << s << " was accepted: host " << (u ? u->host : "") << " target " << (u ? u->target : "");
  const std::string why = u ? std::string() : u.error().message;
  EXPECT_FALSE(why.empty()) << s;
  return why;
}

TEST(LogUploadUrl, HttpsWithAndWithoutPort) {
  auto u = ok_url("https://csms.example.com/logs/upload");
  EXPECT_EQ(u.host, "csms.example.com");
  EXPECT_EQ(u.port, "443");
  EXPECT_EQ(u.target, "/logs/upload");

  u = ok_url("https://csms.example.com:8443/x");
  EXPECT_EQ(u.host, "csms.example.com");
  EXPECT_EQ(u.port, "8443");
  EXPECT_EQ(u.target, "/x");

  u = ok_url("HTTPS://localhost:65535");
  EXPECT_EQ(u.host, "localhost");
  EXPECT_EQ(u.port, "65535");
  EXPECT_EQ(u.target, "/");

  u = ok_url("https://localhost:/x");  // empty port: the scheme's default (RFC 3986 §3.2.3)
  EXPECT_EQ(u.port, "443");
}

TEST(LogUploadUrl, IpLiterals) {
  auto u = ok_url("https://[::1]:8443/up");
  EXPECT_EQ(u.host, "::1");  // no brackets: the resolver and the certificate check take the address
  EXPECT_EQ(u.port, "8443");
  EXPECT_EQ(u.target, "/up");
  u = ok_url("https://[2001:db8::7]/");
  EXPECT_EQ(u.host, "2001:db8::7");
  EXPECT_EQ(u.port, "443");
  u = ok_url("https://192.0.2.10:4443/a");
  EXPECT_EQ(u.host, "192.0.2.10");
  EXPECT_EQ(u.port, "4443");
  refused("https://[v1.fe]/x");  // IPvFuture
}

TEST(LogUploadUrl, CredentialsInTheUrlRefused) {
  EXPECT_NE(refused("https://user:secret@csms.example.com/up").find("credentials"), std::string::npos);
  EXPECT_NE(refused("https://user@csms.example.com/up").find("credentials"), std::string::npos);
  EXPECT_NE(refused("https://:@csms.example.com/up").find("credentials"), std::string::npos);
}

TEST(LogUploadUrl, OtherSchemesRefusedWithAReason) {
  for (const char* s : {"http://csms.example.com/up", "ftp://csms.example.com/up", "ftps://csms.example.com/up",
                        "sftp://csms.example.com/up", "wss://csms.example.com/up", "file:///etc/passwd"}) {
    const auto why = refused(s);
    EXPECT_NE(why.find("https://"), std::string::npos) << s << ": " << why;
    EXPECT_NE(why.find("COM-9"), std::string::npos) << s << ": " << why;
  }
}

TEST(LogUploadUrl, NotAUrlRefused) {
  for (const char* s : {"", "not a url", "https://csms.example.com/a b", "https:// csms.example.com/", "//host/x",
                        "csms.example.com/upload"}) {
    refused(s);
  }
}

TEST(LogUploadUrl, LongerThan512Refused) {
  const std::string base = "https://csms.example.com/";
  const std::string at_limit = base + std::string(512 - base.size(), 'a');
  ASSERT_EQ(at_limit.size(), 512u);
  EXPECT_EQ(ok_url(at_limit).target.size(), 512u - (base.size() - 1));
  EXPECT_NE(refused(at_limit + "a").find("512"), std::string::npos);
  EXPECT_NE(refused(base + std::string(10000, 'a')).find("512"), std::string::npos);
}

TEST(LogUploadUrl, EmptyHostRefused) {
  for (const char* s : {"https:///upload", "https://:443/upload", "https:", "https:upload", "https://"}) {
    const auto why = refused(s);
    EXPECT_NE(why.find("host"), std::string::npos) << s << ": " << why;
  }
}

TEST(LogUploadUrl, HostNameWithEncodedOrOddCharactersRefused) {
  // The name goes into the Host header: no percent-decoded CR/LF or other surprises.
  refused("https://csms%0d%0aX-Evil:%201.example.com/up");
  refused("https://csms%2eexample.com/up");
  refused("https://csms!example.com/up");
}

TEST(LogUploadUrl, PortOutOfRangeRefused) {
  for (const char* s : {"https://localhost:0/x", "https://localhost:65536/x", "https://localhost:99999999999999/x",
                        "https://localhost:-1/x", "https://localhost:44a/x"}) {
    refused(s);
  }
  EXPECT_NE(refused("https://localhost:70000/x").find("port"), std::string::npos);
}

TEST(LogUploadUrl, QueryKeptFragmentDropped) {
  EXPECT_EQ(ok_url("https://h.example/a/b?token=s3cret&x=1").target, "/a/b?token=s3cret&x=1");
  EXPECT_EQ(ok_url("https://h.example?x=1").target, "/?x=1");
  EXPECT_EQ(ok_url("https://h.example/a?").target, "/a?");
  EXPECT_EQ(ok_url("https://h.example/a?q=1#frag").target, "/a?q=1");
  EXPECT_EQ(ok_url("https://h.example/a#frag?not=query").target, "/a");
  EXPECT_EQ(ok_url("https://h.example#x").target, "/");
  // Percent-encoding is kept as sent.
  EXPECT_EQ(ok_url("https://h.example/a%20b/c?d=%2F").target, "/a%20b/c?d=%2F");
}

TEST(LogUploadUrl, WhyIsOptional) {
  EXPECT_FALSE(parse_upload_url("http://h/x"));
  EXPECT_TRUE(parse_upload_url("https://h/x"));
}

// ---- build_text_export

class LogUploadTextExport : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::make_temp_dir("logexport"); }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, const std::string& text) {
    auto p = dir_ / name;
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  static clock::SysTime at(const char* s) { return clock::parse_rfc3339(s).value(); }

  fs::path dir_;
};

TEST_F(LogUploadTextExport, SelectsLinesByTimeInclusive) {
  const auto f = write("diag.log",
                       "2024-05-01T10:00:00.000Z INFO a\n"
                       "2024-05-01T10:01:00.000Z INFO b\n"
                       "2024-05-01T10:02:00.000Z INFO c\n");
  auto ex = build_text_export({f}, std::nullopt, std::nullopt, 1 << 20);
  EXPECT_EQ(ex.records, 3u);
  EXPECT_FALSE(ex.truncated);
  EXPECT_EQ(ex.body,
            "2024-05-01T10:00:00.000Z INFO a\n2024-05-01T10:01:00.000Z INFO b\n2024-05-01T10:02:00.000Z INFO c\n");

  ex = build_text_export({f}, at("2024-05-01T10:01:00Z"), at("2024-05-01T10:01:00Z"), 1 << 20);
  EXPECT_EQ(ex.body, "2024-05-01T10:01:00.000Z INFO b\n");
  EXPECT_EQ(ex.records, 1u);

  ex = build_text_export({f}, at("2024-05-01T10:00:30Z"), std::nullopt, 1 << 20);
  EXPECT_EQ(ex.body, "2024-05-01T10:01:00.000Z INFO b\n2024-05-01T10:02:00.000Z INFO c\n");

  ex = build_text_export({f}, std::nullopt, at("2024-05-01T10:01:59.999Z"), 1 << 20);
  EXPECT_EQ(ex.body, "2024-05-01T10:00:00.000Z INFO a\n2024-05-01T10:01:00.000Z INFO b\n");

  ex = build_text_export({f}, at("2030-01-01T00:00:00Z"), std::nullopt, 1 << 20);
  EXPECT_EQ(ex.body, "");
  EXPECT_EQ(ex.records, 0u);
}

TEST_F(LogUploadTextExport, LinesWithoutTimestampFollowTheirPredecessor) {
  const auto older = write("diag.log.1",
                           "2024-05-01T10:00:00.000Z WARN first\n"
                           "  continued first\n");
  const auto newer = write("diag.log",
                           "  still first (after the rotation)\n"
                           "2024-05-01T10:02:00.000Z WARN second\n"
                           "  continued second\n"
                           "short\n");
  auto ex = build_text_export({older, newer}, at("2024-05-01T10:01:00Z"), std::nullopt, 1 << 20);
  EXPECT_EQ(ex.body, "2024-05-01T10:02:00.000Z WARN second\n  continued second\nshort\n");
  EXPECT_EQ(ex.records, 3u);

  ex = build_text_export({older, newer}, std::nullopt, at("2024-05-01T10:01:00Z"), 1 << 20);
  EXPECT_EQ(ex.body, "2024-05-01T10:00:00.000Z WARN first\n  continued first\n  still first (after the rotation)\n");
}

TEST_F(LogUploadTextExport, StopsBeforeMaxBytes) {
  const std::string l1 = "2024-05-01T10:00:00.000Z INFO one\n";
  const std::string l2 = "2024-05-01T10:00:01.000Z INFO two\n";
  const std::string l3 = "2024-05-01T10:00:02.000Z INFO three\n";
  const auto f = write("diag.log", l1 + l2 + l3);

  auto ex = build_text_export({f}, std::nullopt, std::nullopt, l1.size() + l2.size() + l3.size() - 1);
  EXPECT_TRUE(ex.truncated);
  EXPECT_EQ(ex.body, l1 + l2);  // whole lines only
  EXPECT_EQ(ex.records, 2u);

  ex = build_text_export({f}, std::nullopt, std::nullopt, l1.size() + l2.size() + l3.size());
  EXPECT_FALSE(ex.truncated);  // exactly fits
  EXPECT_EQ(ex.records, 3u);

  ex = build_text_export({f}, std::nullopt, std::nullopt, 5);
  EXPECT_TRUE(ex.truncated);
  EXPECT_EQ(ex.body, "");
  EXPECT_EQ(ex.records, 0u);

  // Lines outside the window do not count against the cap.
  ex = build_text_export({f}, at("2024-05-01T10:00:02Z"), std::nullopt, l3.size());
  EXPECT_FALSE(ex.truncated);
  EXPECT_EQ(ex.body, l3);
}

TEST_F(LogUploadTextExport, MissingFilesAreSkipped) {
  const auto f = write("diag.log", "2024-05-01T10:00:00.000Z INFO only\nno newline at the end");
  auto ex = build_text_export({dir_ / "diag.log.1", f, dir_ / "nope"}, std::nullopt, std::nullopt, 1 << 20);
  EXPECT_EQ(ex.body, "2024-05-01T10:00:00.000Z INFO only\nno newline at the end\n");
  EXPECT_EQ(ex.records, 2u);

  ex = build_text_export({dir_ / "a", dir_ / "b"}, std::nullopt, std::nullopt, 1 << 20);
  EXPECT_EQ(ex.body, "");
  EXPECT_EQ(ex.records, 0u);
  EXPECT_FALSE(ex.truncated);

  ex = build_text_export({}, std::nullopt, std::nullopt, 1 << 20);
  EXPECT_EQ(ex.body, "");
}

// ---- multipart/form-data (RFC 7578)

TEST(LogUploadMultipart, ExactLayout) {
  auto f = build_multipart_form("b0undary-x", "security-log-7.ndjson", "application/x-ndjson", "line 1\nline 2\n");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->content_type, "multipart/form-data; boundary=b0undary-x");
  EXPECT_EQ(f->body,
            "--b0undary-x\r\n"
            "Content-Disposition: form-data; name=\"file\"; filename=\"security-log-7.ndjson\"\r\n"
            "Content-Type: application/x-ndjson\r\n"
            "\r\n"
            "line 1\nline 2\n"
            "\r\n--b0undary-x--\r\n");
}

TEST(LogUploadMultipart, EmptyAndBinaryContent) {
  auto f = build_multipart_form("B", "x.log", "text/plain; charset=utf-8", "");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->body,
            "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.log\"\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n\r\n--B--\r\n");

  const std::string bin("a\0\r\n--\xff\x00z"s);
  f = build_multipart_form("zz9", "x.bin", "application/octet-stream", bin);
  ASSERT_TRUE(f);
  const auto start = f->body.find("\r\n\r\n") + 4;
  EXPECT_EQ(f->body.substr(start, bin.size()), bin);
  EXPECT_EQ(f->body.substr(start + bin.size()), "\r\n--zz9--\r\n");
}

TEST(LogUploadMultipart, BoundaryMustNotOccurInTheBody) {
  EXPECT_FALSE(build_multipart_form("abc", "f.log", "text/plain", "xxabcxx"));
  EXPECT_FALSE(build_multipart_form("abc", "f.log", "text/plain", "--abc--"));
  EXPECT_FALSE(build_multipart_form("abc", "abc.log", "text/plain", "data"));
  EXPECT_FALSE(build_multipart_form("plain", "f.log", "text/plain", "data"));
  EXPECT_TRUE(build_multipart_form("abd", "f.log", "text/plain", "xxabcxx"));
}

TEST(LogUploadMultipart, InvalidBoundariesRefused) {
  for (const std::string& b : {""s, std::string(71, 'a'), "a b"s, "a\"b"s, "a\r\nb"s, "a;b"s, "a=b"s, "ä"s}) {
    EXPECT_FALSE(build_multipart_form(b, "f.log", "text/plain", "data")) << b;
  }
  EXPECT_TRUE(build_multipart_form(std::string(70, 'a'), "f.log", "text/plain", "data"));
  EXPECT_TRUE(build_multipart_form("Aa0-_.", "f.log", "text/plain", "data"));
}

TEST(LogUploadMultipart, FilenameEscapedPartContentTypeChecked) {
  auto f = build_multipart_form("B", "a\"b\r\nc\\d.log", "text/plain", "x");
  ASSERT_TRUE(f);
  EXPECT_NE(f->body.find("filename=\"a%22b%0D%0Ac\\d.log\"\r\n"), std::string::npos) << f->body;
  // Percent-encoding must not create the boundary either.
  EXPECT_FALSE(build_multipart_form("0Ad", "x\nd", "text/plain", "x"));
  EXPECT_FALSE(build_multipart_form("B", "f.log", "text/plain\r\nX-Evil: 1", "x"));
}

TEST(LogUploadMultipart, RandomBoundary) {
  const std::string content = "2024-05-01T10:00:00.000Z line\n";
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    auto f = make_multipart_form("security-log-3.ndjson", "application/x-ndjson", content);
    ASSERT_TRUE(f);
    const std::string prefix = "multipart/form-data; boundary=";
    ASSERT_EQ(f->content_type.rfind(prefix, 0), 0u);
    const std::string b = f->content_type.substr(prefix.size());
    ASSERT_GE(b.size(), 32u);
    ASSERT_LE(b.size(), 70u);
    EXPECT_EQ(b.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-"), std::string::npos) << b;
    EXPECT_EQ(content.find(b), std::string::npos);
    // Exactly the opening and the closing delimiter.
    EXPECT_EQ(f->body.rfind("--" + b + "\r\n", 0), 0u);
    EXPECT_EQ(f->body.find(b, 2 + b.size()), f->body.size() - b.size() - 4);
    EXPECT_TRUE(f->body.ends_with("\r\n--" + b + "--\r\n"));
    EXPECT_NE(f->body.find("\r\n\r\n" + content + "\r\n--" + b + "--\r\n"), std::string::npos);
    seen.insert(b);
  }
  EXPECT_EQ(seen.size(), 20u);
}

TEST(LogUploadMultipart, AnnouncedFilename) {
  EXPECT_EQ(log_upload_filename(false, 7), "security-log-7.ndjson");
  EXPECT_EQ(log_upload_filename(true, 31), "diagnostics-log-31.log");
}

}  // namespace
}  // namespace cg::ocpp
