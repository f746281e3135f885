#pragma once
#include <string>
#include <string_view>

namespace cg::security {
std::string base64_encode(std::string_view in);
}
