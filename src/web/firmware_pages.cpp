// FW-3 in the browser: the engineer uploads a signed image (multipart form:
// the signing certificate, the signature, then the image), streamed through
// the firmware service into the inactive slot — the same verifier as OCPP and
// the CLI — and activated for the next boot. A random file is "wrong
// signature", refused and recorded by the service. The page works without
// JavaScript; /static/upload.js only adds the progress bar.
#include <array>
#include <cctype>
#include <vector>

#include "services/firmware.hpp"
#include "web/app.hpp"
#include "web/multipart.hpp"
#include "web/pages.hpp"

namespace cg::web {
namespace {

constexpr std::size_t kMaxCertificate = 16 * 1024;
constexpr std::size_t kMaxSignature = 4 * 1024;
constexpr std::size_t kStaging = 1024 * 1024;

std::string verdict_page_body(bool ok, const std::string& text) {
  return notice(ok ? "ok" : "error", text) +
         "<p><a href=\"/firmware\">Back to firmware</a> · <a href=\"/\">Dashboard</a></p>";
}

// Restart (the engineer's Reset): waits for running charges.
std::string restart_form(const services::SessionInfo& s) {
  return "<form method=\"post\" action=\"/restart\">" + csrf_field(s) +
         "<button type=\"submit\" id=\"restart\">Restart the station</button> <span class=\"muted\">when no "
         "charge runs (it waits for them)</span></form>";
}

}  // namespace

// One upload's state, shared by the body sink (owned by the connection) and
// the WebApp (which aborts it if it is destroyed first).
struct WebApp::Upload {
  WebApp* app = nullptr;
  services::SessionInfo session;
  std::string peer;
  std::optional<MultipartReader> reader;
  std::string part, certificate, signature;
  bool image_seen = false, image_done = false, dead = false;
  std::optional<firmware::SlotWriter> writer;
  std::array<std::vector<std::uint8_t>, 2> staging;  // alternate: a span stays valid until the next write
  int cur = 0;
  std::string error;  // the first problem, said in the verdict

  Result<void> flush() {
    auto& b = staging[static_cast<std::size_t>(cur)];
    if (b.empty()) return {};
    auto r = writer->write({b.data(), b.size()});
    cur ^= 1;
    staging[static_cast<std::size_t>(cur)].clear();
    return r;
  }
  Result<void> begin(std::string_view name, std::string_view) {
    part = std::string(name);
    if (name != "image") return {};
    if (image_seen) return fail(Errc::InvalidArgument, "one image per upload");
    image_seen = true;
    if (certificate.empty() || signature.empty())
      return fail(Errc::InvalidArgument, "the signing certificate and the signature come before the image");
    // A signature file as tools write it ends with a line break.
    while (!signature.empty() && std::isspace(static_cast<unsigned char>(signature.back()))) signature.pop_back();
    auto& fw = *app->services_.firmware;
    auto signer = fw.check_signer(session.principal, certificate, "web firmware upload");
    if (!signer) return signer.error();
    firmware::UpdateRef ref;
    ref.origin = "local";
    ref.requested_by = session.principal.name;
    auto w = fw.begin_write(session.principal, *signer, signature, certificate, ref);
    if (!w) return w.error();
    writer.emplace(std::move(*w));
    for (auto& b : staging) b.reserve(kStaging);
    return {};
  }
  Result<void> data(std::span<const std::uint8_t> bytes) {
    if (part == "certificate" || part == "signature") {
      std::string& into = part == "certificate" ? certificate : signature;
      if (into.size() + bytes.size() > (part == "certificate" ? kMaxCertificate : kMaxSignature))
        return fail(Errc::InvalidArgument, "the " + part + " file is too large");
      into.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
      return {};
    }
    if (part != "image") return {};  // other fields (csrf) carry nothing we need
    while (!bytes.empty()) {
      auto& b = staging[static_cast<std::size_t>(cur)];
      const std::size_t n = std::min(bytes.size(), kStaging - b.size());
      b.insert(b.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
      bytes = bytes.subspan(n);
      if (b.size() == kStaging) {
        if (auto r = flush(); !r) return r;
      }
    }
    return {};
  }
  Result<void> end() {
    if (part == "image") image_done = true;
    part.clear();
    return {};
  }
  void abort(const std::string& why) {
    if (dead) return;
    dead = true;
    if (writer) {
      writer->cancel();
      writer.reset();
      app->services_.firmware->abandon_write(session.principal, "", "web upload: " + why);
    }
  }
};

namespace {

class UploadSink : public BodySink {
 public:
  explicit UploadSink(std::shared_ptr<WebApp::Upload> u) : u_(std::move(u)) {}
  Result<void> data(std::span<const std::uint8_t> bytes) override {
    if (u_->dead) return fail(Errc::Unavailable, "the station is stopping");
    auto r = u_->reader->feed(bytes);
    if (!r && u_->error.empty()) u_->error = r.error().message;
    return r;
  }
  void finish(bool complete, const std::string& error, std::function<void(Response)> reply) override {
    if (u_->dead) return;  // the UI went away first (it aborted the upload)
    u_->app->finish_upload(u_, complete, error, std::move(reply));
  }

 private:
  std::shared_ptr<WebApp::Upload> u_;
};

}  // namespace

std::optional<StreamStart> WebApp::stream(const Request& head) {
  if (head.path != "/firmware") return std::nullopt;
  StreamStart st;
  // The same checks as every other POST, before a byte of the body is read;
  // the CSRF token comes in the query (the body is a stream).
  Request r = head;
  r.form.emplace("csrf", std::string(head.param("csrf")));
  std::optional<services::SessionInfo> session;
  if (auto refusal = admit_post(r, session)) {
    st.answer = std::move(*refusal);
    return st;
  }
  const auto boundary = MultipartReader::boundary_of(head.content_type);
  if (!services_.firmware || !boundary) {
    st.answer = html_page(&*session, "/firmware", "Firmware",
                          verdict_page_body(false, !services_.firmware
                                                       ? "This station was not started by its boot stage "
                                                         "(chargeguard boot): it has no firmware slots to install into."
                                                       : "The upload must be a multipart/form-data form."),
                          !services_.firmware ? 409 : 415);
    return st;
  }
  auto u = std::make_shared<Upload>();
  u->app = this;
  u->session = *session;
  u->peer = head.peer;
  Upload* raw = u.get();
  u->reader.emplace(*boundary, MultipartReader::Events{
                                   [raw](std::string_view n, std::string_view f) { return raw->begin(n, f); },
                                   [raw](std::span<const std::uint8_t> b) { return raw->data(b); },
                                   [raw]() { return raw->end(); }});
  uploads_.insert(u);
  st.sink = std::make_unique<UploadSink>(u);
  st.max_bytes = services_.firmware_max_bytes + 64 * 1024;  // the image and the form around it
  return st;
}

void WebApp::finish_upload(const std::shared_ptr<Upload>& u, bool complete, const std::string& error,
                           std::function<void(Response)> reply) {
  uploads_.erase(u);
  if (u->dead) return;
  const services::SessionInfo& s = u->session;
  std::string why = u->error.empty() ? error : u->error;
  if (complete && why.empty()) {
    if (auto r = u->reader->finish(); !r) why = r.error().message;
    else if (!u->image_done) why = "the form carried no image";
  }
  if (!why.empty() || !complete) {
    u->abort(why);
    return reply(html_page(&s, "/firmware", "Firmware", verdict_page_body(false, "Not installed: " + why), 400));
  }
  auto& fw = *services_.firmware;
  if (auto f = u->flush(); !f) {
    u->abort(f.error().message);
    return reply(html_page(&s, "/firmware", "Firmware", verdict_page_body(false, "Not installed: " + f.error().message), 400));
  }
  auto staged = fw.finish_write(s.principal, *u->writer);  // verifies; a refusal is recorded by the service
  u->writer.reset();
  if (!staged) {
    u->dead = true;
    return reply(html_page(&s, "/firmware", "Firmware",
                           verdict_page_body(false, "Not installed: " + staged.error().message), 400));
  }
  auto active = fw.activate(s.principal);
  u->dead = true;
  if (!active) return reply(refused(&s, active.error()));
  const auto& m = active->info.manifest;
  reply(html_page(&s, "/firmware", "Firmware",
                  verdict_page_body(true, "Signature verified. Firmware " + m.version + " (security version " +
                                              std::to_string(m.security_version) + ") is installed in slot " +
                                              std::string(firmware::to_string(active->slot)) +
                                              " and boots at the next restart; it must confirm itself, or the "
                                              "current image comes back.") +
                      restart_form(s)));
}

void WebApp::firmware_page(Call& c) {
  const services::SessionInfo& s = *c.session;
  std::string b;
  if (!services_.firmware) {
    b = notice("info", "This station was not started by its boot stage (chargeguard boot): it has no firmware slots.");
    return c.reply(html_page(&s, "/firmware", "Firmware", b));
  }
  auto status = services_.firmware->status_json(s.principal);
  if (!status) return c.reply(refused(&s, status.error()));
  b += "<section><h2>Slots</h2><pre><code>" + html(*status) + "</code></pre>" + restart_form(s) + "</section>";
  b += "<section><h2>Install an image</h2><form method=\"post\" action=\"/firmware?csrf=" + html(s.csrf) +
       "\" enctype=\"multipart/form-data\" id=\"upload\">"
       "<label for=\"certificate\">Signing certificate (PEM)</label><input type=\"file\" id=\"certificate\" "
       "name=\"certificate\" required>"
       "<label for=\"signature\">Signature (base64)</label><input type=\"file\" id=\"signature\" name=\"signature\" "
       "required>"
       "<label for=\"image\">Image</label><input type=\"file\" id=\"image\" name=\"image\" required>"
       "<p><button type=\"submit\">Verify and install</button> <progress id=\"progress\" max=\"100\" value=\"0\" "
       "hidden></progress></p></form><p class=\"muted\">The station checks the certificate against its "
       "manufacturer root, the signature, the model and the security-version floor before anything is "
       "installed; a refused image is recorded in the security log.</p></section>"
       "<script src=\"/static/upload.js\"></script>";
  c.reply(html_page(&s, "/firmware", "Firmware", b));
}

std::string_view upload_script() {
  return R"js(// The progress bar of the firmware upload (the form works without it).
(function () {
  var form = document.getElementById('upload');
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var bar = document.getElementById('progress');
    bar.hidden = false;
    var xhr = new XMLHttpRequest();
    xhr.open('POST', form.getAttribute('action'));
    xhr.upload.onprogress = function (e) { if (e.lengthComputable) bar.value = Math.round(100 * e.loaded / e.total); };
    xhr.onload = function () { document.open(); document.write(xhr.responseText); document.close(); };
    xhr.onerror = function () { bar.hidden = true; alert('The upload failed: the connection was lost.'); };
    xhr.send(new FormData(form));
  });
})();
)js";
}

void WebApp::firmware_post(Call& c) {
  c.reply(html_page(&*c.session, "/firmware", "Firmware",
                    verdict_page_body(false, "The upload must be a multipart/form-data form (the Firmware page's form)."),
                    415));
}

void WebApp::restart(Call& c) {
  const services::SessionInfo& s = *c.session;
  if (!services_.availability || !services_.restart)
    return c.reply(refused(&s, fail(Errc::Unavailable, "this station cannot be restarted from here")));
  auto r = services_.availability->reset(s.principal, services::AvailabilityService::ResetType::OnIdle, false);
  if (!r) return c.reply(refused(&s, r.error()));
  switch (*r) {
    case services::AvailabilityService::ResetStatus::Rejected:
      return c.reply(refused(&s, fail(Errc::Conflict, "the station refused the restart")));
    case services::AvailabilityService::ResetStatus::Scheduled:
      return c.reply(html_page(&s, "/firmware", "Restart",
                               notice("info", "The station restarts when the running charges have ended.")));
    case services::AvailabilityService::ResetStatus::Accepted:
      break;
  }
  services_.availability->perform_reset(audit::Source::of(s.principal, c.req.peer), "LocalReset");
  c.reply(html_page(&s, "/firmware", "Restart",
                    notice("ok", "The station restarts now. Log in again in a minute; your session ends with it.")));
  services_.restart();
}

void WebApp::upload_js(Call& c) {
  Response r;
  r.content_type = "text/javascript; charset=utf-8";
  r.body = std::string(upload_script());
  r.cacheable = true;
  c.reply(std::move(r));
}

WebApp::~WebApp() {
  // Uploads still running when the UI goes (station stopping): given up while
  // the firmware service is still there.
  for (const auto& u : uploads_) u->abort("the station stopped");
  uploads_.clear();
}

}  // namespace cg::web
