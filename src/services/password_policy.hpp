// REQ: AUTH-3 — the password rules of the maintenance accounts (seed 001):
// 8–31 characters; at least one digit, one upper-case and one lower-case
// letter and one special character from -:;$&@,.?! ; only printable ASCII
// (letters, digits and those specials: a space or another symbol is named);
// not containing the user name; not a common password (a list shipped in the
// binary, compared case-insensitively and after undoing the usual character
// substitutions, so "P@ssw0rd1!" is refused as "password").
// Every violated rule is named, so the form can say all of them at once.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace cg::services {

inline constexpr std::size_t kMinPasswordLength = 8;
inline constexpr std::size_t kMaxPasswordLength = 31;
inline constexpr std::string_view kPasswordSpecials = "-:;$&@,.?!";

// "a; b; c": the violated rules in one message.
std::string join_rules(const std::vector<std::string>& rules);

// The violated rules, in words ("at least one digit"); empty when acceptable.
std::vector<std::string> password_violations(std::string_view user, std::string_view password);

// REQ: AUTH-9 — the commissioning PIN: at least 8 (at most 16) digits, not one
// digit repeated, not an ascending or descending sequence (0123…, 9876…, with
// wrap-around), not the PIN it replaces.
std::vector<std::string> pin_violations(std::string_view pin, std::string_view previous = {});

}  // namespace cg::services
