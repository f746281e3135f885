// REQ: FW-4, FW-5 — the A/B slot state machine and its file.
#include "firmware/slots.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <vector>

#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace cg::firmware;

namespace {

SlotImage image(const std::string& version, std::uint32_t sv = 1) {
  SlotImage i;
  i.model = "CG-SIM-1";
  i.version = version;
  i.security_version = sv;
  i.size = 1234;
  i.digest = std::string(64, 'a');
  i.signer = "CN=Firmware Signer";
  i.installed_at = 1700000000;
  return i;
}

SlotsState factory() {
  SlotsState s;
  factory_installed(s, image("1.0.0"), 100);
  return s;
}

// Stages and activates `version` in the install target; returns the slot.
Slot stage_and_activate(SlotsState& s, const std::string& version, int attempts = 3) {
  auto t = install_target(s);
  EXPECT_TRUE(t) << t.error().message;
  begin_write(s, *t);
  staged(s, *t, image(version, 2));
  auto a = activate(s, *t, attempts, UpdateRef{42, "ocpp", "csms"});
  EXPECT_TRUE(a) << a.error().message;
  return *t;
}

// Whatever state a power loss leaves, the boot stage only ever picks a slot
// that holds an image and is good or being tried.
void expect_safe_boot(SlotsState s, const std::string& where) {
  const BootChoice c = select_boot(s, 1000);
  if (!c.slot) return;
  EXPECT_TRUE(s[*c.slot].image) << where;
  EXPECT_TRUE(s[*c.slot].health == SlotHealth::Good || s[*c.slot].health == SlotHealth::Trying) << where;
  EXPECT_EQ(c.trying, s[*c.slot].health == SlotHealth::Trying) << where;
}

}  // namespace

TEST(FirmwareSlots, FreshDeviceHasNothingToBoot) {
  SlotsState s;
  const BootChoice c = select_boot(s, 1);
  EXPECT_FALSE(c.slot);
  EXPECT_FALSE(s.booted);
  EXPECT_EQ(*install_target(s), Slot::B);
}

TEST(FirmwareSlots, FactoryImageBootsFromSlotA) {
  SlotsState s = factory();
  const BootChoice c = select_boot(s, 1);
  ASSERT_TRUE(c.slot);
  EXPECT_EQ(*c.slot, Slot::A);
  EXPECT_FALSE(c.trying);
  EXPECT_EQ(s.booted, Slot::A);
  EXPECT_EQ(*install_target(s), Slot::B);
}

TEST(FirmwareSlots, NewImageIsTriedThenConfirmed) {
  SlotsState s = factory();
  select_boot(s, 1);
  const Slot b = stage_and_activate(s, "1.1.0");
  EXPECT_EQ(b, Slot::B);
  EXPECT_EQ(s[b].health, SlotHealth::Trying);
  // While it is tried, no other install may start.
  EXPECT_EQ(install_target(s).error().code, cg::Errc::Conflict);

  BootChoice c = select_boot(s, 2);
  EXPECT_EQ(c.slot, Slot::B);
  EXPECT_TRUE(c.trying);
  EXPECT_EQ(s.trying->attempts_left, 2);
  ASSERT_TRUE(confirm(s, Slot::B, 3));
  EXPECT_EQ(s[Slot::B].health, SlotHealth::Good);
  EXPECT_EQ(s.active, Slot::B);
  EXPECT_FALSE(s.trying);
  ASSERT_TRUE(s.last_update);
  EXPECT_EQ(s.last_update->status, "Installed");
  EXPECT_EQ(s.last_update->version, "1.1.0");
  EXPECT_EQ(s.last_update->update.request_id, 42);
  EXPECT_FALSE(s.last_update->reported);
  // The previous image stays good: the fallback.
  EXPECT_EQ(s[Slot::A].health, SlotHealth::Good);
  c = select_boot(s, 4);
  EXPECT_EQ(c.slot, Slot::B);
  EXPECT_FALSE(c.trying);
  EXPECT_EQ(*install_target(s), Slot::A);
  // Confirming twice, or a slot that is not tried, is a conflict.
  EXPECT_EQ(confirm(s, Slot::B, 5).error().code, cg::Errc::Conflict);
}

TEST(FirmwareSlots, UnconfirmedImageRollsBackAfterItsAttempts) {
  SlotsState s = factory();
  select_boot(s, 1);
  stage_and_activate(s, "2.0.0", 3);
  for (int i = 0; i < 3; ++i) {
    const BootChoice c = select_boot(s, 10 + i);
    EXPECT_EQ(c.slot, Slot::B) << i;
    EXPECT_TRUE(c.trying);
    EXPECT_FALSE(c.rolled_back);
  }
  const BootChoice c = select_boot(s, 20);
  EXPECT_EQ(c.slot, Slot::A);
  EXPECT_FALSE(c.trying);
  EXPECT_TRUE(c.rolled_back);
  EXPECT_EQ(s[Slot::B].health, SlotHealth::Bad);
  EXPECT_FALSE(s.trying);
  ASSERT_TRUE(s.last_update);
  EXPECT_EQ(s.last_update->status, "InstallationFailed");
  EXPECT_EQ(s.last_update->update.request_id, 42);
  EXPECT_NE(s.last_update->detail.find("3 boot"), std::string::npos) << s.last_update->detail;
  // The bad slot is never booted again; it is where the next image goes.
  EXPECT_EQ(select_boot(s, 21).slot, Slot::A);
  EXPECT_EQ(*install_target(s), Slot::B);
  EXPECT_EQ(confirm(s, Slot::B, 22).error().code, cg::Errc::Conflict);
}

TEST(FirmwareSlots, RefusedSlotFallsBackToTheOtherGoodSlot) {
  SlotsState s = factory();
  select_boot(s, 1);
  stage_and_activate(s, "1.1.0");
  select_boot(s, 2);
  ASSERT_TRUE(confirm(s, Slot::B, 3));
  // B (active) was tampered with: the boot stage refuses it and boots A.
  refuse(s, Slot::B, "signature does not match", 4);
  EXPECT_EQ(s[Slot::B].health, SlotHealth::Bad);
  EXPECT_FALSE(s.active);
  const BootChoice c = select_boot(s, 5);
  EXPECT_EQ(c.slot, Slot::A);
  EXPECT_EQ(s.active, Slot::A);
  // With A refused too, nothing boots.
  refuse(s, Slot::A, "signature does not match", 6);
  EXPECT_FALSE(select_boot(s, 7).slot);
  EXPECT_FALSE(s.booted);
}

TEST(FirmwareSlots, RefusingTheTriedSlotEndsTheUpdate) {
  SlotsState s = factory();
  select_boot(s, 1);
  stage_and_activate(s, "1.1.0");
  refuse(s, Slot::B, "security version 2 is below the floor 3", 9);
  EXPECT_FALSE(s.trying);
  EXPECT_EQ(s.last_update->status, "InstallationFailed");
  EXPECT_EQ(s.last_update->detail, "security version 2 is below the floor 3");
  EXPECT_EQ(select_boot(s, 10).slot, Slot::A);
}

TEST(FirmwareSlots, ActivateNeedsAStagedImageAndOneAttempt) {
  SlotsState s = factory();
  EXPECT_EQ(activate(s, Slot::B, 3, {}).error().code, cg::Errc::Conflict);  // empty
  begin_write(s, Slot::B);
  EXPECT_EQ(activate(s, Slot::B, 3, {}).error().code, cg::Errc::Conflict);  // being written
  staged(s, Slot::B, image("x"));
  EXPECT_EQ(activate(s, Slot::B, 0, {}).error().code, cg::Errc::InvalidArgument);
  EXPECT_TRUE(activate(s, Slot::B, 1, {}));
  EXPECT_EQ(activate(s, Slot::B, 1, {}).error().code, cg::Errc::Conflict);
  // A staged (never activated) image is never booted.
  SlotsState t = factory();
  begin_write(t, Slot::B);
  staged(t, Slot::B, image("x"));
  EXPECT_EQ(select_boot(t, 1).slot, Slot::A);
}

TEST(FirmwareSlots, OneWriteAtATimeAndAnAbandonedWriteIsReported) {
  SlotsState s = factory();
  select_boot(s, 1);
  begin_write(s, Slot::B, UpdateRef{5, "ocpp", "csms"});
  EXPECT_EQ(install_target(s).error().code, cg::Errc::Conflict);
  ASSERT_TRUE(s.pending);
  // kill -9 during the download: the next start gives it up and reports it.
  abandon(s, "DownloadFailed", "interrupted by a restart", 3);
  EXPECT_FALSE(s.pending);
  EXPECT_EQ(s[Slot::B].health, SlotHealth::Empty);
  EXPECT_EQ(s.last_update->status, "DownloadFailed");
  EXPECT_EQ(s.last_update->update.request_id, 5);
  EXPECT_EQ(*install_target(s), Slot::B);
  // A staged image given up without a report (canceled by a newer request).
  begin_write(s, Slot::B, UpdateRef{6, "ocpp", "csms"});
  staged(s, Slot::B, image("1.2.0"));
  abandon(s, "", "", 4);
  EXPECT_EQ(s[Slot::B].health, SlotHealth::Empty);
  EXPECT_EQ(s.last_update->update.request_id, 5);
  // Activation ends the pending write.
  begin_write(s, Slot::B, UpdateRef{7, "local", "cli:root"});
  staged(s, Slot::B, image("1.2.0"));
  ASSERT_TRUE(activate(s, Slot::B, 2, s.pending->update));
  EXPECT_FALSE(s.pending);
  EXPECT_EQ(s.trying->update.request_id, 7);
  EXPECT_EQ(from_json(to_json(s))->trying->update.origin, "local");
}

TEST(FirmwareSlots, JsonRoundTripAndDamage) {
  SlotsState s = factory();
  select_boot(s, 1);
  stage_and_activate(s, "1.1.0");
  select_boot(s, 2);
  const std::string text = to_json(s);
  auto back = from_json(text);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(to_json(*back), text);
  EXPECT_EQ(back->trying->slot, Slot::B);
  EXPECT_EQ(back->trying->attempts_left, 2);
  EXPECT_EQ(back->trying->update.request_id, 42);
  EXPECT_EQ((*back)[Slot::A].image->version, "1.0.0");

  for (const std::string& bad : {std::string(), std::string("{"), std::string("[]"), std::string("{\"format\":2}"),
                                 text.substr(0, text.size() / 2), std::string(70000, ' ')}) {
    EXPECT_FALSE(from_json(bad)) << bad.substr(0, 80);
  }
  std::string wrong = text;
  wrong.replace(wrong.find("\"trying\",\"image\""), 8, "\"bogus\"");
  EXPECT_FALSE(from_json(wrong));
  std::string range = text;
  range.replace(range.find("\"attempts_left\":2"), 17, "\"attempts_left\":9");
  EXPECT_FALSE(from_json(range));
}

TEST(FirmwareSlots, StoreSurvivesAPowerLossBetweenAnyTwoSteps) {
  const fs::path dir = cg::test::make_temp_dir("fw-slots") / "firmware";
  SlotStore store(dir);
  // Each step of an update's life, as the boot stage, the service and the
  // daemon perform it: one durable save each.
  std::vector<std::function<cg::Result<void>(SlotsState&)>> steps = {
      [](SlotsState& s) { factory_installed(s, image("1.0.0"), 1); return cg::Result<void>{}; },
      [](SlotsState& s) { select_boot(s, 2); return cg::Result<void>{}; },
      [](SlotsState& s) { begin_write(s, Slot::B, UpdateRef{7, "local", "cli:root"}); return cg::Result<void>{}; },
      [](SlotsState& s) { staged(s, Slot::B, image("1.1.0", 2)); return cg::Result<void>{}; },
      [](SlotsState& s) { return activate(s, Slot::B, 2, UpdateRef{7, "local", "cli:root"}); },
      [](SlotsState& s) { select_boot(s, 3); return cg::Result<void>{}; },
      [](SlotsState& s) { select_boot(s, 4); return cg::Result<void>{}; },
      [](SlotsState& s) { select_boot(s, 5); return cg::Result<void>{}; },  // rolls back
      [](SlotsState& s) { s.last_update->reported = true; return cg::Result<void>{}; },
  };
  std::vector<std::string> after;  // the file after each step
  for (std::size_t i = 0; i < steps.size(); ++i) {
    auto r = store.update(steps[i]);
    ASSERT_TRUE(r) << i << ": " << r.error().message;
    after.push_back(to_json(*r));
    // A power loss right after step i: what is on disk is exactly step i's
    // state (the write is complete or absent), and booting from it is safe.
    auto loaded = store.load();
    ASSERT_TRUE(loaded) << loaded.error().message;
    EXPECT_EQ(to_json(*loaded), after.back()) << i;
    expect_safe_boot(*loaded, "after step " + std::to_string(i));
  }
  // A leftover temporary file of an interrupted save changes nothing.
  cg::test::write_file(dir / "slots.json.tmp", "{garbage");
  EXPECT_EQ(to_json(*store.load()), after.back());
  const SlotsState final_state = *store.load();
  EXPECT_EQ(final_state[Slot::B].health, SlotHealth::Bad);
  EXPECT_EQ(final_state.booted, Slot::A);
  EXPECT_TRUE(final_state.last_update->reported);

  // A failed change saves nothing.
  auto r = store.update([](SlotsState& s) { return activate(s, Slot::A, 1, {}); });
  EXPECT_FALSE(r);
  EXPECT_EQ(to_json(*store.load()), after.back());

  // A damaged file is an error naming the file (the boot stage fails closed).
  cg::test::write_file(dir / "slots.json", after.back().substr(0, 40));
  auto bad = store.load();
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, cg::Errc::Storage);
  EXPECT_NE(bad.error().message.find("slots.json"), std::string::npos) << bad.error().message;
  fs::remove_all(dir.parent_path());
}

TEST(FirmwareSlots, ClearSlotRemovesImageAndLeftovers) {
  const fs::path dir = cg::test::make_temp_dir("fw-clear") / "firmware";
  SlotStore store(dir);
  ASSERT_TRUE(store.clear_slot(Slot::B));  // creates the directories
  for (const char* f : {"image", "image.partial", "signature", "certificate.pem"}) cg::test::write_file(store.slot_dir(Slot::B) / f, "x");
  cg::test::write_file(store.image_path(Slot::A), "keep");
  ASSERT_TRUE(store.clear_slot(Slot::B));
  EXPECT_TRUE(fs::is_empty(store.slot_dir(Slot::B)));
  EXPECT_TRUE(fs::exists(store.image_path(Slot::A)));
  ASSERT_TRUE(store.write_credentials(Slot::B, "c2ln", "-----BEGIN CERTIFICATE-----\n"));
  EXPECT_EQ(cg::test::read_all(store.signature_path(Slot::B)), "c2ln\n");
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  fs::remove_all(dir.parent_path());
}

// ---- the anti-rollback floor (FW-5)

#include "firmware/floor.hpp"
#include "security/key_store.hpp"

TEST(FirmwareFloor, RisesNeverFallsAndSurvivesARestoredStateDirectory) {
  const fs::path tmp = cg::test::make_temp_dir("fw-floor");
  auto keys = cg::security::open_key_store(cg::security::FileKeyStoreOptions{tmp / "keys"});
  SecurityFloor floor(tmp / "firmware" / "floor", keys.get());
  EXPECT_EQ(*floor.value(), 0u);
  EXPECT_EQ(*floor.raise(3), 3u);
  EXPECT_EQ(*floor.raise(2), 3u);
  EXPECT_EQ(*floor.value(), 3u);
  EXPECT_EQ(cg::test::read_all(tmp / "firmware" / "floor" / "3"), "3\n");

  // An old copy of the firmware state put back: the key store still knows.
  fs::remove_all(tmp / "firmware" / "floor");
  EXPECT_EQ(*floor.value(), 3u);
  // And the records count without the key store's counter.
  EXPECT_EQ(*floor.raise(5), 5u);
  SecurityFloor records_only(tmp / "firmware" / "floor", nullptr);
  EXPECT_EQ(*records_only.value(), 5u);
  // Without a key store the floor is not raised (the two would disagree).
  EXPECT_EQ(records_only.raise(9).error().code, cg::Errc::Internal);

  // A torn record (power loss while writing) or a foreign name is ignored.
  cg::test::write_file(tmp / "firmware" / "floor" / "99", "");
  cg::test::write_file(tmp / "firmware" / "floor" / "98", "97\n");
  cg::test::write_file(tmp / "firmware" / "floor" / "007", "007\n");
  cg::test::write_file(tmp / "firmware" / "floor" / "99999999999", "99999999999\n");
  EXPECT_EQ(*records_only.value(), 5u);
  fs::remove_all(tmp);
}
