// L01 firmware download: one HTTPS GET whose body streams to the caller in
// 1 MiB chunks (two buffers: constant memory), with the same TLS settings and trust as the CSMS
// connection (the store's CSMS roots, host name checked; COM-9) and bounds:
// connect/handshake timeouts, an idle timeout per read, a header cap and the
// caller's body cap (a Content-Length above it fails before any byte).
// REQ: FW-2, FW-7, COM-9
#pragma once
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "core/result.hpp"
#include "ocpp/log_export.hpp"

namespace cg::ocpp {

class HttpsGet : public std::enable_shared_from_this<HttpsGet> {
 public:
  struct Settings {
    UploadUrl url;
    std::string ca_file;
    bool partial_chain = false;
    std::uint64_t max_body = 0;
    std::chrono::seconds connect_timeout{15};
    std::chrono::seconds idle_timeout{30};  // no byte for this long: failed
  };
  // Each chunk of the body, in order; the bytes stay valid until the next
  // chunk or done callback returns (two buffers alternate). An error stops the download.
  using Chunk = std::function<Result<void>(std::span<const std::uint8_t>)>;
  // ok: a 200 answer whose whole body was delivered. detail: what happened
  // ("HTTP 500", "connect: …", "truncated after N bytes", the chunk's error).
  using Done = std::function<void(bool ok, const std::string& detail)>;
  static std::shared_ptr<HttpsGet> start(boost::asio::io_context& io, Settings s, Chunk chunk, Done done);
  virtual ~HttpsGet() = default;
  virtual void cancel() = 0;  // no callback afterwards
};

}  // namespace cg::ocpp
