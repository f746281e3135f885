// N01 GetLog, the parts without network I/O (cg_base, unit-tested): the upload
// location check (https:// only, COM-9) and the multipart/form-data body
// (RFC 7578) of an upload by POST. What is uploaded: audit/export.hpp.
// REQ: LOG-4, COM-9
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"

namespace cg::ocpp {

// An https:// upload location.
struct UploadUrl {
  std::string host;    // host name or IP literal (no brackets)
  std::string port;    // "443" when absent or empty
  std::string target;  // path and query, "/" when empty; the fragment is dropped
};
// The location, or why not (Errc::InvalidArgument): it must be https:// with a
// host, ≤ 512 characters, no credentials (userinfo) and a port in 1..65535.
Result<UploadUrl> parse_upload_url(std::string_view url);
// The HTTP Host header of the location: [v6] in brackets, ":port" unless 443.
std::string http_host(const UploadUrl& url);

// A multipart/form-data body (RFC 7578) with one part,
//   Content-Disposition: form-data; name="file"; filename="<filename>"
//   Content-Type: <part_content_type>
// content_type is the request's ("multipart/form-data; boundary=<boundary>").
struct MultipartForm {
  std::string content_type;
  std::string body;
};
// nullopt when the boundary is not 1..70 characters of [0-9A-Za-z._-], occurs
// in the content, filename or part content type, or the part content type
// holds a control character. In the filename, '"', CR, LF and other control
// characters are percent-encoded (as browsers do).
std::optional<MultipartForm> build_multipart_form(std::string_view boundary, std::string_view filename,
                                                  std::string_view part_content_type, std::string_view content);
// The same with a fresh random boundary (OpenSSL RAND_bytes, hex) that does not
// occur in the content; nullopt when no usable one was found (CSPRNG failure).
std::optional<MultipartForm> make_multipart_form(std::string_view filename, std::string_view part_content_type,
                                                 std::string_view content);

// The file name a GetLogResponse announces for an upload of requestId.
std::string log_upload_filename(bool diagnostics, long long request_id);

}  // namespace cg::ocpp
