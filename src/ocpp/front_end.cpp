#include "ocpp/front_end.hpp"

namespace cg::ocpp {

FrontEnd::FrontEnd(Deps d)
    : d_(std::move(d)),
      session_({d_.io, d_.cfg, d_.db, d_.dm, d_.outbox, d_.services.network, d_.services.link, d_.certs,
                d_.request_restart, d_.firmware_version}),
      dispatcher_(session_, d_.services.link),
      security_(session_, dispatcher_, d_.cfg, d_.dm, d_.services.certificates, d_.services.identity, d_.password,
                d_.services.link),
      provisioning_(session_, dispatcher_, d_.services.settings, d_.services.network,
                    [this] { security_.password_changed(); }),
      charging_(session_, dispatcher_, d_.services.charging, d_.dm,
                d_.services.identity ? std::function<void(const policy::Principal&)>(
                                           [this](const policy::Principal& who) { security_.renew(who); })
                                     : std::function<void(const policy::Principal&)>(),
                [this] { firmware_.report_current(); }),
      availability_(session_, dispatcher_, d_.services.availability),
      diagnostics_(session_, dispatcher_, d_.services.security_log),
      firmware_(session_, dispatcher_, d_.services.firmware, d_.services.availability) {
  session_.set_dispatcher(&dispatcher_);
  session_.set_credentials(&security_);
  session_.on_boot_accepted([this](const security::CertChain& chain) {
    security_.boot_accepted(chain);
    if (d_.boot_accepted) d_.boot_accepted();
  });
  session_.on_transaction_event_answer([this](const std::string& tx, const boost::json::object& answer) {
    d_.station.on_transaction_event_result(tx, answer);
  });
  session_.on_online([this] { d_.station.on_online(); });
  session_.on_quarantined([this] { d_.services.lifecycle.retain_rejected(d_.outbox); });
  session_.on_stop([this] {
    security_.stop();
    diagnostics_.stop();
    firmware_.stop();
  });
}

void FrontEnd::start() {
  d_.services.lifecycle.retain_rejected(d_.outbox);
  security_.start();  // a renewal a restart interrupted: queued until the boot is accepted
  session_.start();
}

void FrontEnd::stop() { session_.stop(); }

void FrontEnd::tick() {
  availability_.tick();
  security_.tick();
  firmware_.tick();
}

}  // namespace cg::ocpp
