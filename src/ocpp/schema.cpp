// OCPP 2.0.1 payload validation over the static tables that tools/schema-gen
// compiles from the official JSON schemas (src/ocpp/generated/).
//
// Error-code mapping (OCPP-J RPC error codes, OCPP 2.0.1 part 4 section 4.3):
//   payload (the root) is not a JSON object ............ FormatViolation
//   property not allowed (additionalProperties: false) .. FormatViolation
//   nesting deeper than kMaxDepth (32) levels ........... FormatViolation
//   wrong JSON type, including null anywhere a field is
//     present ("omit, never null") and a non-integral
//     JSON number (any double) where "integer" is wanted  TypeConstraintViolation
//   required property missing, array shorter than
//     minItems or longer than maxItems ................. OccurrenceConstraintViolation
//   enum mismatch, string longer than maxLength / shorter
//     than minLength (in Unicode code points), number
//     outside minimum/maximum, malformed RFC 3339
//     date-time ......................................... PropertyConstraintViolation
//   action not defined by the 2.0.1 schemas ............. NotImplemented
//
// Violation::path is a JSON pointer (RFC 6901) to the offending value, e.g.
// "/idToken/type" or "/getVariableData/0/component"; for a missing property it
// points at the property that should exist. Member names that came from the
// peer (unknown properties, members inside free-form data) are cut to 64 bytes
// and have control characters replaced by '?'. Violation::message names the
// rule and its limit only; it never contains the offending value, which may be
// a secret (passwords, tokens, keys).
//
// Rules beyond plain draft-07 that OCPP asks for: null is rejected for every
// field, including free-form ones (DataTransfer.data, vendor members of
// customData); inside free-form values, nested nulls are accepted and only
// the nesting depth is checked. Members are checked in schema order, then
// unknown members, so the reported violation does not depend on the order of
// members in the message. Strings are assumed to be valid UTF-8 (the
// boost::json parser rejects invalid UTF-8 by default).
//
// The success path allocates nothing: the path is kept as a fixed stack of
// segments and turned into a string only when a Violation is built.

#include "ocpp/schema.hpp"

#include "core/clock.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "ocpp/generated/schema_tables.hpp"

namespace cg::ocpp::schema {
namespace {

namespace json = boost::json;
namespace tbl = tables;

// Deepest container nesting accepted; the payload object itself is level 1.
constexpr std::size_t kMaxDepth = 32;
// Peer-supplied member names are cut to this many bytes in Violation::path.
constexpr std::size_t kMaxKeyInPath = 64;

std::string_view sv(const json::string& s) noexcept { return {s.data(), s.size()}; }

// Number of Unicode code points in UTF-8 text: every byte that is not a
// continuation byte (10xxxxxx) starts one.
std::size_t code_points(std::string_view s) noexcept {
  std::size_t n = 0;
  for (const char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0U) != 0x80U) ++n;
  }
  return n;
}

// RFC 3339 section 5.6 "date-time", calendar-correct, a leap second only at
// 23:59 UTC, at most 40 characters: the one parser the station uses for times.
bool is_rfc3339_date_time(std::string_view s) { return clock::parse_rfc3339(s).has_value(); }

std::string_view json_type_name(const json::value& v) noexcept {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "integer";
    case json::kind::double_:
      return "number";
    case json::kind::string:
      return "string";
    case json::kind::array:
      return "array";
    case json::kind::object:
      return "object";
  }
  return "unknown";
}

std::string_view kind_name(tbl::NodeKind k) noexcept {
  switch (k) {
    case tbl::NodeKind::Object:
      return "object";
    case tbl::NodeKind::Array:
      return "array";
    case tbl::NodeKind::String:
      return "string";
    case tbl::NodeKind::Integer:
      return "integer";
    case tbl::NodeKind::Number:
      return "number";
    case tbl::NodeKind::Boolean:
      return "boolean";
    case tbl::NodeKind::Any:
      return "any value";
  }
  return "unknown";
}

std::string format_limit(double x) {
  if (std::trunc(x) == x && std::fabs(x) < 1e15) return std::to_string(static_cast<long long>(x));
  std::array<char, 32> buf{};
  const auto res = std::to_chars(buf.data(), buf.data() + buf.size(), x);
  return {buf.data(), res.ptr};
}

const tbl::Action* find_action(std::string_view action) noexcept {
  const tbl::Action* first = tbl::kActions;
  const tbl::Action* last = tbl::kActions + tbl::kActionCount;
  const tbl::Action* it = std::lower_bound(
      first, last, action, [](const tbl::Action& a, std::string_view name) { return tbl::str(a.name) < name; });
  if (it == last || tbl::str(it->name) != action) return nullptr;
  return it;
}

class Validator {
 public:
  std::optional<Violation> run(std::uint16_t root, const json::object& payload) {
    if (!object(tbl::kNodes[root], payload, 1)) return std::move(violation_);
    return std::nullopt;
  }

 private:
  // Trivial on purpose: the path stack is left uninitialised (no per-call
  // zeroing); only entries below depth_ are ever read.
  struct Segment {
    const char* key;   // member name (valid during validation); unused for an array index
    std::size_t size;  // key length, or the array index
    bool is_index;
  };

  // `level` is the nesting level of the container holding `v` (payload = 1).
  bool value(std::uint16_t index, const json::value& v, std::size_t level) {
    const tbl::Node& n = tbl::kNodes[index];
    if (v.is_null()) {
      return fail(RpcError::TypeConstraintViolation, "null is not allowed; omit the field instead");
    }
    switch (n.kind) {
      case tbl::NodeKind::Object:
        if (const json::object* o = v.if_object()) {
          return enter(level) && object(n, *o, level + 1);
        }
        return type_mismatch(n, v);
      case tbl::NodeKind::Array:
        if (const json::array* a = v.if_array()) {
          return enter(level) && array(n, *a, level + 1);
        }
        return type_mismatch(n, v);
      case tbl::NodeKind::String:
        if (const json::string* s = v.if_string()) return string(n, sv(*s));
        return type_mismatch(n, v);
      case tbl::NodeKind::Integer:
        // OCPP 2.0.1 part 2 defines integer as 32-bit signed: larger values
        // would be truncated by any implementation, so they are refused here.
        if (const std::int64_t* i = v.if_int64()) {
          if (*i < INT32_MIN || *i > INT32_MAX) return fail(RpcError::PropertyConstraintViolation, "integer outside the 32-bit range");
          return range(n, static_cast<double>(*i));
        }
        if (const std::uint64_t* u = v.if_uint64()) {  // Boost.JSON keeps unsigned C++ values as uint64
          if (*u > static_cast<std::uint64_t>(INT32_MAX)) return fail(RpcError::PropertyConstraintViolation, "integer outside the 32-bit range");
          return range(n, static_cast<double>(*u));
        }
        if (v.is_double()) {
          return fail(RpcError::TypeConstraintViolation, "expected integer, got a floating-point number");
        }
        return type_mismatch(n, v);
      case tbl::NodeKind::Number:
        if (const std::int64_t* i = v.if_int64()) return range(n, static_cast<double>(*i));
        if (const std::uint64_t* u = v.if_uint64()) return range(n, static_cast<double>(*u));
        if (const double* d = v.if_double()) {
          if (!std::isfinite(*d)) return fail(RpcError::TypeConstraintViolation, "number is not finite");
          return range(n, *d);
        }
        return type_mismatch(n, v);
      case tbl::NodeKind::Boolean:
        if (v.is_bool()) return true;
        return type_mismatch(n, v);
      case tbl::NodeKind::Any:
        return free_form(v, level);
    }
    return fail(RpcError::InternalError, "corrupt schema table");
  }

  bool object(const tbl::Node& n, const json::object& o, std::size_t level) {
    std::size_t matched = 0;
    for (std::size_t i = 0; i < n.count; ++i) {
      const tbl::Property& p = tbl::kProperties[n.first + i];
      const std::string_view name = tbl::str(p.name);
      const auto it = o.find(name);
      if (it == o.end()) {
        if (p.required) {
          push_key(name);
          return fail(RpcError::OccurrenceConstraintViolation, "required property missing");
        }
        continue;
      }
      ++matched;
      push_key(name);
      if (!value(p.node, it->value(), level)) return false;
      pop();
    }
    if (matched == o.size()) return true;  // no unknown members
    const bool allowed = (n.flags & tbl::kAdditionalProperties) != 0;
    for (const json::key_value_pair& kv : o) {
      const std::string_view key = kv.key();
      if (declared(n, key)) continue;
      push_key(key);
      if (!allowed) return fail(RpcError::FormatViolation, "property not allowed (additionalProperties false)");
      if (kv.value().is_null()) {
        return fail(RpcError::TypeConstraintViolation, "null is not allowed; omit the field instead");
      }
      if (!free_form(kv.value(), level)) return false;
      pop();
    }
    return true;
  }

  bool array(const tbl::Node& n, const json::array& a, std::size_t level) {
    if (a.size() < n.min_items) {
      return fail(RpcError::OccurrenceConstraintViolation,
                  "array has fewer than minItems " + std::to_string(n.min_items) + " elements");
    }
    if (n.max_items != tbl::kUnbounded && a.size() > n.max_items) {
      return fail(RpcError::OccurrenceConstraintViolation,
                  "array has more than maxItems " + std::to_string(n.max_items) + " elements");
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
      push_index(i);
      if (!value(n.items, a[i], level)) return false;
      pop();
    }
    return true;
  }

  bool string(const tbl::Node& n, std::string_view s) {
    if (n.count != 0) {
      bool found = false;
      for (std::size_t i = 0; i < n.count && !found; ++i) found = tbl::str(tbl::kEnumValues[n.first + i]) == s;
      if (!found) return fail(RpcError::PropertyConstraintViolation, "value not in enumeration");
    }
    // Byte length bounds the code-point count from above, so counting is only
    // needed for strings that are long in bytes.
    if (n.max_length != tbl::kUnbounded && s.size() > n.max_length && code_points(s) > n.max_length) {
      return fail(RpcError::PropertyConstraintViolation,
                  "string longer than maxLength " + std::to_string(n.max_length));
    }
    if (n.min_length != 0 && (s.size() < n.min_length || code_points(s) < n.min_length)) {
      return fail(RpcError::PropertyConstraintViolation,
                  "string shorter than minLength " + std::to_string(n.min_length));
    }
    if ((n.flags & tbl::kDateTime) != 0 && !is_rfc3339_date_time(s)) {
      return fail(RpcError::PropertyConstraintViolation, "string is not an RFC 3339 date-time");
    }
    return true;
  }

  // Limits are integral and at most 2^53 in magnitude (the generator checks),
  // so comparing an integer converted to double is exact.
  bool range(const tbl::Node& n, double x) {
    if ((n.flags & tbl::kHasMinimum) != 0 && x < n.minimum) {
      return fail(RpcError::PropertyConstraintViolation, "number below minimum " + format_limit(n.minimum));
    }
    if ((n.flags & tbl::kHasMaximum) != 0 && x > n.maximum) {
      return fail(RpcError::PropertyConstraintViolation, "number above maximum " + format_limit(n.maximum));
    }
    return true;
  }

  // A value without a schema: anything goes except excessive nesting.
  bool free_form(const json::value& v, std::size_t level) {
    if (const json::object* o = v.if_object()) {
      if (!enter(level)) return false;
      for (const json::key_value_pair& kv : *o) {
        push_key(kv.key());
        if (!free_form(kv.value(), level + 1)) return false;
        pop();
      }
    } else if (const json::array* a = v.if_array()) {
      if (!enter(level)) return false;
      for (std::size_t i = 0; i < a->size(); ++i) {
        push_index(i);
        if (!free_form((*a)[i], level + 1)) return false;
        pop();
      }
    }
    return true;
  }

  static bool declared(const tbl::Node& n, std::string_view key) noexcept {
    for (std::size_t i = 0; i < n.count; ++i) {
      if (tbl::str(tbl::kProperties[n.first + i].name) == key) return true;
    }
    return false;
  }

  // Called before descending into a container nested inside a container at `level`.
  bool enter(std::size_t level) {
    if (level + 1 > kMaxDepth) {
      return fail(RpcError::FormatViolation, "nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    return true;
  }

  bool type_mismatch(const tbl::Node& n, const json::value& v) {
    std::string msg = "expected ";
    msg += kind_name(n.kind);
    msg += ", got ";
    msg += json_type_name(v);
    return fail(RpcError::TypeConstraintViolation, std::move(msg));
  }

  // The path never holds more than kMaxDepth segments: a value nested in a
  // container at level L has L segments, and enter() stops at L == kMaxDepth.
  void push_key(std::string_view key) noexcept { path_[depth_++] = Segment{key.data(), key.size(), false}; }
  void push_index(std::size_t i) noexcept { path_[depth_++] = Segment{nullptr, i, true}; }
  void pop() noexcept { --depth_; }

  bool fail(RpcError code, std::string message) {
    std::string path;
    for (std::size_t i = 0; i < depth_; ++i) {
      const Segment& seg = path_[i];
      path += '/';
      if (seg.is_index) {
        path += std::to_string(seg.size);
        continue;
      }
      std::string_view key(seg.key, seg.size);
      if (key.size() > kMaxKeyInPath) {
        std::size_t cut = kMaxKeyInPath;
        while (cut > 0 && (static_cast<unsigned char>(key[cut]) & 0xC0U) == 0x80U) --cut;
        key = key.substr(0, cut);
      }
      for (const char c : key) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '~') {
          path += "~0";
        } else if (c == '/') {
          path += "~1";
        } else if (u < 0x20U || u == 0x7FU) {
          path += '?';
        } else {
          path += c;
        }
      }
    }
    violation_ = Violation{code, std::move(path), std::move(message)};
    return false;
  }

  std::array<Segment, kMaxDepth> path_;
  std::size_t depth_ = 0;
  std::optional<Violation> violation_;
};

}  // namespace

bool has_action(std::string_view action) { return find_action(action) != nullptr; }

std::optional<Violation> validate(std::string_view action, Kind kind, const json::value& payload) {
  const tbl::Action* a = find_action(action);
  if (a == nullptr) {
    return Violation{RpcError::NotImplemented, "", "action not defined by the OCPP 2.0.1 schemas"};
  }
  const json::object* root = payload.if_object();
  if (root == nullptr) return Violation{RpcError::FormatViolation, "", "payload is not a JSON object"};
  Validator validator;
  return validator.run(kind == Kind::Request ? a->request : a->response, *root);
}

}  // namespace cg::ocpp::schema
