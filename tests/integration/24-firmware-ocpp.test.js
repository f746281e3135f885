// Firmware over OCPP (L01, issue 11): UpdateFirmware from the strict dev CSMS,
// the image downloaded over HTTPS from a server on loopback (trusted through
// the CSMS roots), every FirmwareStatusNotification in order, the reboot into
// the new image and its report; refusals and failures with their statuses
// and security events; FW-6 (an install waits for the running charge).
// REQ: FW-1, FW-2, FW-5, FW-6, FW-7, COM-7, COM-9, LOG-1; OCPP L01
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { itest, pki, run, REPO, CG_BIN, isCall, startDownloadServer, sleep } = require('./lib/harness');
const { prepare, image, install, status, bootWith, securityEvent } = require('./lib/firmware');

const fsn = (pred = () => true) => isCall('FirmwareStatusNotification', pred);

// Statuses (requestId given) of FirmwareStatusNotifications from index `from`.
function statuses(ctx, requestId, from = 0) {
  return ctx.csms.messages
    .slice(from)
    .filter(fsn((p) => p.requestId === requestId))
    .map((m) => m.payload.status);
}

async function waitStatus(ctx, requestId, st, opts = {}) {
  return ctx.waitFor(fsn((p) => p.requestId === requestId && p.status === st), { timeoutMs: 20000, ...opts });
}

// A station under the boot stage with factory image 1.0.0-it (security version sv).
async function factoryStation(ctx, { sv = 1, toml, csms } = {}) {
  const p = await prepare(ctx, { toml, csms });
  const v1 = await image(ctx, p, { version: '1.0.0-it', sv });
  const r = await install(ctx, v1, { factory: true });
  assert.equal(r.code, 0, r.stderr);
  await ctx.startStation({ boot: true });
  await ctx.waitFor(bootWith('1.0.0-it'), { timeoutMs: 15000 });
  return p;
}

function updateRequest(im, url, extra = {}, fw = {}) {
  return {
    requestId: extra.requestId ?? 42,
    ...extra,
    firmware: {
      location: url,
      retrieveDateTime: new Date().toISOString(),
      signingCertificate: fs.readFileSync(im.cert, 'utf8'),
      signature: fs.readFileSync(im.sig, 'utf8').trim(),
      ...fw,
    },
  };
}

itest('UpdateFirmware: download, every status in order, reboot into the new image, Installed reported',
  { timeout: 90000 }, async (ctx) => {
    const p = await factoryStation(ctx);
    const v2 = await image(ctx, p, { version: '2.0.0-it', sv: 2 });
    const server = await startDownloadServer({ files: { '/fw/v2.img': v2.img } });
    try {
      // Nothing runs: Idle.
      let m = ctx.mark();
      let t = await ctx.call('TriggerMessage', { requestedMessage: 'FirmwareStatusNotification' });
      assert.equal(t.status, 'Accepted');
      const idle = await ctx.waitFor(fsn(), { from: m });
      assert.equal(idle.payload.status, 'Idle');
      assert.equal(idle.payload.requestId, undefined);

      m = ctx.mark();
      const res = await ctx.call('UpdateFirmware', updateRequest(v2, server.url('/fw/v2.img'), { requestId: 42 }));
      assert.equal(res.status, 'Accepted');
      await ctx.waitFor(bootWith('2.0.0-it', 'FirmwareUpdate'), { from: m, timeoutMs: 30000 });
      await waitStatus(ctx, 42, 'Installed', { from: m });
      assert.deepEqual(statuses(ctx, 42, m), [
        'Downloading', 'Downloaded', 'SignatureVerified', 'Installing', 'InstallRebooting', 'Installed',
      ]);
      await ctx.waitFor(securityEvent('FirmwareUpdated'), { from: m, timeoutMs: 15000 });
      assert.equal(server.requests.length, 1);

      const st = await status(ctx);
      assert.equal(st.slots.b.image.version, '2.0.0-it');
      assert.equal(st.slots.b.state, 'good');
      assert.equal(st.active, 'b');
      assert.equal(st.security_floor, 2);

      // The job is over: Idle again.
      m = ctx.mark();
      t = await ctx.call('TriggerMessage', { requestedMessage: 'FirmwareStatusNotification' });
      assert.equal(t.status, 'Accepted');
      assert.equal((await ctx.waitFor(fsn(), { from: m })).payload.status, 'Idle');

      // Each step is in the audit log, with who asked and over which interface.
      const audit = await ctx.auditExport();
      const steps = audit.records.filter((r) => r.type === 'FirmwareUpdateProgress' && r.details.requestId === 42);
      assert.deepEqual(steps.map((r) => r.details.status), ['SignatureVerified', 'InstallRebooting', 'Installing']);
      assert.equal(steps[0].source.interface, 'Wan');
    } finally {
      await server.close();
    }
  });

itest('UpdateFirmware refusals: unsigned, foreign signing certificate, plain http, wrong signature, older image',
  { timeout: 90000 }, async (ctx) => {
    const p = await factoryStation(ctx, { sv: 3 });
    const v2 = await image(ctx, p, { version: '2.0.0-it', sv: 3 });
    const other = await image(ctx, p, { version: '2.0.1-it', sv: 3 });
    const older = await image(ctx, p, { version: '0.9.0-it', sv: 2 });
    const foreignPki = await pki('other');
    const foreign = await image(ctx, p, {
      version: '9.0.0', sv: 9,
      cert: path.join(foreignPki.dir, 'firmware-signer.pem'), key: path.join(foreignPki.dir, 'firmware-signer.key'),
    });
    const server = await startDownloadServer({
      files: { '/v2.img': v2.img, '/other.img': other.img, '/older.img': older.img, '/foreign.img': foreign.img },
    });
    try {
      // No signature: Rejected (no unsigned updates, L02 off).
      const unsigned = updateRequest(v2, server.url('/v2.img'), { requestId: 1 });
      delete unsigned.firmware.signature;
      delete unsigned.firmware.signingCertificate;
      assert.equal((await ctx.call('UpdateFirmware', unsigned)).status, 'Rejected');

      // A signing certificate of another root: InvalidCertificate, the event, nothing downloaded.
      let m = ctx.mark();
      const inv = await ctx.call('UpdateFirmware', updateRequest(foreign, server.url('/foreign.img'), { requestId: 2 }));
      assert.equal(inv.status, 'InvalidCertificate');
      await ctx.waitFor(securityEvent('InvalidFirmwareSigningCertificate'), { from: m, timeoutMs: 10000 });

      // Plain http: Rejected with the reason.
      const http = await ctx.call('UpdateFirmware', updateRequest(v2, `http://localhost:${server.port}/v2.img`, { requestId: 3 }));
      assert.equal(http.status, 'Rejected');
      assert.equal(http.statusInfo.reasonCode, 'InvalidURL');
      assert.equal(server.requests.length, 0, 'nothing was downloaded');

      // The signature of v2 with the bytes of another image: InvalidSignature, the event, nothing installed.
      m = ctx.mark();
      const wrong = { ...updateRequest(v2, server.url('/other.img'), { requestId: 4 }) };
      assert.equal((await ctx.call('UpdateFirmware', wrong)).status, 'Accepted');
      await waitStatus(ctx, 4, 'InvalidSignature', { from: m });
      assert.deepEqual(statuses(ctx, 4, m), ['Downloading', 'Downloaded', 'InvalidSignature']);
      await ctx.waitFor(securityEvent('InvalidFirmwareSignature'), { from: m, timeoutMs: 10000 });

      // Genuinely signed but below the floor (3): InstallVerificationFailed.
      m = ctx.mark();
      assert.equal((await ctx.call('UpdateFirmware', updateRequest(older, server.url('/older.img'), { requestId: 5 }))).status,
        'Accepted');
      await waitStatus(ctx, 5, 'InstallVerificationFailed', { from: m });

      const st = await status(ctx);
      assert.equal(st.slots.b.state, 'empty');
      assert.deepEqual(fs.readdirSync(path.join(ctx.stateDir, 'firmware', 'slot-b')), []);
      assert.equal(st.booted, 'a');
      assert.equal(ctx.calls('BootNotification').length, 1, 'no reboot');
    } finally {
      await server.close();
    }
  });

itest('download failures: HTTP 500 with retries, a truncated image; a new request cancels the running one',
  { timeout: 90000 }, async (ctx) => {
    const p = await factoryStation(ctx);
    const v2 = await image(ctx, p, { version: '2.0.0-it', sv: 1 });
    let mode = 'fail';
    const server = await startDownloadServer({
      files: { '/v2.img': v2.img },
      behave: (n) => (mode === 'fail' ? 500 : mode === 'truncate' ? 'truncate' : mode === 'hang-then-ok' ? 503 : 'ok'),
    });
    try {
      // 500 on every attempt: 1 + retries requests, then DownloadFailed.
      let m = ctx.mark();
      assert.equal((await ctx.call('UpdateFirmware', updateRequest(v2, server.url('/v2.img'), { requestId: 10, retries: 2, retryInterval: 1 }))).status, 'Accepted');
      await waitStatus(ctx, 10, 'DownloadFailed', { from: m });
      assert.equal(server.requests.length, 3);
      assert.deepEqual(statuses(ctx, 10, m), ['Downloading', 'DownloadFailed']);

      // Truncated: DownloadFailed, nothing left in the slot.
      mode = 'truncate';
      m = ctx.mark();
      assert.equal((await ctx.call('UpdateFirmware', updateRequest(v2, server.url('/v2.img'), { requestId: 11 }))).status, 'Accepted');
      await waitStatus(ctx, 11, 'DownloadFailed', { from: m });
      assert.deepEqual(fs.readdirSync(path.join(ctx.stateDir, 'firmware', 'slot-b')), []);

      // A request scheduled for later is replaced by a new one (AcceptedCanceled), whose
      // download stalls and is replaced in turn; the third one installs.
      mode = 'stall';
      m = ctx.mark();
      const later = new Date(Date.now() + 3600e3).toISOString();
      assert.equal((await ctx.call('UpdateFirmware', updateRequest(v2, server.url('/v2.img'), { requestId: 12 }, { retrieveDateTime: later }))).status, 'Accepted');
      await waitStatus(ctx, 12, 'DownloadScheduled', { from: m });
      const second = await ctx.call('UpdateFirmware', updateRequest(v2, server.url('/v2.img'), { requestId: 13 }));
      assert.equal(second.status, 'AcceptedCanceled');
      await waitStatus(ctx, 13, 'Downloading', { from: m });
      const partial = path.join(ctx.stateDir, 'firmware', 'slot-b', 'image.partial');
      for (let i = 0; i < 50 && !fs.existsSync(partial); i++) await sleep(100);
      assert.ok(fs.existsSync(partial));
      mode = 'ok';
      const third = await ctx.call('UpdateFirmware', updateRequest(v2, server.url('/v2.img'), { requestId: 14 }));
      assert.equal(third.status, 'AcceptedCanceled');
      await waitStatus(ctx, 14, 'Installed', { from: m, timeoutMs: 30000 });
      assert.deepEqual(statuses(ctx, 12, m), ['DownloadScheduled']);
      assert.deepEqual(statuses(ctx, 13, m), ['Downloading']);
    } finally {
      await server.close();
    }
  });

itest('FW-6: the install waits for the running charge, then reboots into the new image', { timeout: 90000 }, async (ctx) => {
  const p = await factoryStation(ctx);
  const v2 = await image(ctx, p, { version: '2.0.0-it', sv: 1 });
  const server = await startDownloadServer({ files: { '/v2.img': v2.img } });
  try {
    await ctx.simOk('plug', 1);
    await ctx.simOk('badge', 1, 'AABBCCDD');
    await ctx.waitStatus((s) => s.evses[0].transactionId, 8000, 'a transaction');
    const m = ctx.mark();
    assert.equal((await ctx.call('UpdateFirmware', updateRequest(v2, server.url('/v2.img'), { requestId: 20 }))).status, 'Accepted');
    await waitStatus(ctx, 20, 'InstallScheduled', { from: m });
    // The idle EVSE goes Unavailable while the install waits; no new session starts there.
    await ctx.waitFor(isCall('StatusNotification', (pl) => pl.evseId === 2 && pl.connectorStatus === 'Unavailable'), { from: m });
    await ctx.simOk('plug', 2);
    await ctx.sim('badge', 2, 'EEFF0011');
    await sleep(2000);
    assert.deepEqual(statuses(ctx, 20, m), ['Downloading', 'Downloaded', 'SignatureVerified', 'InstallScheduled']);
    const during = await ctx.status();
    assert.ok(during.evses[0].transactionId, 'the charge goes on');
    assert.equal(during.evses[1].transactionId, undefined, 'no new charge while the install waits');
    await ctx.simOk('unplug', 2);

    // A new request during the install wait replaces it (AcceptedCanceled) and waits in turn.
    const again = await ctx.call('UpdateFirmware', updateRequest(v2, server.url('/v2.img'), { requestId: 21 }));
    assert.equal(again.status, 'AcceptedCanceled');
    await waitStatus(ctx, 21, 'InstallScheduled', { from: m });
    assert.deepEqual(statuses(ctx, 20, m), ['Downloading', 'Downloaded', 'SignatureVerified', 'InstallScheduled']);
    await ctx.simOk('unplug', 1);
    await waitStatus(ctx, 21, 'Installed', { from: m, timeoutMs: 30000 });
    assert.deepEqual(statuses(ctx, 21, m).slice(3), ['InstallScheduled', 'Installing', 'InstallRebooting', 'Installed']);
    // The hold is not the operator's availability: after the reboot EVSE 2 is Available again.
    const reboot = ctx.csms.messages.findIndex((x, i) => i >= m && bootWith('2.0.0-it')(x));
    assert.ok(reboot > 0);
    await ctx.waitFor(isCall('StatusNotification', (pl) => pl.evseId === 2 && pl.connectorStatus === 'Available'), {
      from: reboot,
    });
    const ended = ctx.calls('TransactionEvent', (pl) => pl.eventType === 'Ended');
    assert.equal(ended.length, 1, 'the transaction ended before the reboot');
  } finally {
    await server.close();
  }
});

itest('a broken image from the CSMS rolls back; the previous image reports InstallationFailed with the requestId',
  { timeout: 90000 }, async (ctx) => {
    const p = await factoryStation(ctx);
    const script = path.join(ctx.dir, 'broken.sh');
    fs.writeFileSync(script, '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    const broken = await image(ctx, p, { version: '2.0.0-broken', sv: 1, payload: script });
    const server = await startDownloadServer({ files: { '/broken.img': broken.img } });
    try {
      const m = ctx.mark();
      assert.equal((await ctx.call('UpdateFirmware', updateRequest(broken, server.url('/broken.img'), { requestId: 30 }))).status, 'Accepted');
      await waitStatus(ctx, 30, 'InstallationFailed', { from: m, timeoutMs: 30000 });
      assert.deepEqual(statuses(ctx, 30, m), [
        'Downloading', 'Downloaded', 'SignatureVerified', 'Installing', 'InstallRebooting', 'InstallationFailed',
      ]);
      const boots = ctx.calls('BootNotification').slice(1);
      assert.ok(boots.length >= 1);
      assert.ok(boots.every((b) => b.payload.chargingStation.firmwareVersion === '1.0.0-it'), 'only the old image ever connected');
      const st = await status(ctx);
      assert.equal(st.slots.b.state, 'bad');
      assert.equal(st.security_floor, 1);
      const audit = await ctx.auditExport();
      assert.equal(audit.records.filter((r) => r.type === 'FirmwareRolledBack').length, 1);
    } finally {
      await server.close();
    }
  });

itest('kill -9 during a download and during an install wait: nothing half-written, the next start reports it',
  { timeout: 90000 }, async (ctx) => {
    const p = await factoryStation(ctx);
    const v2 = await image(ctx, p, { version: '2.0.0-it', sv: 1 });
    let mode = 'stall';
    const server = await startDownloadServer({ files: { '/v2.img': v2.img }, behave: () => mode });
    try {
      let m = ctx.mark();
      assert.equal((await ctx.call('UpdateFirmware', updateRequest(v2, server.url('/v2.img'), { requestId: 40 }))).status, 'Accepted');
      await waitStatus(ctx, 40, 'Downloading', { from: m });
      const partial = path.join(ctx.stateDir, 'firmware', 'slot-b', 'image.partial');
      for (let i = 0; i < 50 && !fs.existsSync(partial); i++) await sleep(100);
      assert.ok(fs.existsSync(partial), 'the download writes into the inactive slot');
      await ctx.kill9();
      m = ctx.mark();
      await ctx.startStation();
      await waitStatus(ctx, 40, 'DownloadFailed', { from: m });
      assert.deepEqual(fs.readdirSync(path.join(ctx.stateDir, 'firmware', 'slot-b')), []);
      let st = await status(ctx);
      assert.equal(st.pending, null);
      assert.equal(st.slots.a.state, 'good');

      // Staged and waiting for a charge to end: kill -9, the install is given up and reported.
      mode = 'ok';
      await ctx.simOk('plug', 1);
      await ctx.simOk('badge', 1, 'AABBCCDD');
      await ctx.waitStatus((s) => s.evses[0].transactionId, 8000, 'a transaction');
      m = ctx.mark();
      assert.equal((await ctx.call('UpdateFirmware', updateRequest(v2, server.url('/v2.img'), { requestId: 41 }))).status, 'Accepted');
      await waitStatus(ctx, 41, 'InstallScheduled', { from: m });
      await ctx.kill9();
      m = ctx.mark();
      await ctx.startStation();
      await waitStatus(ctx, 41, 'InstallationFailed', { from: m });
      st = await status(ctx);
      assert.equal(st.slots.b.state, 'empty');
      assert.equal(st.booted, 'a');
      assert.match(st.last_update.detail, /interrupted by a restart/);
    } finally {
      await server.close();
    }
  });

itest('an image that runs but is never accepted reboots after confirm_timeout_s and rolls back after its attempts',
  { timeout: 90000 }, async (ctx) => {
    // The CSMS refuses the new version (e.g. its configuration is broken): it never confirms itself.
    const refuseNew = async (client, params) => ({
      currentTime: new Date().toISOString(),
      interval: 5,
      status: params.chargingStation.firmwareVersion === '2.0.0-it' ? 'Rejected' : 'Accepted',
    });
    const p = await factoryStation(ctx, {
      toml: '[firmware]\nboot_attempts = 2\nconfirm_timeout_s = 10\n',
      csms: { handlers: { BootNotification: refuseNew } },
    });
    const v2 = await image(ctx, p, { version: '2.0.0-it', sv: 2 });
    const server = await startDownloadServer({ files: { '/v2.img': v2.img } });
    try {
      const m = ctx.mark();
      assert.equal((await ctx.call('UpdateFirmware', updateRequest(v2, server.url('/v2.img'), { requestId: 50 }))).status, 'Accepted');
      await waitStatus(ctx, 50, 'InstallationFailed', { from: m, timeoutMs: 45000 });
      const versions = ctx.calls('BootNotification').slice(1).map((b) => b.payload.chargingStation.firmwareVersion);
      assert.deepEqual(versions.filter((v) => v === '2.0.0-it').length >= 2, true, versions.join(','));
      assert.equal(versions.at(-1), '1.0.0-it');
      const st = await status(ctx);
      assert.equal(st.slots.b.state, 'bad');
      assert.match(st.last_update.detail, /not confirmed after 2 boot/);
      assert.equal(st.security_floor, 1, 'the floor did not rise');
      assert.match(ctx.stationLog(), /did not confirm itself within 10 s/);
    } finally {
      await server.close();
    }
  });

itest("the dev CSMS's operator console offers the image and sends UpdateFirmware (the README's way)",
  { timeout: 90000 }, async (ctx) => {
    const control = path.join(ctx.dir, 'csms.sock');
    const p = await factoryStation(ctx, { csms: { control } });
    assert.equal(fs.statSync(control).mode & 0o777, 0o600);
    const v2 = await image(ctx, p, { version: '2.0.0-it', sv: 1 });
    const m = ctx.mark();
    const r = await run('node', [path.join(REPO, 'tools', 'dev-csms', 'csms.js'), 'update-firmware', '--control', control,
      '--station', ctx.identity, '--image', v2.img, '--signature', v2.sig, '--cert', v2.cert]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.result.status, 'Accepted');
    assert.match(out.location, /^https:\/\/localhost:\d+\/firmware\/[0-9a-f]{32}\/fw-2\.0\.0-it\.img$/);
    await ctx.waitFor(bootWith('2.0.0-it', 'FirmwareUpdate'), { from: m, timeoutMs: 30000 });
    await waitStatus(ctx, out.requestId, 'Installed', { from: m });
    // Only offered files are served.
    const get = (u) =>
      new Promise((resolve, reject) => {
        require('node:https')
          .get(u, { ca: fs.readFileSync(p.rootCa), family: 4 }, (res) => { // the server listens on 127.0.0.1
            res.resume();
            resolve(res.statusCode);
          })
          .on('error', reject);
      });
    const base = out.location.replace(/\/firmware\/.*$/, '');
    assert.equal(await get(out.location), 200);
    assert.equal(await get(`${base}/firmware/${'0'.repeat(32)}/fw-2.0.0-it.img`), 404);
    assert.equal(await get(`${base}/firmware/../../etc/passwd`), 404);
    // Any CALL from the console.
    const bad = await run('node', [path.join(REPO, 'tools', 'dev-csms', 'csms.js'), 'call', '--control', control,
      ctx.identity, 'TriggerMessage', '{"requestedMessage":"FirmwareStatusNotification"}']);
    assert.equal(bad.code, 0, bad.stderr);
    assert.equal(JSON.parse(bad.stdout).status, 'Accepted');
  });

itest('an image above firmware.max_image_mib fails before its bytes are stored, without retries', { timeout: 60000 },
  async (ctx) => {
    const capMib = Math.ceil(fs.statSync(CG_BIN).size / 1048576) + 1;
    const p = await factoryStation(ctx, { toml: `[firmware]\nmax_image_mib = ${capMib}\n` });
    const big = path.join(ctx.dir, 'big-payload');
    fs.writeFileSync(big, Buffer.concat([fs.readFileSync(CG_BIN), Buffer.alloc(2 * 1048576, 0x5a)]), { mode: 0o755 });
    const v2 = await image(ctx, p, { version: '2.0.0-big', sv: 1, payload: big });
    const server = await startDownloadServer({ files: { '/big.img': v2.img } });
    try {
      const m = ctx.mark();
      assert.equal((await ctx.call('UpdateFirmware', updateRequest(v2, server.url('/big.img'), { requestId: 60, retries: 3, retryInterval: 1 }))).status, 'Accepted');
      await waitStatus(ctx, 60, 'DownloadFailed', { from: m });
      assert.equal(server.requests.length, 1, 'a size refusal is not retried');
      assert.match(ctx.stationLog(), /larger than the \d+ bytes allowed \(firmware.max_image_mib\)/);
      assert.deepEqual(fs.readdirSync(path.join(ctx.stateDir, 'firmware', 'slot-b')), []);
    } finally {
      await server.close();
    }
  });
