// The security log as a local admin manages it (issue 3, LOG-2, LOG-3,
// AUTHZ-3): `chargeguard audit clear` is refused while the station runs and
// while records were never exported; after an export it starts a new chain
// with SecurityLogWasCleared, which reaches the CSMS after the restart; the
// export taken before still verifies. GetLog and `audit export` move the
// exported mark that full_policy = overwrite_exported relies on.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { itest, isCall, run, CG_BIN, startUploadServer } = require('./lib/harness');

const clear = (ctx, ...extra) => run(CG_BIN, ['audit', 'clear', '--state-dir', ctx.stateDir, ...extra]);
const exportedMark = (ctx) => {
  const text = fs.readFileSync(path.join(ctx.stateDir, 'audit', 'exported'), 'utf8');
  const m = /^exported (\d{20}) 0{64} [0-9a-f]{64}\n$/.exec(text);
  assert.ok(m, `exported mark: ${JSON.stringify(text)}`);
  return Number(m[1]);
};

itest('audit clear: refused while running and while unexported; then a new chain the CSMS hears of', { timeout: 30000 }, async (ctx) => {
  await ctx.boot();
  let r = await clear(ctx);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /daemon is running/);
  await ctx.stopStation();

  r = await clear(ctx);
  assert.equal(r.code, 1, 'nothing was exported yet');
  assert.match(r.stderr, /records 1\.\.\d+ were never exported; run `chargeguard audit export/);
  const before = await ctx.auditVerify();
  assert.equal(before.code, 0, 'a refused clear leaves the log alone');

  const out = path.join(ctx.dir, 'before-clear.log');
  r = await run(CG_BIN, ['audit', 'export', '--state-dir', ctx.stateDir, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const m = /exported (\d+) records \(1\.\.(\d+)\) \(chain verified\)/.exec(r.stderr);
  assert.ok(m, r.stderr);
  const last = Number(m[2]);
  assert.equal(exportedMark(ctx), last, 'the CLI export moves the exported mark');

  r = await clear(ctx);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`new chain starts with record ${last + 1} \\(SecurityLogWasCleared\\)`));
  const v = await ctx.assertAuditOk('after clear');
  assert.match(v.stdout, new RegExp(`1 records \\(${last + 1}\\.\\.${last + 1}\\)`));
  const { records } = await ctx.auditExport();
  assert.equal(records.length, 1);
  assert.equal(records[0].type, 'SecurityLogWasCleared');
  assert.equal(records[0].source.interface, 'LocalMaintenance');
  assert.match(records[0].source.principal, /^cli:/);
  assert.equal(records[0].details.recordsRemoved, last);
  assert.equal(records[0].details.unexportedRemoved, 0, 'everything was exported first');
  // The export taken before the clear still proves the old chain.
  r = await run(CG_BIN, ['audit', 'verify', '--state-dir', ctx.stateDir, '--file', out]);
  assert.equal(r.code, 0, r.stderr);

  // SecurityLogWasCleared is critical: the CSMS gets it once the station is back.
  const from = ctx.mark();
  await ctx.startStation();
  const n = await ctx.waitFor(isCall('SecurityEventNotification', (p) => p.type === 'SecurityLogWasCleared'), { from });
  assert.ok(n.payload.techInfo.includes(`"recordsRemoved":${last}`), n.payload.techInfo);
  await ctx.assertAuditOk();
});

itest('audit clear --discard-unexported clears without an export, and says so in the record', async (ctx) => {
  await ctx.boot();
  await ctx.stopStation();
  const last = Number(/last record (\d+)|\.\.(\d+)\)/.exec((await ctx.auditVerify()).stdout).slice(1).find(Boolean));
  const r = await clear(ctx, '--discard-unexported');
  assert.equal(r.code, 0, r.stderr);
  const { records } = await ctx.auditExport();
  assert.equal(records.length, 1);
  assert.equal(records[0].type, 'SecurityLogWasCleared');
  assert.equal(records[0].details.recordsRemoved, last);
  assert.equal(records[0].details.unexportedRemoved, last, 'the record says how many were never exported');
  await ctx.assertAuditOk();
});

itest('a GetLog upload of the whole security log moves the exported mark; an empty one does not', { timeout: 30000 }, async (ctx) => {
  const srv = await startUploadServer();
  try {
    await ctx.boot();
    let from = ctx.mark();
    const future = new Date(Date.now() + 3600e3).toISOString();
    // Records from an hour ahead on: none; the mark stays unset.
    let res = await ctx.call('GetLog', { logType: 'SecurityLog', requestId: 1, log: { remoteLocation: srv.url(), oldestTimestamp: future } });
    assert.equal(res.status, 'Accepted');
    await ctx.waitFor(isCall('LogStatusNotification', (p) => p.requestId === 1 && p.status === 'Uploaded'), { from });
    assert.ok(!fs.existsSync(path.join(ctx.stateDir, 'audit', 'exported')) || exportedMark(ctx) === 0);

    from = ctx.mark();
    res = await ctx.call('GetLog', { logType: 'SecurityLog', requestId: 2, log: { remoteLocation: srv.url() } });
    assert.equal(res.status, 'Accepted');
    await ctx.waitFor(isCall('LogStatusNotification', (p) => p.requestId === 2 && p.status === 'Uploaded'), { from });
    const uploaded = srv.requests[1].body.toString('utf8').trim().split('\n');
    const lastSeq = JSON.parse(uploaded[uploaded.length - 1].split('\t')[0]).seq;
    assert.equal(exportedMark(ctx), lastSeq);
  } finally {
    await srv.close();
  }
});
