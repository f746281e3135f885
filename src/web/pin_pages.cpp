// The commissioning PIN page (AUTH-9): its state, the change (current PIN and
// the rules) and the reset of a lost PIN. The route asks the policy to show
// the page (ManageSecuritySettings); CommissioningPinService asks it again
// for each change and writes the records. The PIN is hashed: the work runs on
// the authentication worker.
#include <openssl/crypto.h>

#include <boost/asio/post.hpp>

#include "services/password_policy.hpp"
#include "web/app.hpp"
#include "web/pages.hpp"

namespace cg::web {

void WebApp::refresh_pin_state() {
  worker_.submit("(station)", [this] {
    auto st = pin_.state();
    boost::asio::post(io_, [this, st] { pin_state_ = st; });
  });
}

std::string WebApp::render_pin(const services::SessionInfo& s, const services::PinStatus& st,
                               std::string_view message) const {
  std::string b(message);
  b += "<section><h2>State</h2><dl><dt>PIN</dt><dd id=\"pin-state\">";
  if (!st.set) b += "none: the commissioning channel is closed";
  else if (st.is_default) b += "the default from the label: replace it";
  else if (st.renewal_due) b += "set by an administrator; older than the renewal period: renew it";
  else b += "set by an administrator";
  b += "</dd><dt>Set</dt><dd>" + (st.set ? html(when(st.set_at)) : std::string("never")) + "</dd>";
  if (st.locked_until) b += "<dt>Locked until</dt><dd>" + html(when(st.locked_until)) + " (too many wrong PINs)</dd>";
  b += "</dl></section>";
  b += "<section><h2>Change the PIN</h2><form method=\"post\" action=\"/pin\">" + csrf_field(s) +
       "<input type=\"hidden\" name=\"action\" value=\"change\">";
  if (st.set)
    b += "<label for=\"current\">Current PIN</label><input type=\"password\" id=\"current\" name=\"current\" "
         "inputmode=\"numeric\" autocomplete=\"off\" maxlength=\"16\" required>";
  b += "<label for=\"pin\">New PIN</label><input type=\"password\" id=\"pin\" name=\"pin\" inputmode=\"numeric\" "
       "autocomplete=\"off\" maxlength=\"16\" pattern=\"[0-9]{8,16}\" required>"
       "<label for=\"confirm\">New PIN again</label><input type=\"password\" id=\"confirm\" name=\"confirm\" "
       "inputmode=\"numeric\" autocomplete=\"off\" maxlength=\"16\" pattern=\"[0-9]{8,16}\" required>"
       "<p><button type=\"submit\">Change PIN</button></p></form><p class=\"muted\">8 to 16 digits; not one digit "
       "repeated; not an ascending or descending sequence; not the current PIN. Each station has its own PIN. Wrong "
       "current PINs lock the PIN like wrong passwords lock an account.</p></section>";
  b += "<section><h2>Lost the PIN?</h2><form method=\"post\" action=\"/pin\">" + csrf_field(s) +
       "<input type=\"hidden\" name=\"action\" value=\"reset\">"
       "<label for=\"password\">Your password (to confirm)</label><input type=\"password\" id=\"password\" "
       "name=\"password\" autocomplete=\"current-password\" maxlength=\"128\" required>"
       "<p><button type=\"submit\" class=\"secondary\">Make a new random PIN</button></p></form><p class=\"muted\">"
       "The station draws a new default PIN and shows it once; it must then be replaced like the one on the label. "
       "Your own password is asked so that an open session alone does not get a working PIN.</p></section>";
  return b;
}

void WebApp::pin_page(Call& c) {
  const services::SessionInfo s = *c.session;
  auto reply = c.reply;
  on_worker(c, [this, s, reply]() -> std::function<void()> {
    auto st = pin_.state();
    return [this, s, st, reply] {
      pin_state_ = st;
      reply(html_page(&s, "/pin", "Commissioning PIN", render_pin(s, st, {})));
    };
  });
}

// REQ: AUTH-9
void WebApp::pin_action(Call& c) {
  const services::SessionInfo s = *c.session;
  const std::string action(c.req.field("action"));
  std::string current(c.req.field("current")), next(c.req.field("pin")), password(c.req.field("password"));
  // The form's own checks only for a role that may change the PIN: for the
  // others the service answers (and records the refusal).
  const bool may = gate_.allows(s.principal, policy::Operation::ManageSecuritySettings);
  if (action == "change" && next != c.req.field("confirm") && may) {
    OPENSSL_cleanse(current.data(), current.size());
    return c.reply(refused(&s, fail(Errc::InvalidArgument, "The two new PINs differ.")));
  }
  auto reply = c.reply;
  const std::string peer = c.req.peer;
  on_worker(c, [this, s, action, may, current = std::move(current), next = std::move(next),
                password = std::move(password), peer, reply]() mutable -> std::function<void()> {
    Result<void> outcome;
    std::string message;
    if (action == "change") {
      outcome = pin_.change(s.principal, current, next, peer);
      if (outcome) message = notice("ok", "The commissioning PIN was changed.");
    } else if (action == "reset") {
      // Re-authentication first (AUTH-9: a lost PIN is not a free PIN for whoever holds the session).
      auto confirmed = may ? accounts_.confirm_password(s.principal, password, peer, "reset PIN") : Result<void>{};
      auto pin = confirmed ? pin_.reset(s.principal, peer) : Result<std::string>(confirmed.error());
      if (pin) {
        message = "<div class=\"notice ok\" role=\"status\">The new default PIN, shown only now: <span "
                  "class=\"secret\" id=\"new-pin\">" + html(*pin) + "</span>. Replace it below.</div>";
        OPENSSL_cleanse(pin->data(), pin->size());
      } else {
        outcome = pin.error();
      }
    } else {
      outcome = fail(Errc::InvalidArgument, "unknown action");
    }
    OPENSSL_cleanse(current.data(), current.size());
    OPENSSL_cleanse(next.data(), next.size());
    OPENSSL_cleanse(password.data(), password.size());
    if (!outcome) message = notice("error", outcome.error().message);
    auto st = pin_.state();
    return [this, s, st, outcome, message, reply] {
      pin_state_ = st;
      if (!outcome && outcome.error().code == Errc::Denied) return reply(refused(&s, outcome.error()));
      const unsigned status = outcome ? 200 : http_status(outcome.error().code);
      reply(html_page(&s, "/pin", "Commissioning PIN", render_pin(s, st, message), status));
    };
  });
}

}  // namespace cg::web
