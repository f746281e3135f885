#include "services/password_policy.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace cg::services {
namespace {

// Common passwords and the words they are built on (lower case, letters only
// after substitutions are undone): what a dictionary attack tries first, and
// what a station's documentation or label invites.
constexpr std::array<std::string_view, 72> kCommonWords{
    "password", "passwort", "passwd", "pass", "welcome", "willkommen", "admin", "administrator", "root",
    "user", "guest", "test", "tester", "qwerty", "qwertz", "azerty", "asdf", "asdfgh", "zxcvbn", "letmein",
    "login", "changeme", "secret", "default", "master", "monkey", "dragon", "football", "baseball",
    "sunshine", "princess", "shadow", "superman", "iloveyou", "trustno", "abc", "abcd", "abcdef", "abcdefg",
    "abcdefgh", "abcabc", "qazwsx", "service", "support", "maintenance", "engineer", "viewer", "operator",
    "installer", "charger", "charging", "chargepoint", "chargeguard", "station", "wallbox", "evse", "ocpp",
    "schneider", "evlink", "summer", "winter", "spring", "autumn", "hello", "freedom", "whatever", "starwars",
    "computer", "internet", "company", "access", "system"};

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

// "P@ssw0rd2024!" -> "password": lower case, substitutions undone, digits and
// specials that are not substitutions dropped.
std::string base_word(std::string_view pw) {
  std::string out;
  for (char c : pw) {
    switch (c) {
      case '@': case '4': out += 'a'; break;
      case '$': case '5': out += 's'; break;
      case '0': out += 'o'; break;
      case '1': case '!': out += 'i'; break;
      case '3': out += 'e'; break;
      case '7': out += 't'; break;
      default:
        if (std::isalpha(static_cast<unsigned char>(c))) out += lower(c);
    }
  }
  return out;
}

// Letters only, lower case ("Password1!" -> "password").
std::string letters(std::string_view pw) {
  std::string out;
  for (char c : pw)
    if (std::isalpha(static_cast<unsigned char>(c))) out += lower(c);
  return out;
}

bool contains_ci(std::string_view hay, std::string_view needle) {
  if (needle.empty() || needle.size() > hay.size()) return false;
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(),
                     [](char a, char b) { return lower(a) == lower(b); }) != hay.end();
}

bool common(std::string_view pw) {
  // Decoration before and after the word ("2024", "1!") is dropped first.
  std::string_view core = pw;
  while (!core.empty() && !std::isalpha(static_cast<unsigned char>(core.front()))) core.remove_prefix(1);
  while (!core.empty() && !std::isalpha(static_cast<unsigned char>(core.back()))) core.remove_suffix(1);
  const std::string a = letters(pw), b = base_word(core);
  for (std::string_view w : kCommonWords) {
    // A common word plus decoration (digits, specials, one capital) is common.
    if (a == w || b == w) return true;
  }
  // One character repeated, or a keyboard/alphabet run, with decoration.
  if (!a.empty() && std::all_of(a.begin(), a.end(), [&](char c) { return c == a[0]; })) return true;
  return false;
}

}  // namespace

std::vector<std::string> password_violations(std::string_view user, std::string_view pw) {
  std::vector<std::string> v;
  if (pw.size() < kMinPasswordLength || pw.size() > kMaxPasswordLength)
    v.push_back("8 to 31 characters (this one has " + std::to_string(pw.size()) + ")");
  bool digit = false, upper = false, lower_c = false, special = false, other = false;
  for (char c : pw) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isdigit(u)) digit = true;
    else if (std::isupper(u)) upper = true;
    else if (std::islower(u)) lower_c = true;
    else if (kPasswordSpecials.find(c) != std::string_view::npos) special = true;
    else other = true;
  }
  if (!digit) v.push_back("at least one digit");
  if (!upper) v.push_back("at least one upper-case letter");
  if (!lower_c) v.push_back("at least one lower-case letter");
  if (!special) v.push_back("at least one special character from " + std::string(kPasswordSpecials));
  if (other) v.push_back("only letters, digits and the special characters " + std::string(kPasswordSpecials));
  if (!user.empty() && contains_ci(pw, user)) v.push_back("must not contain the user name");
  if (common(pw)) v.push_back("too common: it is built on a word that attackers try first");
  return v;
}

std::string join_rules(const std::vector<std::string>& rules) {
  std::string s;
  for (const auto& x : rules) s += (s.empty() ? "" : "; ") + x;
  return s;
}

std::vector<std::string> pin_violations(std::string_view pin, std::string_view previous) {
  std::vector<std::string> v;
  if (pin.size() < 8 || pin.size() > 16) v.push_back("8 to 16 digits (this one has " + std::to_string(pin.size()) + ")");
  if (!std::all_of(pin.begin(), pin.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    v.push_back("digits only");
    return v;
  }
  if (pin.empty()) return v;
  if (std::all_of(pin.begin(), pin.end(), [&](char c) { return c == pin[0]; })) v.push_back("not one digit repeated");
  bool up = true, down = true;
  for (std::size_t i = 1; i < pin.size(); ++i) {
    const int d = (pin[i] - pin[i - 1] + 10) % 10;
    up = up && d == 1;
    down = down && d == 9;
  }
  if (pin.size() > 1 && (up || down)) v.push_back("not an ascending or descending sequence");
  if (!previous.empty() && pin == previous) v.push_back("must differ from the current PIN");
  return v;
}

}  // namespace cg::services
