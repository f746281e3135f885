// A01 BasicAuthPassword rotation (issue 4): SetVariables(SecurityCtrlr.BasicAuthPassword)
// is checked (16-40 characters, OCPP 2.0.1 charset), sealed by the key store before
// Accepted, audited without the value; the station reconnects with it, keeps it
// across a restart (csms-password.sealed is the source of truth) and falls back
// once to the previous password when the CSMS refuses the new one.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { itest, isCall, run, sleep, CG_BIN } = require('./lib/harness');

const PW = { component: { name: 'SecurityCtrlr' }, variable: { name: 'BasicAuthPassword' } };
const setPassword = (ctx, value) => ctx.call('SetVariables', { setVariableData: [{ ...PW, attributeValue: value }] });

// The Basic-auth password of every successful handshake at this CSMS, in order.
function watchHandshakes(csms) {
  const seen = [];
  csms.events.on('client', (c) => seen.push(c.handshake.password ? c.handshake.password.toString('utf8') : undefined));
  return seen;
}

async function waitUntil(cond, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(100);
  }
}

// Every regular file under dir, recursively.
function filesUnder(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

// The plaintext is in no file of the state directory (database, WAL, keys,
// audit log, diagnostics log, sealed blobs), in the station's output, nor in
// the audit export.
async function assertNowhere(ctx, secrets) {
  const files = filesUnder(ctx.stateDir);
  assert.ok(files.some((f) => f.endsWith('csms-password.sealed')), 'the sealed password exists');
  for (const f of files) {
    const bytes = fs.readFileSync(f);
    for (const s of secrets) assert.ok(!bytes.includes(Buffer.from(s)), `a password is in ${f}`);
  }
  const log = ctx.stationLog();
  const ex = await ctx.auditExport();
  assert.equal(ex.code, 0, ex.stderr);
  for (const s of secrets) {
    assert.ok(!log.includes(s), 'a password is in the diagnostics log');
    assert.ok(!ex.raw.includes(s), 'a password is in the audit export');
  }
}

itest('A01: bad passwords are refused; a new one is sealed, used at once and after a restart', async (ctx) => {
  await ctx.startCsms();
  const handshakes = watchHandshakes(ctx.csms);
  await ctx.startStation();
  await ctx.waitBooted();
  assert.deepEqual(handshakes, [ctx.password], 'first start: the password of csms.password_file');
  const sealedFile = path.join(ctx.stateDir, 'csms-password.sealed');
  assert.equal(fs.statSync(sealedFile).mode & 0o777, 0o600);
  assert.match(fs.readFileSync(sealedFile, 'utf8'), /^[A-Za-z0-9+/]+=*\n$/, 'one line of base64');

  // Too short, too long, a character outside the OCPP 2.0.1 set: Rejected, no reconnection.
  const bad = ['short-Pw-12345', 'x'.repeat(41), 'has a space in it 0123', 'quote"in-the-password1'];
  const from = ctx.mark();
  for (const b of bad) {
    const r = await setPassword(ctx, b);
    assert.equal(r.setVariableResult[0].attributeStatus, 'Rejected', `refused: ${b.length} characters`);
    assert.equal(r.setVariableResult[0].attributeStatusInfo.reasonCode, 'InvalidValue');
    assert.ok(!JSON.stringify(r).includes(b), 'the value is not echoed');
  }
  await ctx.expectNone('BootNotification', 1500, { from });
  assert.equal((await ctx.status()).online, true, 'still connected with the old password');
  assert.equal(handshakes.length, 1);

  // A valid one: Accepted only once sealed; the station reconnects with it.
  const newPw = 'Rotated-Pw.1:x+y|z@A*b=C_d';
  ctx.csms.setPassword(ctx.identity, newPw);
  const before = ctx.mark();
  const r = await setPassword(ctx, newPw);
  assert.equal(r.setVariableResult[0].attributeStatus, 'Accepted');
  assert.ok(!JSON.stringify(r).includes(newPw));
  await ctx.waitBooted({ from: before });
  assert.equal(handshakes.at(-1), newPw, 'the CSMS saw the new password');
  await waitUntil(() => !fs.existsSync(path.join(ctx.stateDir, 'csms-password.previous.sealed')), 5000,
    'the previous password is discarded after the first good connection');

  // Write-only: GetVariables never returns it.
  const g = await ctx.call('GetVariables', { getVariableData: [PW] });
  assert.equal(g.getVariableResult[0].attributeStatus, 'Rejected');
  assert.equal(g.getVariableResult[0].attributeValue, undefined);

  // Audited without the value: the Accepted change and the confirmed connection.
  const ex = await ctx.auditExport();
  const recs = ex.records.filter((x) => x.type === 'ReconfigurationOfSecurityParameters');
  const accepted = recs.find((x) => x.details.status === 'Accepted');
  assert.ok(accepted, `no Accepted record: ${recs.map((x) => x.line).join('\n')}`);
  assert.equal(accepted.outcome.toLowerCase(), 'success');
  assert.equal(accepted.details.BasicAuthPassword, '(secret: not recorded)');
  assert.equal(recs.filter((x) => x.details.status === 'Rejected').length, bad.length, 'each refusal audited');
  assert.ok(recs.some((x) => /connected with the new password/.test(x.details.result ?? '')));
  await ctx.assertAuditOk();
  await assertNowhere(ctx, [newPw, ctx.password]);

  // Restart without csms.password_file: the sealed password is the source of truth.
  await ctx.stopStation();
  fs.rmSync(ctx.pwFile);
  const again = ctx.mark();
  await ctx.startStation();
  await ctx.waitBooted({ from: again });
  assert.equal(handshakes.at(-1), newPw, 'after a restart: the sealed (rotated) password');
  assert.match(ctx.stationLog(), /using the sealed CSMS password/);

  // A password file with the old password does not override the sealed one.
  fs.writeFileSync(ctx.pwFile, ctx.password + '\n', { mode: 0o600 });
  await ctx.stopStation();
  const third = ctx.mark();
  await ctx.startStation();
  await ctx.waitBooted({ from: third });
  assert.equal(handshakes.at(-1), newPw);
  assert.match(ctx.stationLog(), /csms.password_file differs from the sealed CSMS password/);
  await assertNowhere(ctx, [newPw, ctx.password]);
});

// The reconnection after a rotation drops no queued message: transaction
// events made while the station is between the two connections are delivered
// on the new one, each once, in order. The CSMS is away in between (closed,
// then back on the same port with the new password), so nothing depends on
// how fast the steps run.
itest('A01: transaction events queued during the password reconnection are delivered on the new connection', async (ctx) => {
  const first = await ctx.startCsms();
  await ctx.startStation();
  await ctx.waitBooted();
  // A session online: Started is delivered.
  await ctx.simOk('plug', 1);
  await ctx.simOk('badge', 1, 'ROTATE-TOKEN-1');
  const st = await ctx.waitStatus((s) => s.evses[0].transactionId, 5000, 'transaction started');
  const txId = st.evses[0].transactionId;
  await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Started'));
  await ctx.waitStatus((s) => s.queued === 0, 5000, 'Started delivered');

  const newPw = 'Queued-Msgs.Survive-0123';
  assert.equal((await setPassword(ctx, newPw)).setVariableResult[0].attributeStatus, 'Accepted');
  await ctx.waitStatus((s) => !s.online, 5000, 'disconnected for the reconnection');
  await first.close();
  // Between the two connections: charge, stop, unplug.
  await ctx.simOk('draw', 1, 16);
  await ctx.waitStatus((s) => s.evses[0].state === 'C', 3000, 'charging');
  await ctx.simOk('badge', 1, 'ROTATE-TOKEN-1');
  await ctx.waitStatus((s) => !s.evses[0].transactionId, 3000, 'transaction ended offline');
  await ctx.simOk('unplug', 1);
  const queued = (await ctx.status()).queued;
  assert.ok(queued >= 2, `Updated(Charging) and Ended are queued, got ${queued}`);

  const second = await ctx.startCsms({ port: first.port, password: newPw });
  const handshakes = watchHandshakes(second);
  await ctx.waitBooted({ timeoutMs: 15000 });
  assert.deepEqual(handshakes, [newPw], 'the new connection used the new password');
  await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Ended'));
  await ctx.waitStatus((s) => s.queued === 0, 5000, 'outbox empty');
  const events = ctx.calls('TransactionEvent', (p) => p.transactionInfo.transactionId === txId).map((m) => m.payload);
  assert.deepEqual(events.map((p) => p.seqNo), events.map((_, i) => i), 'each event once, in order');
  assert.equal(events.at(-1).eventType, 'Ended');
  assert.equal(ctx.calls('TransactionEvent', () => true, second).length, queued, 'the queued ones, on the new connection');
});

itest('A01: the CSMS refuses the new password (401): one fallback to the previous one', async (ctx) => {
  await ctx.startCsms();
  const handshakes = watchHandshakes(ctx.csms);
  const rejected = [];
  ctx.csms.events.on('authRejected', (e) => rejected.push(e));
  await ctx.startStation();
  await ctx.waitBooted();

  // The CSMS is NOT told: it still expects the old password.
  const newPw = 'Never-Known-By-The-CSMS-01';
  const from = ctx.mark();
  const r = await setPassword(ctx, newPw);
  assert.equal(r.setVariableResult[0].attributeStatus, 'Accepted');
  await ctx.waitBooted({ from, timeoutMs: 15000 });
  assert.equal(rejected.length, 1, 'one refused attempt with the new password, then the fallback');
  assert.equal(rejected[0].code, 401);
  assert.equal(handshakes.at(-1), ctx.password, 'reconnected with the previous password');
  await ctx.waitForLog(/refused the new password but accepted the previous one/);
  assert.ok(!fs.existsSync(path.join(ctx.stateDir, 'csms-password.previous.sealed')));

  const ex = await ctx.auditExport();
  const recs = ex.records.filter((x) => x.type === 'ReconfigurationOfSecurityParameters');
  assert.ok(recs.some((x) => /falling back to the previous one/.test(x.details.result ?? '')), 'the failure is audited');
  assert.ok(recs.some((x) => /reverted to the previous one/.test(x.details.result ?? '')));
  assert.ok(ex.records.some((x) => x.type === 'FailedToAuthenticateAtCsms'));
  await assertNowhere(ctx, [newPw, ctx.password]);

  // The previous password is in use again, also after a restart.
  await ctx.stopStation();
  const again = ctx.mark();
  await ctx.startStation();
  await ctx.waitBooted({ from: again });
  assert.equal(handshakes.at(-1), ctx.password);
  assert.equal(rejected.length, 1);
});

itest('no default password: without csms.password_file and no sealed one the station refuses to start', async (ctx) => {
  await ctx.startCsms();
  fs.rmSync(ctx.pwFile);
  ctx.caFile = (await require('./lib/harness').pki('main')).rootCa;
  const r = await run(CG_BIN, ctx.stationArgs(), { timeoutMs: 10000 });
  assert.equal(r.code, 1, `exit code: ${r.code}\n${r.stderr}`);
  assert.match(r.stderr, /csms\.password_file: cannot read password file/);
  assert.match(r.stderr, /there is no default/);
  assert.ok(!fs.existsSync(path.join(ctx.stateDir, 'csms-password.sealed')));
  assert.equal(ctx.csms.messages.length, 0);
});
