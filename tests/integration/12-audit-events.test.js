// Security events end to end: each raised event is in the audit log (read back
// with `chargeguard audit export`), critical OCPP events reach the strict CSMS
// as SecurityEventNotification (queued while offline / before the boot is
// accepted, exactly once), and `chargeguard audit verify` passes at the end of
// every test. Issue 3; digest §2 (criticality), LOG-1…LOG-5, PHY-1, NET-6.
'use strict';

const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { itest, isCall, sleep, freePort, run, CG_BIN, RFC3339 } = require('./lib/harness');

const SEN = 'SecurityEventNotification';
const sen = (type) => isCall(SEN, (p) => p.type === type);

// itest + at the end: the station stopped (SIGTERM) and the whole chain verified.
function atest(name, opts, fn) {
  if (typeof opts === 'function') {
    fn = opts;
    opts = {};
  }
  return itest(name, opts, async (ctx, t) => {
    await fn(ctx, t);
    if (ctx.child) await ctx.stopStation();
    await ctx.assertAuditOk('audit verify at the end of the test');
  });
}

async function records(ctx, pred = () => true) {
  const ex = await ctx.auditExport();
  return ex.records.filter((r) => (typeof pred === 'string' ? r.type === pred : pred(r)));
}

// Polls the export until at least `count` records match.
async function waitRecords(ctx, pred, { count = 1, timeoutMs = 8000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await records(ctx, pred);
    if (found.length >= count) return found;
    if (Date.now() > deadline) {
      const all = (await ctx.auditExport()).records.map((r) => `${r.seq} ${r.type} ${JSON.stringify(r.details)}`);
      throw new Error(`timed out waiting for ${count} audit record(s); log has:\n${all.join('\n')}`);
    }
    await sleep(100);
  }
}
const waitRecord = async (ctx, pred, opts) => (await waitRecords(ctx, pred, opts))[0];

// The shape every record has; `want` checks type/outcome/critical/interface.
function checkRecord(rec, want) {
  assert.equal(typeof rec.seq, 'number');
  assert.ok(rec.seq >= 1);
  assert.match(rec.time, RFC3339, `record time ${rec.time}`);
  assert.match(rec.hash, /^[0-9a-f]{64}$/);
  assert.match(rec.mac, /^[0-9a-f]{64}$/);
  assert.match(rec.prev, /^[0-9a-f]{64}$/);
  assert.ok(rec.source && typeof rec.source === 'object', 'source');
  for (const k of ['interface', 'address', 'principal']) assert.equal(typeof rec.source[k], 'string', `source.${k}`);
  assert.ok(rec.details && typeof rec.details === 'object' && !Array.isArray(rec.details), 'details');
  if (want.type) assert.equal(rec.type, want.type);
  if (want.outcome) assert.equal(rec.outcome, want.outcome, `${rec.type} outcome`);
  if (want.critical !== undefined) assert.equal(rec.critical, want.critical, `${rec.type} critical`);
  if (want.iface) assert.equal(rec.source.interface, want.iface, `${rec.type} source.interface`);
}

// A SecurityEventNotification against the audit record it reports.
function checkNotification(msg, rec) {
  const p = msg.payload;
  assert.equal(p.type, rec.type);
  assert.match(p.timestamp, RFC3339);
  const dt = Math.abs(Date.parse(p.timestamp) - Date.parse(rec.time));
  assert.ok(dt < 2000, `notification timestamp ${p.timestamp} vs record time ${rec.time}`);
  if (p.techInfo !== undefined) {
    assert.equal(typeof p.techInfo, 'string');
    assert.ok(p.techInfo.length <= 255, `techInfo of ${p.techInfo.length} characters`);
  }
}

// Pairs notifications with the records of their type, in order, and checks each.
function checkDeliveredInOrder(notifications, recs) {
  assert.equal(notifications.length, recs.length, 'one notification per critical record, no more, no less');
  for (let i = 0; i < recs.length; i++) {
    checkNotification(notifications[i], recs[i]);
    assert.equal(notifications[i].payload.timestamp, recs[i].time, `notification ${i + 1} is record ${recs[i].seq}`);
  }
}

const idx = (ctx, m, csms = ctx.csms) => csms.messages.indexOf(m);

// ---------------------------------------------------------------------------

atest('StartupOfTheDevice: recorded at start, sent only after BootNotification is Accepted', async (ctx) => {
  let boots = 0;
  const bootReply = () => ({
    currentTime: new Date().toISOString(),
    interval: 1,
    status: ++boots <= 2 ? 'Pending' : 'Accepted',
  });
  await ctx.startCsms({ handlers: { BootNotification: async () => bootReply() } });
  await ctx.startStation();

  // In the log from the start, before the CSMS accepted anything.
  const rec = await waitRecord(ctx, 'StartupOfTheDevice', { timeoutMs: 3000 });
  checkRecord(rec, { outcome: 'success', critical: true, iface: 'Internal' });
  assert.equal(rec.seq, 1, 'the first record of a new station');
  assert.equal(rec.source.principal, 'system');
  assert.equal(rec.details.bootReason, 'PowerUp');
  assert.equal(typeof rec.details.version, 'string');

  const accepted = await ctx.waitFor(
    (m) => m.direction === 'out' && m.type === 'RESULT' && m.action === 'BootNotification' && m.payload.status === 'Accepted',
    { timeoutMs: 10000 },
  );
  const pending = ctx.csms.messages.filter(
    (m) => m.direction === 'out' && m.type === 'RESULT' && m.action === 'BootNotification' && m.payload.status === 'Pending',
  );
  assert.equal(pending.length, 2, 'two Pending answers before the Accepted one');
  const n = await ctx.waitFor(sen('StartupOfTheDevice'), { timeoutMs: 5000 });
  const firstSen = ctx.csms.messages.findIndex(isCall(SEN));
  assert.ok(firstSen > idx(ctx, accepted), 'no SecurityEventNotification before the BootNotification was Accepted');
  checkNotification(n, rec);
  await ctx.expectNone(sen('StartupOfTheDevice'), 800, { from: idx(ctx, n) + 1 });
});

atest('tamper: case open and moved are sent at once; case close is in the log only', async (ctx) => {
  await ctx.boot();
  await ctx.waitFor(sen('StartupOfTheDevice'));

  let from = ctx.mark();
  let t0 = Date.now();
  await ctx.simOk('case', 'open');
  const n1 = await ctx.waitFor(sen('TamperDetectionActivated'), { from, timeoutMs: 3000 });
  assert.ok(Date.now() - t0 < 2000, `case open reported after ${Date.now() - t0} ms`);

  from = idx(ctx, n1) + 1;
  t0 = Date.now();
  await ctx.simOk('moved');
  const n2 = await ctx.waitFor(sen('TamperDetectionActivated'), { from, timeoutMs: 3000 });
  assert.ok(Date.now() - t0 < 2000, `moved reported after ${Date.now() - t0} ms`);

  from = idx(ctx, n2) + 1;
  await ctx.simOk('case', 'close');
  await waitRecord(ctx, 'TamperCleared', { timeoutMs: 3000 });
  await ctx.expectNone(isCall(SEN), 1000, { from });

  const tampers = await records(ctx, 'TamperDetectionActivated');
  assert.equal(tampers.length, 2);
  for (const r of tampers) checkRecord(r, { outcome: 'failure', critical: true, iface: 'Hardware' });
  assert.equal(tampers[0].details.sensor, 'case');
  assert.equal(tampers[1].details.sensor, 'motion');
  checkDeliveredInOrder([n1, n2], tampers);
  assert.match(n1.payload.techInfo ?? '', /case/);
  assert.match(n2.payload.techInfo ?? '', /motion/);

  const [cleared] = await records(ctx, 'TamperCleared');
  checkRecord(cleared, { outcome: 'success', critical: false, iface: 'Hardware' });
  assert.equal(cleared.details.sensor, 'case');
  assert.ok(cleared.seq > tampers[1].seq);
  assert.equal(ctx.calls(SEN, (p) => p.type === 'TamperCleared').length, 0, 'TamperCleared is not an OCPP event');
});

atest('offline queueing: three tamper events while the CSMS is down arrive in order, once, and not again after a restart', async (ctx) => {
  const csms1 = await ctx.boot();
  await ctx.waitFor(sen('StartupOfTheDevice'));
  const port = ctx.csms.port;
  await ctx.csms.close();
  await ctx.waitStatus((s) => !s.online, 5000, 'offline');

  for (let i = 0; i < 3; i++) {
    await ctx.simOk('case', 'open');
    await sleep(30);
  }
  const st = await ctx.status();
  assert.ok(st.queued >= 3, `outbox holds the notifications (queued ${st.queued})`);
  assert.equal(ctx.calls(SEN, (p) => p.type === 'TamperDetectionActivated').length, 0);

  const csms2 = await ctx.startCsms({ port });
  assert.notEqual(csms2, csms1);
  const boot = await ctx.waitBooted({ timeoutMs: 10000 });
  const got = await ctx.waitForCount(sen('TamperDetectionActivated'), 3, { timeoutMs: 8000 });
  for (const m of got) assert.ok(idx(ctx, m) > idx(ctx, boot), 'sent after the new BootNotification');
  await ctx.expectNone(sen('TamperDetectionActivated'), 1000, { from: idx(ctx, got[2]) + 1 });
  const recs = await records(ctx, 'TamperDetectionActivated');
  assert.equal(recs.length, 3);
  checkDeliveredInOrder(got, recs);

  // A restart re-sends none of them.
  const from = ctx.mark();
  await ctx.restartStation();
  await ctx.waitBooted({ from });
  await ctx.waitFor(sen('StartupOfTheDevice'), { from });
  await ctx.expectNone(sen('TamperDetectionActivated'), 1500, { from });
  assert.equal(ctx.calls(SEN, (p) => p.type === 'TamperDetectionActivated').length, 3, 'exactly once over all connections');
  await ctx.waitStatus((s) => s.queued === 0, 5000, 'outbox empty');
});

atest('kill -9 after a tamper event while offline: delivered exactly once after the restart', async (ctx) => {
  await ctx.boot();
  await ctx.waitFor(sen('StartupOfTheDevice'));
  const port = ctx.csms.port;
  await ctx.csms.close();
  await ctx.waitStatus((s) => !s.online, 5000, 'offline');

  await ctx.simOk('case', 'open');
  await ctx.kill9();

  await ctx.startCsms({ port });
  await ctx.startStation();
  const boot = await ctx.waitBooted({ timeoutMs: 10000 });
  const n = await ctx.waitFor(sen('TamperDetectionActivated'), { timeoutMs: 8000 });
  assert.ok(idx(ctx, n) > idx(ctx, boot));
  await ctx.expectNone(sen('TamperDetectionActivated'), 1500, { from: idx(ctx, n) + 1 });
  assert.equal(ctx.calls(SEN, (p) => p.type === 'TamperDetectionActivated').length, 1);
  const recs = await records(ctx, 'TamperDetectionActivated');
  assert.equal(recs.length, 1);
  checkDeliveredInOrder([n], recs);
  // The second start is a StartupOfTheDevice of its own, sent as well.
  await ctx.waitForCount(sen('StartupOfTheDevice'), 1, { timeoutMs: 5000 });
  assert.equal((await records(ctx, 'StartupOfTheDevice')).length, 2);
});

atest('Reset Immediate: ResetOrReboot is recorded and sent, followed by a new StartupOfTheDevice', async (ctx) => {
  await ctx.boot();
  await ctx.waitFor(sen('StartupOfTheDevice'));
  const from = ctx.mark();
  assert.deepEqual(await ctx.call('Reset', { type: 'Immediate' }), { status: 'Accepted' });
  const boot = await ctx.waitBooted({ from, timeoutMs: 10000 });
  assert.equal(boot.payload.reason, 'RemoteReset');

  const n = await ctx.waitFor(sen('ResetOrReboot'), { from, timeoutMs: 8000 });
  const startup2 = await ctx.waitFor(sen('StartupOfTheDevice'), { from, timeoutMs: 8000 });
  assert.ok(idx(ctx, startup2) > idx(ctx, boot), 'the new StartupOfTheDevice after the new boot was accepted');
  await ctx.expectNone(sen('ResetOrReboot'), 1000, { from: idx(ctx, n) + 1 });

  const [reset] = await records(ctx, 'ResetOrReboot');
  checkRecord(reset, { outcome: 'success', critical: true, iface: 'Wan' });
  assert.equal(reset.details.reason, 'RemoteReset');
  checkNotification(n, reset);
  const startups = await records(ctx, 'StartupOfTheDevice');
  assert.equal(startups.length, 2);
  assert.ok(startups[1].seq > reset.seq, 'StartupOfTheDevice after ResetOrReboot');
  assert.equal(startups[1].details.bootReason, 'RemoteReset');
  checkNotification(startup2, startups[1]);
  assert.equal(ctx.calls(SEN, (p) => p.type === 'ResetOrReboot').length, 1);
  // Delivery is at least once: a notification whose result was still on the wire when
  // the station reset is sent again after the restart (same timestamp, so the CSMS can
  // tell). Two distinct StartupOfTheDevice events, no more.
  const startupsSent = new Set(ctx.calls(SEN, (p) => p.type === 'StartupOfTheDevice').map((m) => m.payload.timestamp));
  assert.equal(startupsSent.size, 2);
});

// The station's CALLERROR for id (index >= from).
const stationError = (ctx, id, from) =>
  ctx.waitFor((m) => m.direction === 'in' && m.type === 'ERROR' && m.id === id, { from });
const stationResult = (ctx, id, from) =>
  ctx.waitFor((m) => m.direction === 'in' && m.type === 'RESULT' && m.id === id, { from });

atest('InvalidMessages: a malformed CALL is recorded with its error code and action, not sent to the CSMS', async (ctx) => {
  await ctx.boot();
  await ctx.waitFor(sen('StartupOfTheDevice'));
  const from = ctx.mark();

  ctx.sendRaw('[2, "inv-enum", "ChangeAvailability", {"operationalStatus": "Sometimes"}]');
  const e1 = await stationError(ctx, 'inv-enum', from);
  ctx.sendRaw('[2, "inv-action", "MakeCoffee", {}]');
  const e2 = await stationError(ctx, 'inv-action', from);
  ctx.sendRaw('[2, "broken-json", "Heartbeat", {');
  const e3 = await stationError(ctx, '-1', from);

  const r1 = await waitRecord(ctx, (r) => r.type === 'InvalidMessages' && r.details.messageId === 'inv-enum');
  checkRecord(r1, { outcome: 'failure', critical: false, iface: 'Wan' });
  assert.equal(r1.details.error, e1.payload.errorCode);
  assert.equal(r1.details.action, 'ChangeAvailability');
  assert.equal(typeof r1.details.description, 'string');

  const r2 = await waitRecord(ctx, (r) => r.type === 'InvalidMessages' && r.details.messageId === 'inv-action');
  assert.equal(r2.details.error, e2.payload.errorCode);
  assert.equal(r2.details.error, 'NotImplemented');
  assert.equal(r2.details.action, 'MakeCoffee');

  const r3 = await waitRecord(ctx, (r) => r.type === 'InvalidMessages' && r.details.messageId === '-1');
  assert.equal(r3.details.error, e3.payload.errorCode);
  assert.equal(r3.details.error, 'RpcFrameworkError');

  // Not critical: not sent to the CSMS.
  await ctx.expectNone(sen('InvalidMessages'), 1000, { from });
  assert.equal((await records(ctx, 'InvalidMessages')).length, 3);
});

atest('InvalidMessages: a CALL whose payload is not an object is recorded with its action', async (ctx) => {
  await ctx.boot();
  const from = ctx.mark();
  ctx.sendRaw('[2, "not-object", "ClearCache", [1, 2]]');
  const e = await stationError(ctx, 'not-object', from);
  assert.equal(e.payload.errorCode, 'FormatViolation');
  const r = await waitRecord(ctx, (x) => x.type === 'InvalidMessages' && x.details.messageId === 'not-object');
  assert.equal(r.details.error, 'FormatViolation');
  assert.equal(r.details.action, 'ClearCache', `the record names the action: ${JSON.stringify(r.details)}`);
});

atest('InvalidMessages flood: 50 malformed frames give at most 10 records a minute; the station still charges', async (ctx, t) => {
  await ctx.boot();
  const from = ctx.mark();
  const frames = [];
  for (let i = 0; i < 50; i++) {
    const kind = i % 3;
    if (kind === 0) frames.push([`flood-${i}`, `[2, "flood-${i}", "ChangeAvailability", {"operationalStatus": "x${i}"}]`]);
    else if (kind === 1) frames.push([`flood-${i}`, `[2, "flood-${i}", "NoSuchAction${i}", {}]`]);
    else frames.push([`flood-${i}`, `[2, "flood-${i}", "GetVariables", {"getVariableData": ${i}}]`]);
  }
  for (const [, raw] of frames) ctx.sendRaw(raw);
  // Every frame still gets its CALLERROR.
  await ctx.waitForCount(
    (m) => m.direction === 'in' && m.type === 'ERROR' && String(m.id).startsWith('flood-'),
    50,
    { from, timeoutMs: 10000 },
  );
  const recs = await records(ctx, 'InvalidMessages');
  assert.ok(recs.length >= 1, 'the flood is recorded');
  assert.ok(recs.length <= 10, `${recs.length} InvalidMessages records within a minute (limit 10)`);
  t.diagnostic(`${recs.length} InvalidMessages records for 50 malformed frames`);
  for (const r of recs) checkRecord(r, { outcome: 'failure', critical: false, iface: 'Wan' });
  await ctx.expectNone(sen('InvalidMessages'), 300, { from });

  // Charging still works.
  const from2 = ctx.mark();
  assert.equal(
    (
      await ctx.call('RequestStartTransaction', {
        evseId: 1,
        remoteStartId: 42,
        idToken: { idToken: 'FLOOD-OK', type: 'Central' },
      })
    ).status,
    'Accepted',
  );
  await ctx.simOk('plug', 1);
  const started = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Started'), { from: from2 });
  const txId = started.payload.transactionInfo.transactionId;
  await ctx.simOk('draw', 1, 16);
  const st = await ctx.waitStatus((s) => s.evses[0].transactionId === txId && s.evses[0].powerW > 0, 8000, 'charging');
  assert.equal(st.evses[0].status, 'Occupied');
  await ctx.waitFor(isCall('TransactionEvent', (p) => p.transactionInfo.chargingState === 'Charging'), { from: from2 });
  // And the log did not grow further on its own.
  assert.ok((await records(ctx, 'InvalidMessages')).length <= 10);
});

atest('AttemptedReplayAttacks: a CALL id reused in the session is refused and recorded', async (ctx) => {
  await ctx.boot();
  await ctx.waitFor(sen('StartupOfTheDevice'));
  const from = ctx.mark();
  ctx.sendRaw('[2, "replay-1", "ClearCache", {}]');
  const ok = await stationResult(ctx, 'replay-1', from);
  assert.deepEqual(ok.payload, { status: 'Accepted' });
  const from2 = ctx.mark();
  ctx.sendRaw('[2, "replay-1", "ClearCache", {}]');
  await stationError(ctx, 'replay-1', from2);
  await ctx.expectNone((m) => m.direction === 'in' && m.type === 'RESULT' && m.id === 'replay-1', 300, { from: from2 });

  const r = await waitRecord(ctx, 'AttemptedReplayAttacks');
  checkRecord(r, { outcome: 'failure', critical: false, iface: 'Wan' });
  assert.equal(r.details.messageId, 'replay-1');
  assert.equal(r.details.action, 'ClearCache');
  await ctx.expectNone(sen('AttemptedReplayAttacks'), 800, { from });
  assert.equal((await records(ctx, 'AttemptedReplayAttacks')).length, 1);

  // A fresh id works as before.
  const from3 = ctx.mark();
  ctx.sendRaw('[2, "replay-2", "ClearCache", {}]');
  await stationResult(ctx, 'replay-2', from3);
});

atest('SetVariables: ConfigurationChanged with the value; security parameters without it; no password anywhere', async (ctx) => {
  await ctx.boot();
  await ctx.waitFor(sen('StartupOfTheDevice'));
  const from = ctx.mark();
  const set = (component, name, value) =>
    ctx.call('SetVariables', { setVariableData: [{ component: { name: component }, variable: { name }, attributeValue: value }] });

  let res = await set('OCPPCommCtrlr', 'HeartbeatInterval', '123');
  assert.equal(res.setVariableResult[0].attributeStatus, 'Accepted');
  const orgName = 'Rogue Org 7f3a9c';
  res = await set('SecurityCtrlr', 'OrganizationName', orgName);
  assert.equal(res.setVariableResult[0].attributeStatus, 'Accepted');
  const newPassword = 'NewPw-9d2e1c7b5a3f8e6d4c2b';
  ctx.csms.setPassword(ctx.identity, newPassword); // A01: the station reconnects with it
  res = await set('SecurityCtrlr', 'BasicAuthPassword', newPassword);
  const pwStatus = res.setVariableResult[0].attributeStatus;

  const hb = await waitRecord(ctx, (r) => r.type === 'ConfigurationChanged' && /HeartbeatInterval/.test(r.details.variable ?? ''));
  checkRecord(hb, { outcome: 'success', critical: false, iface: 'Wan' });
  assert.equal(hb.details.value, '123');
  assert.equal(hb.details.status, 'Accepted');

  const org = await waitRecord(
    ctx,
    (r) => r.type === 'ReconfigurationOfSecurityParameters' && /OrganizationName/.test(r.details.variable ?? ''),
  );
  checkRecord(org, { outcome: 'success', critical: false, iface: 'Wan' });
  assert.ok(!org.line.includes(orgName), `the new OrganizationName is not recorded: ${org.line}`);

  const pw = await waitRecord(
    ctx,
    (r) => r.type === 'ReconfigurationOfSecurityParameters' && /BasicAuthPassword/.test(r.details.variable ?? ''),
  );
  checkRecord(pw, { outcome: pwStatus === 'Accepted' ? 'success' : 'failure', critical: false, iface: 'Wan' });
  assert.equal(pw.details.status, pwStatus);

  const ex = await ctx.auditExport();
  assert.equal(ex.code, 0, ex.stderr);
  assert.ok(!ex.raw.includes(newPassword), 'the new password is not in the export');
  assert.ok(!ex.raw.includes(ctx.password), 'the current password is not in the export');
  assert.ok(!ctx.stationLog().includes(newPassword), 'nor in the diagnostics log');
  // Non-critical / local: nothing sent to the CSMS.
  await ctx.expectNone(
    isCall(SEN, (p) => p.type === 'ReconfigurationOfSecurityParameters' || p.type === 'ConfigurationChanged'),
    800,
    { from },
  );
});

atest('SettingSystemTime: a CSMS clock one hour ahead is recorded and sent with the adjustment', async (ctx) => {
  const ahead = () => new Date(Date.now() + 3600 * 1000).toISOString();
  await ctx.boot({
    csms: {
      handlers: {
        BootNotification: async () => ({ currentTime: ahead(), interval: 1, status: 'Accepted' }),
        Heartbeat: async () => ({ currentTime: ahead() }),
      },
    },
  });
  const n = await ctx.waitFor(sen('SettingSystemTime'), { timeoutMs: 5000 });
  const [rec] = await records(ctx, 'SettingSystemTime');
  assert.ok(rec, 'SettingSystemTime record');
  checkRecord(rec, { outcome: 'success', critical: true, iface: 'Wan' });
  assert.equal(rec.details.source, 'BootNotification');
  assert.ok(Math.abs(rec.details.adjustmentSeconds - 3600) <= 5, `adjustmentSeconds ${rec.details.adjustmentSeconds}`);
  const moved = Date.parse(rec.details.new) - Date.parse(rec.details.previous);
  assert.ok(Math.abs(moved - 3600 * 1000) < 5000, `previous ${rec.details.previous} -> new ${rec.details.new}`);
  checkNotification(n, rec);
  assert.match(n.payload.techInfo ?? '', /adjustmentSeconds/, 'techInfo carries the adjustment');

  // Heartbeats with the same (already adjusted) time: no further event.
  const hbFrom = idx(ctx, n);
  await ctx.waitForCount('Heartbeat', 2, { from: hbFrom, timeoutMs: 5000 });
  await sleep(300);
  assert.equal((await records(ctx, 'SettingSystemTime')).length, 1);
  assert.equal(ctx.calls(SEN, (p) => p.type === 'SettingSystemTime').length, 1);
});

atest('SettingSystemTime from a Heartbeat whose time jumped one hour ahead', { csms: { heartbeatInterval: 1 } }, async (ctx) => {
  let offsetMs = 0;
  await ctx.boot({
    csms: { handlers: { Heartbeat: async () => ({ currentTime: new Date(Date.now() + offsetMs).toISOString() }) } },
  });
  await ctx.waitForCount('Heartbeat', 1, { timeoutMs: 5000 });
  await sleep(200);
  assert.equal((await records(ctx, 'SettingSystemTime')).length, 0, 'no event for a clock in step');
  offsetMs = 3600 * 1000;
  const from = ctx.mark();
  const n = await ctx.waitFor(sen('SettingSystemTime'), { from, timeoutMs: 5000 });
  const [rec] = await records(ctx, 'SettingSystemTime');
  checkRecord(rec, { outcome: 'success', critical: true, iface: 'Wan' });
  assert.equal(rec.details.source, 'Heartbeat');
  assert.ok(Math.abs(rec.details.adjustmentSeconds - 3600) <= 5, `adjustmentSeconds ${rec.details.adjustmentSeconds}`);
  checkNotification(n, rec);
});

atest('SettingSystemTime: no event for an adjustment within ClockCtrlr.TimeAdjustmentReportingThreshold', async (ctx) => {
  // 10 s ahead with the default threshold (20 s): the clock is set, silently.
  const ahead = () => new Date(Date.now() + 10 * 1000).toISOString();
  await ctx.boot({
    csms: { handlers: { BootNotification: async () => ({ currentTime: ahead(), interval: 60, status: 'Accepted' }) } },
  });
  await ctx.waitFor(sen('StartupOfTheDevice'));
  await sleep(500);
  assert.equal((await records(ctx, 'SettingSystemTime')).length, 0);
  assert.equal(ctx.calls(SEN, (p) => p.type === 'SettingSystemTime').length, 0);
});

atest('SettingSystemTime: the threshold is the device-model variable (7200 s: a one-hour jump is not reported)', {
  deviceModel: { 'ClockCtrlr.TimeAdjustmentReportingThreshold': 7200 },
}, async (ctx) => {
  const ahead = () => new Date(Date.now() + 3600 * 1000).toISOString();
  await ctx.boot({
    csms: { handlers: { BootNotification: async () => ({ currentTime: ahead(), interval: 60, status: 'Accepted' }) } },
  });
  await ctx.waitFor(sen('StartupOfTheDevice'));
  await sleep(500);
  assert.equal((await records(ctx, 'SettingSystemTime')).length, 0);
});

atest('FailedToAuthenticateAtCsms: a 401 is recorded (not sent: not critical)', async (ctx) => {
  const bad = await ctx.startCsms({ password: 'not-the-password-of-this-station' });
  const rejected = [];
  bad.events.on('authRejected', (e) => rejected.push(e));
  await ctx.startStation();
  const rec = await waitRecord(ctx, 'FailedToAuthenticateAtCsms', { timeoutMs: 8000 });
  checkRecord(rec, { outcome: 'failure', critical: false, iface: 'Wan' });
  assert.equal(rec.details.httpStatus, 401);
  assert.ok(rejected.length >= 1);
  const ex = await ctx.auditExport();
  assert.ok(!ex.raw.includes(ctx.password), 'no password in the log');

  // Once in, the station reports no such event to the CSMS.
  const port = bad.port;
  await bad.close();
  await ctx.startCsms({ port });
  await ctx.waitBooted({ timeoutMs: 10000 });
  await ctx.waitFor(sen('StartupOfTheDevice'), { timeoutMs: 5000 });
  await ctx.expectNone(sen('FailedToAuthenticateAtCsms'), 800, { from: 0 });
});

atest('SIGTERM: a Shutdown record, the last one, and the chain verifies', async (ctx) => {
  await ctx.boot();
  await ctx.waitFor(sen('StartupOfTheDevice'));
  const info = await ctx.stopStation();
  assert.equal(info.code, 0, `exit ${JSON.stringify(info)}`);
  const all = (await ctx.auditExport()).records;
  const last = all[all.length - 1];
  checkRecord(last, { type: 'Shutdown', outcome: 'success', critical: true, iface: 'Internal' });
  assert.equal(last.details.signal, 'SIGTERM');
  assert.equal(ctx.calls(SEN, (p) => p.type === 'Shutdown').length, 0, 'Shutdown is a local event, not OCPP');
  await ctx.assertAuditOk();
  // The export verifies on its own too (chain and MACs, with the station's key).
  const file = path.join(ctx.dir, 'export.jsonl');
  const ex = await run(CG_BIN, ['audit', 'export', '--state-dir', ctx.stateDir, '--out', file]);
  assert.equal(ex.code, 0, ex.stderr);
  const v = await run(CG_BIN, ['audit', 'verify', '--state-dir', ctx.stateDir, '--file', file]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, new RegExp(`${all.length} records`));
});

// Pipelines "case open"/"case close" lines into the simulator socket until the
// station dies; onOk(n) is called at each "ok" answer. Resolves with the number
// of "ok" answers received and the first few other answers.
function hammer(sockPath, onOk) {
  return new Promise((resolve) => {
    let oks = 0;
    const other = [];
    let pending = '';
    let sent = 0;
    const sock = net.createConnection(sockPath);
    const batch = 'case open\ncase close\n'.repeat(100);
    const pump = () => {
      // Keep the station busy: up to ~2000 lines ahead of the answers.
      while (sock.writable && sent - oks < 2000) {
        sent += 200;
        if (!sock.write(batch)) break;
      }
    };
    sock.on('connect', pump);
    sock.on('drain', pump);
    sock.on('data', (d) => {
      pending += d.toString();
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line === 'ok') onOk(++oks);
        else if (other.length < 5) other.push(line);
      }
      pump();
    });
    sock.on('error', () => {});
    sock.on('close', () => resolve({ oks, other }));
  });
}

atest('kill -9 during heavy logging: every acknowledged record survives and the chain verifies', { timeout: 30000 }, async (ctx, t) => {
  // No CSMS: the station logs and queues offline.
  await ctx.startStation({ csmsUrl: `wss://localhost:${await freePort()}/ocpp` });
  let acked = 0;
  const KILLS = 10;
  for (let i = 0; i < KILLS; i++) {
    // SIGKILL at a random moment while records are being written: after a
    // random number of answers (20..300), or after a random time, whichever first.
    const target = 20 + Math.floor(Math.random() * 280);
    let killed = null;
    const kill = () => (killed ??= ctx.kill9());
    const done = hammer(path.join(ctx.stateDir, 'sim.sock'), (n) => n >= target && kill());
    await Promise.race([done, sleep(300 + Math.floor(Math.random() * 700))]);
    await kill();
    const { oks, other } = await done;
    assert.deepEqual(other, [], 'only "ok" answers');
    assert.ok(oks > 0, `round ${i + 1}: the station answered`);
    acked += oks;
    let v = await ctx.auditVerify();
    assert.equal(v.code, 0, `round ${i + 1}, after kill -9: ${v.stderr}`);
    await ctx.startStation();
    v = await ctx.auditVerify();
    assert.equal(v.code, 0, `round ${i + 1}, after the restart: ${v.stderr}`);
    const recs = await records(ctx, (r) => r.type === 'TamperDetectionActivated' || r.type === 'TamperCleared');
    assert.ok(recs.length >= acked, `round ${i + 1}: ${recs.length} tamper records, ${acked} acknowledged`);
    // A kill can cut off at most the answer of the one record being written.
    assert.ok(recs.length <= acked + i + 1, `round ${i + 1}: ${recs.length} tamper records, ${acked} acknowledged`);
  }
  const all = (await ctx.auditExport()).records;
  assert.equal((await records(ctx, 'StartupOfTheDevice')).length, KILLS + 1);
  for (let i = 0; i < all.length; i++) assert.equal(all[i].seq, i + 1, 'no gap, no duplicate');
  t.diagnostic(`${acked} acknowledged records over ${KILLS} kills; ${all.length} records in the log`);

  // The kills happened offline: every critical record must now reach a CSMS
  // exactly once (the forwarder's cursor moves with the outbox, A04.FR.02).
  const tampers = all.filter((r) => r.type === 'TamperDetectionActivated');
  await ctx.stopStation();
  await ctx.startCsms();
  const t0 = Date.now();
  await ctx.startStation({ csmsUrl: null });
  await ctx.waitBooted({ timeoutMs: 10000 });
  const got = await ctx.waitForCount(sen('TamperDetectionActivated'), tampers.length, { timeoutMs: 15000 });
  await ctx.waitStatus((s) => s.queued === 0, 5000, 'outbox empty');
  t.diagnostic(`${got.length} notifications delivered in ${Date.now() - t0} ms`);
  assert.equal(ctx.calls(SEN, (p) => p.type === 'TamperDetectionActivated').length, tampers.length, 'none duplicated');
  checkDeliveredInOrder(got, tampers);
  assert.equal(ctx.calls(SEN, (p) => p.type === 'StartupOfTheDevice').length, KILLS + 2);
});
