// GetLog (N01) to an upload server that does not take PUT: the station tries
// HTTP PUT first and, on 405 Method Not Allowed or 501 Not Implemented, at once
// POSTs the same file as multipart/form-data (RFC 7578): one part named "file"
// with the filename announced in GetLogResponse and the log's content type.
// The uploaded security log still verifies with `chargeguard audit verify
// --file`; a server refusing both methods ends in UploadFailure. Issue 3
// (GetLog), LOG-4, COM-9.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { itest, isCall, run, sleep, CG_BIN, startUploadServer } = require('./lib/harness');

const LSN = 'LogStatusNotification';
const lsn = (requestId, status) => isCall(LSN, (p) => p.requestId === requestId && (!status || p.status === status));
const statuses = (ctx, requestId) => ctx.calls(LSN, (p) => p.requestId === requestId).map((m) => m.payload.status);

async function auditRecords(ctx, type) {
  const ex = await ctx.auditExport();
  return ex.records.filter((r) => r.type === type);
}

// The one file part of a POST the upload server parsed.
function filePart(req) {
  assert.equal(req.method, 'POST');
  assert.equal(req.multipartError, undefined, `multipart body: ${req.multipartError}`);
  assert.match(req.headers['content-type'], /^multipart\/form-data; boundary=[0-9A-Za-z._-]{1,70}$/);
  const { parts, boundary, epilogue } = req.multipart;
  assert.equal(parts.length, 1, 'exactly one part');
  assert.equal(epilogue.toString('latin1'), '\r\n');
  assert.equal(parts[0].name, 'file');
  assert.ok(!parts[0].body.includes(boundary), 'the boundary does not occur in the content');
  assert.equal(Number(req.headers['content-length']), req.body.length);
  return parts[0];
}

itest('GetLog SecurityLog to a POST-only server: PUT refused (405), POST multipart uploaded, verifiable', { timeout: 30000 }, async (ctx) => {
  const srv = await startUploadServer({ methods: ['POST'] });
  try {
    await ctx.boot();
    const from = ctx.mark();
    const res = await ctx.call('GetLog', {
      logType: 'SecurityLog',
      requestId: 61,
      log: { remoteLocation: srv.url('/logs/upload?token=s3cret') },
    });
    assert.equal(res.status, 'Accepted');
    await ctx.waitFor(lsn(61, 'Uploaded'), { from });
    assert.deepEqual(statuses(ctx, 61), ['Uploading', 'Uploaded']);

    // One attempt: the PUT, answered 405, then at once the POST.
    assert.deepEqual(
      srv.requests.map((r) => [r.method, r.status]),
      [
        ['PUT', 405],
        ['POST', 200],
      ],
    );
    const post = srv.requests[1];
    assert.equal(post.url, '/logs/upload?token=s3cret');
    const part = filePart(post);
    assert.equal(part.filename, res.filename, 'the filename announced in GetLogResponse');
    assert.equal(part.contentType, 'application/x-ndjson');
    assert.deepEqual(post.body.subarray(0, post.body.indexOf('\r\n')).toString(), `--${post.multipart.boundary}`);
    // The content is exactly what the PUT carried.
    assert.ok(part.body.equals(srv.requests[0].body), 'POST part = PUT body');

    const lines = part.body.toString('utf8').split('\n').filter(Boolean);
    assert.ok(lines.length >= 1);
    assert.equal(JSON.parse(lines[0].split('\t')[0]).seq, 1);
    const file = path.join(ctx.dir, 'uploaded-post.log');
    fs.writeFileSync(file, part.body);
    const v = await run(CG_BIN, ['audit', 'verify', '--state-dir', ctx.stateDir, '--file', file]);
    assert.equal(v.code, 0, `audit verify --file: ${v.stderr}${v.stdout}`);

    const ex = await auditRecords(ctx, 'SecurityLogExported');
    assert.equal(ex.length, 1);
    assert.equal(ex[0].outcome, 'success');
    assert.equal(ex[0].details.attempts, 1);
    assert.match(ex[0].details.detail, /^HTTP 200 \(POST multipart\)$/);
    assert.ok(!ex[0].line.includes('s3cret'), 'no URL in the audit record');
    await ctx.assertAuditOk();
  } finally {
    await srv.close();
  }
});

itest('GetLog DiagnosticsLog to a server answering 501 to PUT: POST multipart as text/plain', { timeout: 30000 }, async (ctx) => {
  const srv = await startUploadServer({ methods: ['POST'], refuse: 501, status: 201 });
  try {
    await ctx.boot();
    const from = ctx.mark();
    const res = await ctx.call('GetLog', { logType: 'DiagnosticsLog', requestId: 62, log: { remoteLocation: srv.url('/diag') } });
    assert.equal(res.status, 'Accepted');
    await ctx.waitFor(lsn(62, 'Uploaded'), { from });
    assert.deepEqual(
      srv.requests.map((r) => [r.method, r.status]),
      [
        ['PUT', 501],
        ['POST', 201],
      ],
    );
    const part = filePart(srv.requests[1]);
    assert.equal(part.filename, res.filename);
    assert.match(part.contentType, /^text\/plain; charset=utf-8$/);
    assert.match(part.body.toString('utf8'), /BootNotification: Accepted/);
    const rec = (await auditRecords(ctx, 'SecurityLogExported')).find((r) => r.details.requestId === 62);
    assert.equal(rec.outcome, 'success');
    assert.equal(rec.details.detail, 'HTTP 201 (POST multipart)');
  } finally {
    await srv.close();
  }
});

itest('GetLog to a server refusing PUT and POST (405): UploadFailure after the retries', { timeout: 30000 }, async (ctx) => {
  const srv = await startUploadServer({ methods: [] });
  try {
    await ctx.boot();
    const from = ctx.mark();
    const res = await ctx.call('GetLog', {
      logType: 'SecurityLog',
      requestId: 63,
      retries: 1,
      retryInterval: 1,
      log: { remoteLocation: srv.url() },
    });
    assert.equal(res.status, 'Accepted');
    await ctx.waitFor(lsn(63, 'UploadFailure'), { from, timeoutMs: 10000 });
    assert.deepEqual(statuses(ctx, 63), ['Uploading', 'UploadFailure']);
    // Each attempt: PUT, then POST; nothing more after the last retry.
    assert.deepEqual(
      srv.requests.map((r) => `${r.method} ${r.status}`),
      ['PUT 405', 'POST 405', 'PUT 405', 'POST 405'],
    );
    for (const r of srv.requests.filter((q) => q.method === 'POST')) assert.equal(filePart(r).filename, res.filename);
    const [ex] = await auditRecords(ctx, 'SecurityLogExported');
    assert.equal(ex.outcome, 'failure');
    assert.equal(ex.details.attempts, 2);
    assert.equal(ex.details.result, 'UploadFailure');
    assert.equal(ex.details.detail, 'HTTP 405 (POST multipart)');
    await ctx.assertAuditOk();
  } finally {
    await srv.close();
  }
});

itest('GetLog: a server answering 500 to PUT gets no POST', { timeout: 30000 }, async (ctx) => {
  const srv = await startUploadServer({ status: 500 });
  try {
    await ctx.boot();
    const from = ctx.mark();
    const res = await ctx.call('GetLog', { logType: 'SecurityLog', requestId: 64, log: { remoteLocation: srv.url() } });
    assert.equal(res.status, 'Accepted');
    await ctx.waitFor(lsn(64, 'UploadFailure'), { from });
    assert.deepEqual(
      srv.requests.map((r) => `${r.method} ${r.status}`),
      ['PUT 500'],
    );
    const [ex] = await auditRecords(ctx, 'SecurityLogExported');
    assert.equal(ex.details.detail, 'HTTP 500 (PUT)');
  } finally {
    await srv.close();
  }
});

itest('GetLog while the POST of an upload is in flight: the POST is aborted', { timeout: 30000 }, async (ctx) => {
  const hang = await startUploadServer({ methods: ['POST'], status: 'hang' });
  const good = await startUploadServer({ methods: ['POST'] });
  try {
    let closes = 0;
    hang.events.on('socketClose', () => closes++);
    await ctx.boot();
    const from = ctx.mark();
    const call = (requestId, url) =>
      ctx.call('GetLog', { logType: 'SecurityLog', requestId, log: { remoteLocation: url } });
    assert.equal((await call(65, hang.url())).status, 'Accepted');
    await new Promise((r) => {
      const seen = () => hang.requests.some((q) => q.method === 'POST');
      if (seen()) return r();
      hang.events.on('request', () => seen() && r());
    });
    assert.equal((await call(66, good.url())).status, 'AcceptedCanceled');
    // Both connections end: the PUT's after its 405, the hanging POST's by the station.
    const deadline = Date.now() + 5000;
    while (closes < 2 && Date.now() < deadline) await sleep(20);
    assert.equal(closes, 2, 'the station dropped the hanging POST');
    await ctx.waitFor(lsn(66, 'Uploaded'), { from });
    assert.deepEqual(statuses(ctx, 65), ['Uploading', 'AcceptedCanceled']);
    assert.deepEqual(
      good.requests.map((r) => `${r.method} ${r.status}`),
      ['PUT 405', 'POST 200'],
    );
  } finally {
    await hang.close();
    await good.close();
  }
});
