// The web front end's own parsing (NET-4): form and query decoding with its
// limits, paths, cookies, HTML encoding, and the one route table.
#include <gtest/gtest.h>

#include <set>

#include "web/app.hpp"
#include "web/http.hpp"
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
