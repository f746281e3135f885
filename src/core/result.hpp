// One error style at module boundaries: Result<T> holds a value or an Error
// (a code the caller can act on and a sentence a person can read). Exceptions
// stay inside a module; they do not cross its boundary or a thread.
#pragma once
#include <string>
#include <utility>
#include <variant>

namespace cg {

enum class Errc {
  Denied,           // the one policy refused the principal this operation (AUTHZ-1)
  InvalidArgument,  // the request is malformed or out of range
  Rejected,         // well-formed, refused by a rule (e.g. no security downgrade)
  NotFound,
  Conflict,         // the state does not allow it now (busy, already done, locked)
  Unavailable,      // a resource is missing (no key store, no security log)
  Storage,          // the disk or the database failed
  Internal,         // a bug or an unexpected failure
};

std::string_view to_string(Errc e) noexcept;

struct Error {
  Errc code = Errc::Internal;
  std::string message;
  std::string reason;  // a short code for a protocol answer (e.g. an OCPP reasonCode), when one is needed
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit, as std::expected
  Result(Error e) : v_(std::move(e)) {}      // NOLINT
  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : e_(std::move(e)), ok_(false) {}  // NOLINT
  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const Error& error() const { return e_; }

 private:
  Error e_;
  bool ok_ = true;
};

inline Error fail(Errc code, std::string message) { return Error{code, std::move(message), {}}; }
// A refusal by a rule, with the protocol's reason code and a sentence.
inline Error refuse(std::string reason, std::string message) {
  return Error{Errc::Rejected, std::move(message), std::move(reason)};
}

inline std::string_view to_string(Errc e) noexcept {
  switch (e) {
    case Errc::Denied: return "Denied";
    case Errc::InvalidArgument: return "InvalidArgument";
    case Errc::Rejected: return "Rejected";
    case Errc::NotFound: return "NotFound";
    case Errc::Conflict: return "Conflict";
    case Errc::Unavailable: return "Unavailable";
    case Errc::Storage: return "Storage";
    case Errc::Internal: return "Internal";
  }
  return "Internal";
}

}  // namespace cg
