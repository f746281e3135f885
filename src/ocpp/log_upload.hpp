// N01 GetLog: building the security-log file and uploading it over HTTPS.
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

namespace cg::ocpp {

// An https:// upload location.
struct UploadUrl {
  std::string host;    // host name or IP literal (no brackets)
  std::string port;    // "443" when absent
  std::string target;  // path and query, "/" when empty
};
// nullopt (and why in *why) unless the URL is https:// with a host, ≤ 512 characters.
std::optional<UploadUrl> parse_upload_url(std::string_view url, std::string* why = nullptr);

// The stored lines (with their chain fields) of the records whose time lies in
// [oldest, latest], each ending in '\n'. Stops before max_bytes (*truncated set).
struct LogExport {
  std::string body;
  std::uint64_t records = 0, first_seq = 0, last_seq = 0;
  bool truncated = false;
};
LogExport build_log_export(const std::filesystem::path& log_file, std::optional<clock::SysTime> oldest,
                           std::optional<clock::SysTime> latest, std::size_t max_bytes);

// The lines of text log files (oldest file first) whose leading RFC 3339
// timestamp lies in [oldest, latest]; lines without one follow their
// predecessor's fate. Stops before max_bytes (*truncated set).
LogExport build_text_export(const std::vector<std::filesystem::path>& files, std::optional<clock::SysTime> oldest,
                            std::optional<clock::SysTime> latest, std::size_t max_bytes);

// One HTTPS PUT. The callback runs once (on the io_context) unless cancel()
// was called first; ok = a 2xx answer.
class HttpsPut : public std::enable_shared_from_this<HttpsPut> {
 public:
  struct Settings {
    UploadUrl url;
    std::string ca_file;
    std::string content_type = "application/x-ndjson";
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
