// GetLog (N01) for the security log, end to end: the strict dev CSMS sends
// GetLog, the station answers with a filename, uploads the hash-chained audit
// records with HTTPS PUT to a test server (certificate from the test PKI, checked
// against the station's CA file and host name) and reports LogStatusNotification
// Uploading → Uploaded / UploadFailure. The upload verifies with
// `chargeguard audit verify --file`. Issue 3 (GetLog), digest §5, LOG-4, COM-9.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { itest, isCall, sleep, run, CG_BIN, RFC3339, startUploadServer } = require('./lib/harness');

const LSN = 'LogStatusNotification';
const lsn = (requestId, status) => isCall(LSN, (p) => p.requestId === requestId && (!status || p.status === status));

// GetLog for the security log; extra fields merged into the request / log object.
function getLog(ctx, requestId, remoteLocation, { log = {}, ...extra } = {}) {
  return ctx.call('GetLog', { logType: 'SecurityLog', requestId, log: { remoteLocation, ...log }, ...extra });
}

// The JSON bodies (before the first TAB) of an uploaded file.
function uploadedRecords(body) {
  const text = body.toString('utf8');
  assert.ok(text.endsWith('\n'), 'the upload ends with a newline');
  return text
    .split('\n')
    .filter((line) => line && !line.startsWith('#continues ')) // the signed continuation line
    .map((line) => {
      const parts = line.split('\t');
      assert.equal(parts.length, 3, 'body, hash and MAC per line');
      return JSON.parse(parts[0]);
    });
}

async function auditRecords(ctx, type) {
  const ex = await ctx.auditExport();
  return ex.records.filter((r) => r.type === type);
}

// Status values the station reported for requestId, in order.
const statuses = (ctx, requestId) => ctx.calls(LSN, (p) => p.requestId === requestId).map((m) => m.payload.status);

itest('GetLog SecurityLog: Accepted, uploaded over HTTPS, verifiable', { timeout: 30000 }, async (ctx) => {
  const srv = await startUploadServer();
  try {
    await ctx.boot();
    const from = ctx.mark();
    const res = await getLog(ctx, 7, srv.url('/logs/upload?token=s3cret'));
    assert.equal(res.status, 'Accepted');
    assert.equal(typeof res.filename, 'string');
    assert.ok(res.filename.length > 0 && res.filename.length <= 255);
    await ctx.waitFor(lsn(7, 'Uploaded'), { from });
    assert.deepEqual(statuses(ctx, 7), ['Uploading', 'Uploaded']);

    assert.equal(srv.requests.length, 1);
    const req = srv.requests[0];
    assert.equal(req.method, 'PUT');
    assert.equal(req.url, '/logs/upload?token=s3cret');
    assert.equal(req.headers['content-type'], 'application/x-ndjson');
    const recs = uploadedRecords(req.body);
    assert.ok(recs.length >= 1);
    assert.equal(recs[0].seq, 1);
    for (let i = 1; i < recs.length; i++) assert.equal(recs[i].seq, recs[i - 1].seq + 1, 'seq increasing, no gaps');
    for (const r of recs) assert.match(r.time, RFC3339);
    assert.ok(recs.some((r) => r.type === 'StartupOfTheDevice'), 'StartupOfTheDevice is exported');

    // The upload is a verifiable export of the station's chain.
    const file = path.join(ctx.dir, 'uploaded.log');
    fs.writeFileSync(file, req.body);
    const v = await run(CG_BIN, ['audit', 'verify', '--state-dir', ctx.stateDir, '--file', file]);
    assert.equal(v.code, 0, `audit verify --file: ${v.stderr}${v.stdout}`);

    // One audit record for the export: host only, never the URL (it carries a token).
    const ex = await auditRecords(ctx, 'SecurityLogExported');
    assert.equal(ex.length, 1);
    assert.equal(ex[0].outcome, 'success');
    assert.equal(ex[0].details.requestId, 7);
    assert.equal(ex[0].details.records, recs.length);
    assert.equal(ex[0].details.destination, 'localhost');
    assert.ok(!ex[0].line.includes('s3cret') && !ex[0].line.includes('/logs/upload'), 'no URL in the audit record');
    await ctx.assertAuditOk();
  } finally {
    await srv.close();
  }
});

itest('GetLog oldestTimestamp / latestTimestamp select records by time', { timeout: 30000 }, async (ctx) => {
  const srv = await startUploadServer();
  try {
    await ctx.boot();
    await sleep(1100); // records of the boot are in an earlier second than what follows
    let from = ctx.mark();
    assert.equal((await getLog(ctx, 1, srv.url())).status, 'Accepted');
    await ctx.waitFor(lsn(1, 'Uploaded'), { from });
    const [exported] = await auditRecords(ctx, 'SecurityLogExported');
    assert.ok(exported);

    // From the export record on: the boot records are left out.
    from = ctx.mark();
    assert.equal((await getLog(ctx, 2, srv.url(), { log: { oldestTimestamp: exported.time } })).status, 'Accepted');
    await ctx.waitFor(lsn(2, 'Uploaded'), { from });
    const recs = uploadedRecords(srv.requests[1].body);
    assert.ok(recs.length >= 1);
    assert.equal(recs[0].seq, exported.seq);
    assert.ok(!recs.some((r) => r.type === 'StartupOfTheDevice'));
    for (const r of recs) assert.ok(Date.parse(r.time) >= Date.parse(exported.time));
    // A filtered export starts with the station's signed continuation line and verifies.
    const text = srv.requests[1].body.toString('utf8');
    assert.match(text, /^#continues \d{20} [0-9a-f]{64} [0-9a-f]{64}\n/);
    const file = path.join(ctx.dir, 'filtered.log');
    fs.writeFileSync(file, text);
    const v = await run(CG_BIN, ['audit', 'verify', '--state-dir', ctx.stateDir, '--file', file]);
    assert.equal(v.code, 0, `audit verify --file: ${v.stderr}${v.stdout}`);
    assert.match(v.stdout, new RegExp(`records \\(${exported.seq}\\.\\.`));
    // Without its continuation line it is not a whole log, and a forged one is caught.
    fs.writeFileSync(file, text.slice(text.indexOf('\n') + 1));
    assert.equal((await run(CG_BIN, ['audit', 'verify', '--state-dir', ctx.stateDir, '--file', file])).code, 1);
    fs.writeFileSync(file, text.replace(/^#continues (\d{19})\d/, '#continues $19'));
    const forged = await run(CG_BIN, ['audit', 'verify', '--state-dir', ctx.stateDir, '--file', file]);
    assert.equal(forged.code, 1);
    assert.match(forged.stderr, /continuation line/);

    // Up to a time before the export: only the older records.
    from = ctx.mark();
    const before = new Date(Date.parse(exported.time) - 500).toISOString();
    assert.equal((await getLog(ctx, 3, srv.url(), { log: { latestTimestamp: before } })).status, 'Accepted');
    await ctx.waitFor(lsn(3, 'Uploaded'), { from });
    const older = uploadedRecords(srv.requests[2].body);
    assert.ok(older.some((r) => r.type === 'StartupOfTheDevice'));
    assert.ok(older.every((r) => r.seq < exported.seq && Date.parse(r.time) <= Date.parse(before)));
  } finally {
    await srv.close();
  }
});

itest('GetLog refuses plain http:// and unparsable locations', async (ctx) => {
  await ctx.boot();
  const from = ctx.mark();
  for (const [id, loc] of [
    [11, 'http://localhost:8080/upload'],
    [12, 'ftp://localhost/upload'],
    [13, 'not a url'],
  ]) {
    for (const logType of ['SecurityLog', 'DiagnosticsLog']) {
      const res = await ctx.call('GetLog', { logType, requestId: id, log: { remoteLocation: loc } });
      assert.equal(res.status, 'Rejected', loc);
      assert.equal(res.statusInfo?.reasonCode, 'InvalidURL', loc);
    }
  }
  await ctx.expectNone(LSN, 500, { from });
  assert.equal((await auditRecords(ctx, 'SecurityLogExported')).length, 0);
});

itest('GetLog DiagnosticsLog: the diagnostics log file is uploaded, without secrets', { timeout: 30000 }, async (ctx) => {
  const srv = await startUploadServer();
  try {
    await ctx.boot();
    await ctx.simOk('plug', 1);
    await ctx.simOk('badge', 1, 'DIAGTOKEN-42');
    await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Started'));
    const from = ctx.mark();
    const res = await ctx.call('GetLog', { logType: 'DiagnosticsLog', requestId: 31, log: { remoteLocation: srv.url('/diag') } });
    assert.equal(res.status, 'Accepted');
    assert.match(res.filename, /diagnostics/);
    await ctx.waitFor(lsn(31, 'Uploaded'), { from });
    assert.deepEqual(statuses(ctx, 31), ['Uploading', 'Uploaded']);
    const body = srv.requests[0].body.toString('utf8');
    assert.match(srv.requests[0].headers['content-type'], /^text\/plain/);
    assert.match(body, /BootNotification: Accepted/);
    assert.match(body, /transaction [0-9a-f-]{36} started/);
    for (const secret of ['DIAGTOKEN-42', ctx.password]) assert.ok(!body.includes(secret), 'secret in the diagnostics log');
    // Separate from the security log (LOG-6): no audit record lines in it.
    assert.ok(!body.includes('"prev":"'), 'audit records in the diagnostics log');
    // latestTimestamp before the station started: nothing but an empty file.
    const res2 = await ctx.call('GetLog', {
      logType: 'DiagnosticsLog',
      requestId: 32,
      log: { remoteLocation: srv.url('/diag2'), latestTimestamp: '2020-01-01T00:00:00Z' },
    });
    assert.equal(res2.status, 'Accepted');
    await ctx.waitFor(lsn(32, 'Uploaded'), { from });
    assert.equal(srv.requests[1].body.length, 0);
    const rec = (await auditRecords(ctx, 'SecurityLogExported')).find((r) => r.details.requestId === 31);
    assert.equal(rec.details.logType, 'DiagnosticsLog');
  } finally {
    await srv.close();
  }
});

itest('GetLog: a server answering 500 is retried, then UploadFailure', { timeout: 30000 }, async (ctx) => {
  const srv = await startUploadServer({ status: 500 });
  try {
    await ctx.boot();
    const from = ctx.mark();
    const res = await getLog(ctx, 21, srv.url(), { retries: 1, retryInterval: 1 });
    assert.equal(res.status, 'Accepted');
    await ctx.waitFor(lsn(21, 'UploadFailure'), { from, timeoutMs: 10000 });
    assert.deepEqual(statuses(ctx, 21), ['Uploading', 'UploadFailure']);
    assert.equal(srv.requests.length, 2, 'one try and one retry');
    const ex = await auditRecords(ctx, 'SecurityLogExported');
    assert.equal(ex.length, 1);
    assert.equal(ex[0].outcome, 'failure');
    assert.equal(ex[0].details.attempts, 2);
    await ctx.assertAuditOk();
  } finally {
    await srv.close();
  }
});

itest('GetLog: a server with a certificate from another CA gets nothing (UploadFailure)', { timeout: 30000 }, async (ctx) => {
  const srv = await startUploadServer({ pki: 'other' });
  try {
    await ctx.boot();
    const from = ctx.mark();
    assert.equal((await getLog(ctx, 31, srv.url())).status, 'Accepted');
    await ctx.waitFor(lsn(31, 'UploadFailure'), { from });
    assert.equal(srv.requests.length, 0, 'no data sent to an untrusted server');
    const [ex] = await auditRecords(ctx, 'SecurityLogExported');
    assert.equal(ex.outcome, 'failure');
    assert.match(ex.details.detail, /certificate/);
  } finally {
    await srv.close();
  }
});

itest('GetLog while one is retrying: AcceptedCanceled, the old one stops', { timeout: 30000 }, async (ctx) => {
  const bad = await startUploadServer({ status: 500 });
  const good = await startUploadServer();
  try {
    await ctx.boot();
    const from = ctx.mark();
    assert.equal((await getLog(ctx, 41, bad.url(), { retries: 5, retryInterval: 2 })).status, 'Accepted');
    await new Promise((r) => (bad.requests.length ? r() : bad.events.once('request', r)));
    const res = await getLog(ctx, 42, good.url());
    assert.equal(res.status, 'AcceptedCanceled');
    await ctx.waitFor(lsn(42, 'Uploaded'), { from });
    assert.deepEqual(statuses(ctx, 41), ['Uploading', 'AcceptedCanceled']);
    await sleep(2500); // past the old retryInterval: no further attempt
    assert.equal(bad.requests.length, 1, 'the cancelled upload was not retried');
    assert.equal(good.requests.length, 1);
  } finally {
    await bad.close();
    await good.close();
  }
});

itest('GetLog while an upload is in flight: the request is aborted', { timeout: 30000 }, async (ctx) => {
  const hang = await startUploadServer({ status: 'hang' });
  const good = await startUploadServer();
  try {
    await ctx.boot();
    const from = ctx.mark();
    assert.equal((await getLog(ctx, 51, hang.url())).status, 'Accepted');
    await new Promise((r) => (hang.requests.length ? r() : hang.events.once('request', r)));
    const closed = new Promise((r) => hang.events.once('socketClose', r));
    assert.equal((await getLog(ctx, 52, good.url())).status, 'AcceptedCanceled');
    await closed; // the station dropped the hanging request
    await ctx.waitFor(lsn(52, 'Uploaded'), { from });
    assert.deepEqual(statuses(ctx, 51), ['Uploading', 'AcceptedCanceled']);
  } finally {
    await hang.close();
    await good.close();
  }
});

itest('GetLog: a station stopped mid-upload reports UploadFailure after its restart, and records it', { timeout: 40000 }, async (ctx) => {
  const srv = await startUploadServer({ status: 'hang' });
  try {
    await ctx.boot();
    let from = ctx.mark();
    assert.equal((await getLog(ctx, 41, srv.url())).status, 'Accepted');
    await ctx.waitFor(lsn(41, 'Uploading'), { from });
    await new Promise((r) => (srv.requests.length ? r() : srv.events.once('request', r)));
    await ctx.stopStation();
    const [rec] = (await auditRecords(ctx, 'SecurityLogExported')).filter((r) => r.details.requestId === 41);
    assert.ok(rec, 'the interrupted export is in the audit log');
    assert.equal(rec.outcome, 'failure');
    assert.equal(rec.details.result, 'UploadFailure');
    assert.match(rec.details.detail, /stopped/);
    from = ctx.mark();
    await ctx.startStation();
    await ctx.waitFor(lsn(41, 'UploadFailure'), { from });
    await ctx.assertAuditOk();
  } finally {
    await srv.close();
  }
});
