// Firmware on the simulated platform (issue 11): the boot chain in user space.
// A factory image in slot A, a local update into slot B signed with the
// openssl CLI, the new image confirming itself when its BootNotification is
// accepted, refusals (random file, foreign root, no code-signing EKU, wrong
// model, below the anti-rollback floor), a broken image that rolls back, a
// tampered slot refused at boot, and a station with no good slot that refuses
// to start. The payload is the station binary itself, repackaged.
// REQ: FW-1, FW-3, FW-4, FW-5, COM-7, COM-8, LOG-1
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { itest, pki, run, isCall } = require('./lib/harness');

const { prepare, image, install, status, bootWith, securityEvent, flipByte, slotImage } = require('./lib/firmware');

itest('factory image, local update signed with the openssl CLI, confirmation and reboot through the boot stage',
  { timeout: 90000 }, async (ctx) => {
    const p = await prepare(ctx);
    const v1 = await image(ctx, p, { version: '1.0.0-it', sv: 1 });
    const out = await install(ctx, v1, { factory: true });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /factory image installed in slot a/);

    await ctx.startStation({ boot: true });
    await ctx.waitFor(bootWith('1.0.0-it', 'PowerUp'), { timeoutMs: 15000 });

    // The engineer's update needs the station stopped (it owns the slots while it runs).
    const v2 = await image(ctx, p, { version: '2.0.0-it', sv: 2, openssl: true });
    const busy = await install(ctx, v2);
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /running|stop it first/);

    await ctx.stopStation();
    const done = await install(ctx, v2);
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /firmware installed in slot b/);
    let st = await status(ctx);
    assert.equal(st.slots.b.state, 'trying');
    assert.equal(st.slots.b.image.version, '2.0.0-it');
    assert.equal(st.security_floor, 1, 'the floor rises only when the new image confirmed itself');

    const from = ctx.mark();
    await ctx.startStation();
    await ctx.waitFor(bootWith('2.0.0-it', 'FirmwareUpdate'), { from, timeoutMs: 15000 });
    const ev = await ctx.waitFor(securityEvent('FirmwareUpdated'), { from, timeoutMs: 15000 });
    assert.match(ev.payload.techInfo ?? '', /2\.0\.0-it/);
    st = await status(ctx);
    assert.equal(st.slots.b.state, 'good');
    assert.equal(st.active, 'b');
    assert.equal(st.booted, 'b');
    assert.equal(st.security_floor, 2);
    assert.equal(st.slots.a.state, 'good', 'the previous image stays as the fallback');
    assert.equal(st.last_update.status, 'Installed');
    assert.equal(st.last_update.update.origin, 'local');

    // A Reset reboots through the boot stage: verified again, same image, same process tree.
    const child = ctx.child;
    const m = ctx.mark();
    const res = await ctx.call('Reset', { type: 'Immediate' });
    assert.equal(res.status, 'Accepted');
    const again = await ctx.waitFor(isCall('BootNotification'), { from: m, timeoutMs: 15000 });
    assert.equal(again.payload.chargingStation.firmwareVersion, '2.0.0-it');
    assert.equal(ctx.child, child, 'the boot stage stayed up and booted the payload again');

    const audit = await ctx.auditExport();
    assert.equal(audit.code, 0, audit.stderr);
    const fw = audit.records.filter((r) => /^Firmware/.test(r.type)).map((r) => `${r.type}/${r.details.status ?? ''}`);
    assert.deepEqual(fw.slice(0, 4), [
      'FirmwareUpdateProgress/Installed', // factory
      'FirmwareUpdateProgress/InstallRebooting', // local install
      'FirmwareUpdateProgress/Installing', // the boot stage tries it
      'FirmwareUpdated/',
    ]);
    const local = audit.records.find((r) => r.details.status === 'InstallRebooting');
    assert.match(local.source.principal, /^cli:/);
    assert.equal(local.details.origin, 'local');

    // Anti-rollback at boot: slot B tampered, slot A (security version 1) is below the
    // floor (2) now: the older image never runs; the station does not start.
    await ctx.stopStation();
    flipByte(slotImage(ctx, 'b'), 4000);
    const r = await ctx.cli(['boot', '--config', ctx.configFile, '--csms-url', ctx.csms.url, '--password-file',
      ctx.pwFile], { timeoutMs: 60000 });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the station cannot start/);
    const after = await ctx.auditExport();
    const refusals = after.records.filter((x) => x.type === 'SecureBootFailed').map((x) => `${x.details.slot}: ${x.details.reason}`);
    assert.equal(refusals.length, 2, refusals.join('\n'));
    assert.match(refusals[0], /^b: wrong signature/);
    assert.match(refusals[1], /^a: security version 1 is below this station's floor 2/);
  });

itest('confirm = "running": a new image confirms itself after running a while, without a CSMS', { timeout: 60000 },
  async (ctx) => {
    const p = await prepare(ctx, { toml: '[firmware]\nconfirm = "running"\nconfirm_after_s = 2\n' });
    assert.equal((await install(ctx, await image(ctx, p, { version: '1.0.0-it', sv: 1 }), { factory: true })).code, 0);
    assert.equal((await install(ctx, await image(ctx, p, { version: '1.1.0-it', sv: 3 }))).code, 0);
    await ctx.csms.close(); // no CSMS: BootNotification is never accepted
    await ctx.startStation({ boot: true });
    let st;
    // The slot turns good, then the station logs it: wait for both.
    for (let i = 0; i < 60; i++) {
      st = await status(ctx);
      if (st.slots.b.state === 'good' && /confirmed itself \(ran its confirmation time\)/.test(ctx.stationLog())) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(st.slots.b.state, 'good');
    assert.equal(st.security_floor, 3);
    assert.match(ctx.stationLog(), /confirmed itself \(ran its confirmation time\)/);
  });

itest('refused images: random file (wrong signature), foreign root, no code-signing EKU, wrong model, below the floor',
  { timeout: 90000 }, async (ctx) => {
    const p = await prepare(ctx);
    const v1 = await image(ctx, p, { version: '1.0.0-it', sv: 5 });
    assert.equal((await install(ctx, v1, { factory: true })).code, 0);

    // A random file with the genuine signing certificate: "wrong signature".
    const rnd = path.join(ctx.dir, 'random.bin');
    fs.writeFileSync(rnd, crypto.randomBytes(200000));
    const rndSig = path.join(ctx.dir, 'random.sig');
    fs.writeFileSync(rndSig, crypto.randomBytes(72).toString('base64') + '\n');
    let r = await install(ctx, { img: rnd, sig: rndSig, cert: p.signerCert });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /wrong signature/);

    // Signed under another manufacturer root.
    const other = await pki('other');
    const foreign = await image(ctx, p, {
      version: '9.0.0', sv: 9,
      cert: path.join(other.dir, 'firmware-signer.pem'), key: path.join(other.dir, 'firmware-signer.key'),
    });
    r = await install(ctx, foreign);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not chain to a pinned ManufacturerRootCertificate/);

    // A certificate of the genuine root without the codeSigning extended key usage.
    const key = path.join(ctx.dir, 'nocs.key');
    const csr = path.join(ctx.dir, 'nocs.csr');
    const crt = path.join(ctx.dir, 'nocs.pem');
    const ext = path.join(ctx.dir, 'nocs.ext');
    fs.writeFileSync(ext, 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n');
    for (const args of [
      ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key],
      ['req', '-new', '-key', key, '-subj', '/CN=not a code signer', '-out', csr],
      ['x509', '-req', '-in', csr, '-CA', p.mfrRoot, '-CAkey', p.mfrKey, '-CAcreateserial', '-days', '30',
        '-extfile', ext, '-out', crt],
    ]) {
      const o = await run('openssl', args);
      assert.equal(o.code, 0, o.stderr);
    }
    const nocs = await image(ctx, p, { version: '9.0.1', sv: 9, cert: crt, key, openssl: true });
    r = await install(ctx, nocs);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /codeSigning/);

    // Another model; a security version below the floor (5, the factory image's).
    const wrongModel = await image(ctx, p, { version: '9.0.2', sv: 9, model: 'OTHER-1' });
    r = await install(ctx, wrongModel);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /model 'OTHER-1'/);
    const older = await image(ctx, p, { version: '0.9.0', sv: 4 });
    r = await install(ctx, older);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /security version 4 is below this station's floor 5/);
    // … and by install-factory on this used device as well.
    r = await install(ctx, older, { factory: true });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /below this station's floor 5/);

    // Nothing was installed; the factory image boots, and the refusals were
    // recorded and reach the CSMS as security events.
    const st = await status(ctx);
    assert.equal(st.slots.b.state, 'empty');
    assert.equal(st.slots.a.image.version, '1.0.0-it');
    assert.deepEqual(fs.readdirSync(path.join(ctx.stateDir, 'firmware', 'slot-b')), []);
    await ctx.startStation({ boot: true });
    await ctx.waitFor(bootWith('1.0.0-it'), { timeoutMs: 15000 });
    await ctx.waitFor(securityEvent('InvalidFirmwareSignature'), { timeoutMs: 15000 });
    await ctx.waitFor(securityEvent('InvalidFirmwareSigningCertificate'), { timeoutMs: 15000 });
    const audit = await ctx.auditExport();
    const sig = audit.records.find((x) => x.type === 'InvalidFirmwareSignature');
    assert.match(sig.source.principal, /^cli:/);
    assert.equal(sig.source.interface, 'LocalMaintenance');
    assert.equal(sig.details.origin, 'local');
    const failures = audit.records.filter((x) => x.type === 'FirmwareUpdateProgress' && x.outcome === 'failure');
    assert.equal(failures.length, 3, 'model, floor (install), floor (install-factory)');
  });

itest('a broken image rolls back; a tampered slot is refused at boot; with no good slot the station does not start',
  { timeout: 120000 }, async (ctx) => {
    const p = await prepare(ctx);
    const v1 = await image(ctx, p, { version: '1.0.0-it', sv: 1 });
    assert.equal((await install(ctx, v1, { factory: true })).code, 0);

    // A signed payload that exits at once never confirms itself.
    const script = path.join(ctx.dir, 'broken.sh');
    fs.writeFileSync(script, '#!/bin/sh\necho "broken image" >&2\nexit 3\n', { mode: 0o755 });
    const broken = await image(ctx, p, { version: '1.1.0-broken', sv: 1, payload: script });
    assert.equal((await install(ctx, broken)).code, 0);
    await ctx.startStation({ boot: true });
    await ctx.waitFor(bootWith('1.0.0-it'), { timeoutMs: 20000 });
    let st = await status(ctx);
    assert.equal(st.slots.b.state, 'bad');
    assert.equal(st.booted, 'a');
    assert.equal(st.last_update.status, 'InstallationFailed');
    assert.equal(st.last_update.version, '1.1.0-broken');
    assert.match(st.last_update.detail, /not confirmed after 3 boot/);
    assert.equal((ctx.stationLog().match(/broken image/g) ?? []).length, 3, 'three attempts');
    await ctx.stopStation();

    // A good update into the bad slot, confirmed.
    const v2 = await image(ctx, p, { version: '1.2.0-it', sv: 1 });
    assert.equal((await install(ctx, v2)).code, 0);
    let from = ctx.mark();
    await ctx.startStation();
    await ctx.waitFor(securityEvent('FirmwareUpdated'), { from, timeoutMs: 15000 });
    await ctx.stopStation();

    // One byte of the active slot changed on disk: refused, audited; slot A boots.
    flipByte(slotImage(ctx, 'b'), 1000);
    from = ctx.mark();
    await ctx.startStation();
    await ctx.waitFor(bootWith('1.0.0-it'), { from, timeoutMs: 15000 });
    st = await status(ctx);
    assert.equal(st.slots.b.state, 'bad');
    assert.equal(st.active, 'a');
    await ctx.stopStation();
    const audit = await ctx.auditExport();
    const refused = audit.records.filter((x) => x.type === 'SecureBootFailed');
    assert.equal(refused.length, 1);
    assert.equal(refused[0].details.slot, 'b');
    assert.match(refused[0].details.reason, /wrong signature/);
    const rolled = audit.records.filter((x) => x.type === 'FirmwareRolledBack');
    assert.equal(rolled.length, 1);
    assert.equal(rolled[0].details.version, '1.1.0-broken');

    // Slot A tampered too: nothing verified is left, the station refuses to start.
    flipByte(slotImage(ctx, 'a'), 5000);
    const r = await ctx.cli(['boot', '--config', ctx.configFile, '--csms-url', ctx.csms.url, '--password-file',
      ctx.pwFile], { timeoutMs: 60000 });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the station cannot start: no slot holds a good image/);
    assert.doesNotMatch(r.stderr + r.stdout, /running with/);
  });
