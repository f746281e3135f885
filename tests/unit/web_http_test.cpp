// The web front end's own parsing (NET-4): form and query decoding with its
// limits, paths, cookies, HTML encoding, and the one route table.
#include <gtest/gtest.h>

#include <set>

#include "web/app.hpp"
#include "web/http.hpp"
#include "web/multipart.hpp"
#include "web/server.hpp"

namespace cg::web {
namespace {

TEST(WebForms, DecodesAndBounds) {
  std::string err;
  auto f = parse_urlencoded("username=alice&password=a%2Bb+c%21&empty=", err);
  ASSERT_TRUE(f) << err;
  EXPECT_EQ(f->at("username"), "alice");
  EXPECT_EQ(f->at("password"), "a+b c!");
  EXPECT_EQ(f->at("empty"), "");
  EXPECT_FALSE(parse_urlencoded("a=%zz", err));
  EXPECT_EQ(err, "malformed form encoding");
  EXPECT_FALSE(parse_urlencoded("a=%4", err));
  EXPECT_FALSE(parse_urlencoded("a=%00", err)) << "NUL is refused";
  EXPECT_FALSE(parse_urlencoded("a=1&a=2", err));
  EXPECT_EQ(err, "a field appears twice");
  EXPECT_FALSE(parse_urlencoded("=1", err));
  EXPECT_FALSE(parse_urlencoded(std::string(65, 'n') + "=1", err));
  EXPECT_FALSE(parse_urlencoded("v=" + std::string(kMaxFieldValue + 1, 'x'), err));
  EXPECT_NE(err.find("longer than 4096"), std::string::npos) << err;
  std::string many;
  for (int i = 0; i <= static_cast<int>(kMaxFields); ++i) many += "f" + std::to_string(i) + "=1&";
  EXPECT_FALSE(parse_urlencoded(many, err));
  EXPECT_FALSE(parse_urlencoded(std::string(kMaxFormBytes + 1, 'a'), err));
}

TEST(WebForms, PathsCookiesAndEncoding) {
  EXPECT_EQ(decode_path("/accounts").value(), "/accounts");
  EXPECT_EQ(decode_path("/a%2Fb").value(), "/a/b");
  EXPECT_FALSE(decode_path("/a%00"));
  EXPECT_FALSE(decode_path("/a%20b")) << "no spaces in paths";
  EXPECT_FALSE(decode_path("/%C3%A9")) << "ASCII only";
  EXPECT_EQ(cookie_value("a=1; __Host-cg_session=abc; b=2", kSessionCookie), "abc");
  EXPECT_EQ(cookie_value("cg_session=abc", kSessionCookie), "");
  EXPECT_EQ(html("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

TEST(WebRoutes, OneTableNoDuplicatesEveryPostNeedsASessionButLogin) {
  std::set<std::string> seen;
  for (const auto& r : WebApp::routes()) {
    EXPECT_TRUE(seen.insert(std::string(r.method) + " " + std::string(r.path)).second) << r.path;
    EXPECT_TRUE(r.method == "GET" || r.method == "POST");
    if (r.method == "POST" && r.path != "/login") {
      EXPECT_NE(r.access, Access::Public) << r.path;
    }
    if (r.path.starts_with("/api/")) {
      EXPECT_FALSE(r.activity) << "polling is not a user action";
    }
  }
}

TEST(WebHeaders, EveryAnswerCarriesTheSecurityHeaders) {
  auto h = security_headers(false);
  auto get = [&](const std::string& k) {
    for (const auto& [n, v] : h)
      if (n == k) return v;
    return std::string();
  };
  EXPECT_EQ(get("Cache-Control"), "no-store");
  EXPECT_EQ(get("X-Frame-Options"), "DENY");
  EXPECT_EQ(get("X-Content-Type-Options"), "nosniff");
  EXPECT_NE(get("Content-Security-Policy").find("default-src 'self'"), std::string::npos);
  EXPECT_EQ(get("Content-Security-Policy").find("unsafe"), std::string::npos);
  EXPECT_NE(get("Strict-Transport-Security").find("max-age="), std::string::npos);
}

}  // namespace
}  // namespace cg::web

namespace cg::web {
namespace {

// Feeds `body` in pieces of `step` bytes; returns the parts as "name=data;" or the error.
std::string parts_of(const std::string& body, std::size_t step) {
  std::string out, cur;
  MultipartReader r("XyZ", MultipartReader::Events{
                               [&](std::string_view n, std::string_view f) {
                                 cur = std::string(n) + (f.empty() ? "" : "[" + std::string(f) + "]") + "=";
                                 return Result<void>{};
                               },
                               [&](std::span<const std::uint8_t> b) {
                                 cur.append(reinterpret_cast<const char*>(b.data()), b.size());
                                 return Result<void>{};
                               },
                               [&]() {
                                 out += cur + ";";
                                 return Result<void>{};
                               }});
  for (std::size_t i = 0; i < body.size(); i += step) {
    auto res = r.feed({reinterpret_cast<const std::uint8_t*>(body.data()) + i, std::min(step, body.size() - i)});
    if (!res) return "error: " + res.error().message;
  }
  auto f = r.finish();
  return f ? out : "error: " + f.error().message;
}

TEST(Multipart, StreamsPartsWhateverThePieces) {
  const std::string body =
      "--XyZ\r\nContent-Disposition: form-data; name=\"certificate\"; filename=\"c.pem\"\r\n"
      "Content-Type: application/octet-stream\r\n\r\nPEM\r\n--XyZ\r\n"
      "Content-Disposition: form-data; name=\"image\"; filename=\"i.img\"\r\n\r\n"
      "a\r\n--Xy b\r\n-XyZ c\r\n--XyZ--\r\n";
  for (std::size_t step : {1u, 2u, 3u, 7u, 64u, 4096u})
    EXPECT_EQ(parts_of(body, step), "certificate[c.pem]=PEM;image[i.img]=a\r\n--Xy b\r\n-XyZ c;") << step;
  EXPECT_EQ(MultipartReader::boundary_of("multipart/form-data; boundary=----abc").value(), "----abc");
  EXPECT_FALSE(MultipartReader::boundary_of("application/x-www-form-urlencoded"));
  EXPECT_FALSE(MultipartReader::boundary_of("multipart/form-data; boundary=" + std::string(71, 'a')));
}

TEST(Multipart, MalformedBodiesAreNamed) {
  EXPECT_NE(parts_of("junk--XyZ\r\n", 4).find("does not start with the boundary"), std::string::npos);
  EXPECT_NE(parts_of("--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nabc", 4).find("before the closing"),
            std::string::npos);
  EXPECT_NE(parts_of("--XyZ\r\nContent-Disposition: form-data; name=\"A B\"\r\n\r\nx\r\n--XyZ--", 4).find("part name"),
            std::string::npos);
  EXPECT_NE(parts_of("--XyZ\r\nX-Long: " + std::string(2000, 'h') + "\r\n\r\n", 100).find("1 KiB"), std::string::npos);
  std::string many;
  for (int i = 0; i < 9; ++i) many += "--XyZ\r\nContent-Disposition: form-data; name=\"p\"\r\n\r\nv\r\n";
  EXPECT_NE(parts_of(many + "--XyZ--", 50).find("more than 8 parts"), std::string::npos);
}

}  // namespace
}  // namespace cg::web
