// REQ: FW-1, FW-3, FW-4, FW-7 — see slot_io.hpp.
#include "firmware/slot_io.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/span_worker.hpp"
#include "security/secret_file.hpp"

namespace cg::firmware {
namespace fs = std::filesystem;

namespace {
std::string errno_text() { return std::strerror(errno); }

Result<void> write_all(int fd, std::span<const std::uint8_t> bytes, const fs::path& file) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{Errc::Storage, "cannot write " + file.string() + ": " + errno_text(), std::string(kReasonReadFailed)};
    }
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
  return {};
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}
}  // namespace

// ---- SlotWriter

// The writes run on their own thread so that the next chunk is received and
// hashed meanwhile; an error is kept and reported by the next write()/finish().
struct SlotWriter::FileSink {
  explicit FileSink(int f, fs::path p) : fd(f), path(std::move(p)) {}
  ~FileSink() {
    worker.wait();
    if (fd >= 0) ::close(fd);
  }
  int fd;
  fs::path path;
  std::string error;  // written by the worker, read after wait()
  std::uint64_t offset = 0;
  core::SpanWorker worker{[this](std::span<const std::uint8_t> b) {
                            if (!error.empty()) return;
                            if (auto r = write_all(fd, b, path); !r) {
                              error = r.error().message;
                              return;
                            }
                            // Start the write-back now (no wait), so that the final fsync has little left.
                            ::sync_file_range(fd, static_cast<off64_t>(offset), static_cast<off64_t>(b.size()),
                                              SYNC_FILE_RANGE_WRITE);
                            offset += b.size();
                          },
                          0};
};

SlotWriter::SlotWriter(SlotStore& store, Slot slot, ImageVerifier verifier, int fd, std::string sig, std::string cert)
    : store_(&store), slot_(slot), verifier_(std::move(verifier)),
      sink_(std::make_unique<FileSink>(fd, store.slot_dir(slot) / "image.partial")), signature_(std::move(sig)),
      certificate_(std::move(cert)) {}

SlotWriter::SlotWriter(SlotWriter&& o) noexcept
    : store_(o.store_), slot_(o.slot_), verifier_(std::move(o.verifier_)), sink_(std::move(o.sink_)),
      signature_(std::move(o.signature_)), certificate_(std::move(o.certificate_)), written_(o.written_) {}

SlotWriter::~SlotWriter() { cancel(); }

Result<SlotWriter> SlotWriter::open(SlotStore& store, Slot slot, ImageVerifier verifier, std::string signature_b64,
                                    std::string certificate_pem) {
  if (auto r = store.clear_slot(slot); !r) return r.error();
  const fs::path partial = store.slot_dir(slot) / "image.partial";
  const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return fail(Errc::Storage, "cannot create " + partial.string() + ": " + errno_text());
  return SlotWriter(store, slot, std::move(verifier), fd, std::move(signature_b64), std::move(certificate_pem));
}

Result<void> SlotWriter::write(std::span<const std::uint8_t> bytes) {
  if (!sink_) return fail(Errc::Conflict, "the slot write was stopped");
  if (auto r = verifier_.update(bytes); !r) {
    cancel();
    return r;
  }
  sink_->worker.submit(bytes);  // waits for the previous chunk's write
  if (!sink_->error.empty()) {
    const std::string why = sink_->error;
    cancel();
    return Error{Errc::Storage, why, std::string(kReasonReadFailed)};
  }
  written_ += bytes.size();
  return {};
}

Result<ImageInfo> SlotWriter::finish() {
  if (!sink_) return fail(Errc::Conflict, "the slot write was stopped");
  sink_->worker.wait();
  if (!sink_->error.empty()) {
    const std::string why = sink_->error;
    cancel();
    return Error{Errc::Storage, why, std::string(kReasonReadFailed)};
  }
  auto info = verifier_.finish();
  const fs::path partial = store_->slot_dir(slot_) / "image.partial";
  if (!info) {
    cancel();
    return info;
  }
  if (::fsync(sink_->fd) != 0) {
    const std::string why = errno_text();
    cancel();
    return fail(Errc::Storage, "cannot write " + partial.string() + ": " + why);
  }
  sink_.reset();
  if (auto r = store_->write_credentials(slot_, signature_, certificate_); !r) {
    ::unlink(partial.c_str());
    return r.error();
  }
  if (::rename(partial.c_str(), store_->image_path(slot_).c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(partial.c_str());
    return fail(Errc::Storage, "cannot rename " + partial.string() + ": " + why);
  }
  security::fsync_dir(store_->slot_dir(slot_).string());
  return info;
}

void SlotWriter::cancel() noexcept {
  if (!sink_) return;
  verifier_.cancel();
  sink_.reset();  // waits for a running write, closes
  ::unlink((store_->slot_dir(slot_) / "image.partial").c_str());
}

Result<ImageInfo> write_image_file(SlotStore& store, Slot slot, int src_fd, ImageVerifier verifier,
                                   std::string signature_b64, std::string certificate_pem) {
  auto w = SlotWriter::open(store, slot, std::move(verifier), std::move(signature_b64), std::move(certificate_pem));
  if (!w) return w.error();
  ::posix_fadvise(src_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::array<std::vector<std::uint8_t>, 2> bufs{std::vector<std::uint8_t>(kChunkBytes),
                                                std::vector<std::uint8_t>(kChunkBytes)};
  for (std::size_t turn = 0;; turn ^= 1) {
    auto& buf = bufs[turn];
    std::size_t filled = 0;
    while (filled < buf.size()) {
      const ssize_t n = ::read(src_fd, buf.data() + filled, buf.size() - filled);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        w->cancel();
        return Error{Errc::Storage, "cannot read the image: " + errno_text(), std::string(kReasonReadFailed)};
      }
      if (n == 0) break;
      filled += static_cast<std::size_t>(n);
    }
    if (filled == 0) break;
    if (auto r = w->write({buf.data(), filled}); !r) return r.error();
    if (filled < buf.size()) break;
  }
  return w->finish();
}

// ---- boot

Result<BootPayload> load_for_boot(const SlotStore& store, Slot slot, const std::vector<const X509*>& roots,
                                  std::int64_t valid_at, std::uint64_t max_image_bytes) {
  auto sig = security::read_file_bounded(store.signature_path(slot), kMaxSignatureBase64 + 2);
  if (!sig) return sig.error();
  auto pem = security::read_file_bounded(store.certificate_path(slot), kMaxSigningCertificatePem);
  if (!pem) return pem.error();
  auto signer = check_signing_certificate(
      *pem, roots, std::chrono::system_clock::time_point(std::chrono::seconds(valid_at)));
  if (!signer) return signer.error();
  auto v = ImageVerifier::create(*signer, trim(*sig), max_image_bytes);
  if (!v) return v.error();
  const int img = ::open(store.image_path(slot).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (img < 0) {
    return Error{Errc::NotFound, "cannot open " + store.image_path(slot).string() + ": " + errno_text(),
                 std::string(kReasonReadFailed)};
  }
  const int mfd = ::memfd_create("chargeguard-payload", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0) {
    ::close(img);
    return fail(Errc::Internal, "memfd_create: " + errno_text());
  }
  std::uint64_t offset = 0;
  const ImageVerifier& vr = *v;
  auto info = verify_fd(img, *v, [&](std::span<const std::uint8_t> chunk) -> Result<void> {
    const auto& m = vr.unverified_manifest();
    const std::uint64_t start = m ? m->length : ~std::uint64_t{0};
    const std::uint64_t end = offset + chunk.size();
    if (end > start) {
      const std::uint64_t skip = offset >= start ? 0 : start - offset;
      if (auto r = write_all(mfd, chunk.subspan(static_cast<std::size_t>(skip)), "the payload memfd"); !r) return r;
    }
    offset = end;
    return {};
  });
  ::close(img);
  if (!info) {
    ::close(mfd);
    return info.error();
  }
  if (::fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    const std::string why = errno_text();
    ::close(mfd);
    return fail(Errc::Internal, "cannot seal the payload: " + why);
  }
  return BootPayload{std::move(*info), mfd};
}

}  // namespace cg::firmware
