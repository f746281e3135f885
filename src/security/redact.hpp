// Masking of identifiers (badge ids) for logs and audit records. REQ: LOG-5
#pragma once
#include <string>
#include <string_view>

namespace cg::security {

// Same length as the id; only the last two characters of ids of 8 or more
// characters stay visible ("******C4"), so support can tell badges apart
// without the log revealing an id (short ids are masked entirely).
inline std::string mask_identifier(std::string_view id) {
  std::string out(id.size(), '*');
  if (id.size() >= 8) {
    const auto tail = id.substr(id.size() - 2);
    bool ascii = true;
    for (unsigned char c : tail) ascii = ascii && c >= 0x21 && c <= 0x7e;
    if (ascii) out.replace(out.size() - 2, 2, tail);
  }
  return out;
}

}  // namespace cg::security
