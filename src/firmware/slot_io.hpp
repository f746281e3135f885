// REQ: FW-1, FW-3, FW-4, FW-7
//
// Bytes into and out of the slots, always through the one verifier:
//  - SlotWriter: a new image streams into a slot's image.partial while it is
//    verified (constant memory); only a verified image is renamed to `image`,
//    fsynced, with the signature and signing certificate beside it. Nothing
//    is written to any other slot.
//  - load_for_boot: the boot stage's check (FW-4) of a slot's whole image
//    against its stored signature and certificate, copying the payload into a
//    sealed memfd as it goes, so that the bytes executed are the bytes
//    verified (a file changed after the check is never run).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "firmware/slots.hpp"
#include "firmware/verifier.hpp"

namespace cg::firmware {

class SlotWriter {
 public:
  // Empties `slot` and opens its image.partial. `signature_b64` and
  // `certificate_pem` are stored beside the image when it verified.
  static Result<SlotWriter> open(SlotStore& store, Slot slot, ImageVerifier verifier, std::string signature_b64,
                                 std::string certificate_pem);
  SlotWriter(SlotWriter&&) noexcept;
  SlotWriter& operator=(SlotWriter&&) = delete;
  ~SlotWriter();  // cancels an unfinished write

  // The next bytes (the verifier's rule: valid until the next write()/finish()).
  Result<void> write(std::span<const std::uint8_t> bytes);
  // Verifies, then makes the image durable. On failure the partial file is removed.
  Result<ImageInfo> finish();
  void cancel() noexcept;
  std::uint64_t bytes_written() const noexcept { return written_; }
  Slot slot() const noexcept { return slot_; }
  const ImageVerifier& verifier() const { return verifier_; }

 private:
  struct FileSink;  // the partial file, written on a second thread (core::SpanWorker)
  SlotWriter(SlotStore& store, Slot slot, ImageVerifier verifier, int fd, std::string sig, std::string cert);
  SlotStore* store_;
  Slot slot_;
  ImageVerifier verifier_;
  std::unique_ptr<FileSink> sink_;  // null once finished or canceled
  std::string signature_;
  std::string certificate_;
  std::uint64_t written_ = 0;
};

// Copies the image file at `src` into `slot` through a SlotWriter.
Result<ImageInfo> write_image_file(SlotStore& store, Slot slot, int src_fd, ImageVerifier verifier,
                                   std::string signature_b64, std::string certificate_pem);

// A slot's image, verified for booting.
struct BootPayload {
  ImageInfo info;
  int fd = -1;  // sealed memfd holding the payload alone (owned by the caller)
};

// `roots`: the pinned ManufacturerRootCertificates; `valid_at`: when the
// signing certificate must have been valid (the slot's install time: an image
// keeps booting after its certificate expired). Errors carry the verifier's
// reasons; a missing file is kReasonReadFailed.
Result<BootPayload> load_for_boot(const SlotStore& store, Slot slot, const std::vector<const X509*>& roots,
                                  std::int64_t valid_at, std::uint64_t max_image_bytes);

}  // namespace cg::firmware
