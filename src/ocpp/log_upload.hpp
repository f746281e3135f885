// N01 GetLog: building the security-log file and uploading it over HTTPS
// (PUT, or POST multipart/form-data when the server does not take PUT).
// The upload trusts only the operator's CA file and checks the host name, the
// same TLS settings as the CSMS connection (COM-2); plain http/ftp is refused
// (COM-9). Bounded: connect/handshake/transfer timeouts, body and answer caps.
// REQ: LOG-4, COM-2, COM-9
#pragma once
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <string_view>

#include "core/clock.hpp"
#include "ocpp/log_export.hpp"

namespace cg::ocpp {

// UploadUrl, parse_upload_url, LogExport, build_log_export, build_text_export,
// the multipart body: see log_export.hpp.

// One HTTPS upload: PUT of the body; when the server answers 405 Method Not
// Allowed or 501 Not Implemented, at once a POST multipart/form-data (RFC 7578)
// of it as one part named "file" with the filename (new connection, same TLS
// settings and bounds). The callback runs once (on the io_context) unless
// cancel() was called first; ok = a 2xx answer; detail names the status and
// the method, e.g. "HTTP 201 (POST multipart)".
class HttpsPut : public std::enable_shared_from_this<HttpsPut> {
 public:
  struct Settings {
    UploadUrl url;
    std::string ca_file;     // the CSMS roots of the certificate store (COM-9)
    bool partial_chain = false;  // see security::configure_tls_client
    std::string content_type = "application/x-ndjson";  // of the body (the part's, with POST)
    std::string filename;  // announced in GetLogResponse; the part's filename ("log" when empty)
    std::chrono::seconds connect_timeout{15};
    std::chrono::seconds transfer_timeout{120};
  };
  using Callback = std::function<void(bool ok, const std::string& detail)>;
  static std::shared_ptr<HttpsPut> start(boost::asio::io_context& io, Settings s, std::shared_ptr<const std::string> body,
                                         Callback cb);
  virtual ~HttpsPut() = default;
  virtual void cancel() = 0;  // aborts the request; the callback is not called
};

}  // namespace cg::ocpp
