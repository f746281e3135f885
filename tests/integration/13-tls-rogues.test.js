// Rogue CSMS peers played by `openssl s_server`: TLS 1.1 only, only a non-AEAD
// TLS 1.2 suite, a certificate from another CA, a certificate for another host.
// For each: the station does not connect, the audit log has the TLS event
// (failure, reason in the details), and once the real CSMS takes the port over
// (or the station is pointed to it) the critical event arrives as
// SecurityEventNotification, exactly once per record. Digest §1.4 and §2;
// OCTT TC_A_05/TC_A_06.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { itest, isCall, sleep, pki, freePort, RFC3339, run, spawnProgram } = require('./lib/harness');

const SEN = 'SecurityEventNotification';
const TLS_EVENTS = ['InvalidTLSVersion', 'InvalidTLSCipherSuite', 'InvalidCsmsCertificate'];

// openssl s_server on 127.0.0.1:port with the cert/key of a dev PKI. Killed by
// the returned stop(), and in any case when the test ends.
async function startRogue(t, { port, pkiName = 'main', args = [], cert, key }) {
  const p = await pki(pkiName);
  const child = spawnProgram(
    'openssl',
    ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', cert ?? p.cert, '-key', key ?? p.key, '-naccept', '1000', ...args],
    { stdio: ['pipe', 'pipe', 'pipe'] }, // stdin stays open: s_server reads commands from it
  );
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let alive = true;
  exited.then(() => (alive = false));
  const stop = async () => {
    if (alive) child.kill('SIGKILL');
    await exited;
  };
  t.after(stop);
  // Up when it prints ACCEPT (or dies on bad arguments).
  const deadline = Date.now() + 5000;
  while (!/ACCEPT/.test(out)) {
    if (!alive) throw new Error(`openssl s_server exited: ${out}`);
    if (Date.now() > deadline) throw new Error(`openssl s_server did not start: ${out}`);
    await sleep(20);
  }
  return { child, stop, output: () => out };
}

async function auditRecords(ctx, pred) {
  const ex = await ctx.auditExport();
  return ex.records.filter(pred);
}

async function waitRecord(ctx, type, timeoutMs = 8000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await auditRecords(ctx, (r) => r.type === type);
    if (found.length) return found[0];
    if (Date.now() > deadline) {
      const all = (await ctx.auditExport()).records.map((r) => `${r.seq} ${r.type} ${JSON.stringify(r.details)}`);
      throw new Error(`timed out waiting for a ${type} record; log has:\n${all.join('\n')}\n--- station log:\n${ctx.stationLog().slice(-1500)}`);
    }
    await sleep(100);
  }
}

// The common story: rogue on `port`, station refuses it and records `type`;
// then `takeOver()` gives it the real CSMS and the records are delivered.
async function rogueScenario(ctx, t, { type, reason, rogue, station = {}, takeOver, attempts = 1 }) {
  const port = await freePort();
  const r = await startRogue(t, { port, ...rogue });
  await ctx.startStation({ csmsUrl: `wss://localhost:${port}/ocpp`, ...station });

  const rec = await waitRecord(ctx, type);
  assert.equal(rec.outcome, 'failure');
  assert.equal(rec.critical, true);
  assert.equal(rec.source.interface, 'Wan');
  assert.equal(typeof rec.details.reason, 'string');
  assert.match(rec.details.reason, reason, `reason in the details: ${rec.details.reason}`);
  // One failure gives one event, of the right type only.
  const others = await auditRecords(ctx, (x) => TLS_EVENTS.includes(x.type) && x.type !== type);
  assert.deepEqual(others.map((x) => `${x.type}: ${x.details.reason}`), [], 'misclassified TLS failures');
  // It keeps retrying (1 s apart here): one event per refused handshake.
  const deadline = Date.now() + 3000 + attempts * 1500;
  while ((await auditRecords(ctx, (x) => x.type === type)).length < attempts) {
    assert.ok(Date.now() < deadline, `fewer than ${attempts} ${type} records`);
    await sleep(100);
  }
  const st = await ctx.status();
  assert.equal(st.online, false, 'the station did not connect');
  assert.match(r.output(), /ACCEPT/);
  await r.stop();

  // The real CSMS: the queued critical event(s) arrive after the accepted boot.
  await takeOver(port);
  const boot = await ctx.waitBooted({ timeoutMs: 10000 });
  const recs = await auditRecords(ctx, (x) => x.type === type);
  assert.ok(recs.length >= 1);
  const got = await ctx.waitForCount(isCall(SEN, (p) => p.type === type), recs.length, { timeoutMs: 10000 });
  for (const m of got) assert.ok(ctx.csms.messages.indexOf(m) > ctx.csms.messages.indexOf(boot), 'after the boot');
  await ctx.expectNone(isCall(SEN, (p) => p.type === type), 1000, {
    from: ctx.csms.messages.indexOf(got[got.length - 1]) + 1,
  });
  assert.equal(ctx.calls(SEN, (p) => p.type === type).length, recs.length, 'one notification per record, none twice');
  for (let i = 0; i < recs.length; i++) {
    const p = got[i].payload;
    assert.match(p.timestamp, RFC3339);
    assert.equal(p.timestamp, recs[i].time, `notification ${i + 1} reports record ${recs[i].seq}`);
    assert.equal(typeof p.techInfo, 'string', 'techInfo carries the reason');
    assert.ok(p.techInfo.length <= 255, `techInfo of ${p.techInfo.length} characters`);
  }
  // No other TLS event was invented on the way.
  for (const other of TLS_EVENTS.filter((x) => x !== type)) {
    assert.equal(ctx.calls(SEN, (p) => p.type === other).length, 0, `no ${other}`);
  }
  t.diagnostic(`${recs.length} ${type} record(s) delivered; reason: ${recs[0].details.reason}; techInfo: ${got[0].payload.techInfo}`);
  await ctx.stopStation();
  await ctx.assertAuditOk();
  return { recs, got };
}

// The real CSMS takes the rogue's port over.
const samePort = (ctx) => async (port) => {
  await ctx.startCsms({ port });
};

itest('a CSMS offering only TLS 1.1: InvalidTLSVersion', async (ctx, t) => {
  await rogueScenario(ctx, t, {
    type: 'InvalidTLSVersion',
    reason: /version|protocol/i,
    // OpenSSL 3 needs security level 0 to speak TLS 1.1 at all.
    rogue: { args: ['-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0'] },
    attempts: 3, // three refused handshakes: three records, three notifications, in order
    takeOver: samePort(ctx),
  });
});

itest('a CSMS offering TLS up to 1.1 (-max_protocol TLSv1.1): InvalidTLSVersion', async (ctx, t) => {
  await rogueScenario(ctx, t, {
    type: 'InvalidTLSVersion',
    reason: /version|protocol/i,
    rogue: { args: ['-max_protocol', 'TLSv1.1', '-cipher', 'DEFAULT:@SECLEVEL=0'] },
    takeOver: samePort(ctx),
  });
});

itest('a CSMS offering only a non-AEAD suite (AES128-SHA, TLS 1.2): InvalidTLSCipherSuite', async (ctx, t) => {
  await rogueScenario(ctx, t, {
    type: 'InvalidTLSCipherSuite',
    reason: /cipher|handshake failure/i,
    rogue: { args: ['-cipher', 'AES128-SHA', '-max_protocol', 'TLSv1.2', '-no_tls1_3'] },
    takeOver: samePort(ctx),
  });
});

itest('a CSMS certificate from another CA: InvalidCsmsCertificate', async (ctx, t) => {
  await rogueScenario(ctx, t, {
    type: 'InvalidCsmsCertificate',
    reason: /certificate/i,
    rogue: { pkiName: 'other' },
    station: { caPki: 'main' },
    attempts: 2,
    takeOver: samePort(ctx),
  });
});

// COM-8: a server certificate for localhost issued by the CSMS root the station
// trusts, but weak: `newkey` (openssl req -newkey) and `md` (signature digest).
async function weakServerCert(ctx, { newkey, md }) {
  const p = await pki('main');
  const dir = fs.mkdtempSync(path.join(ctx.dir, 'weak-'));
  const f = (n) => path.join(dir, n);
  let r = await run('openssl', ['req', '-new', '-newkey', newkey, '-nodes', '-keyout', f('key.pem'), '-subj', '/CN=localhost', '-out', f('req.csr')]);
  assert.equal(r.code, 0, r.stderr);
  fs.writeFileSync(f('ext.cnf'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n');
  r = await run('openssl', ['x509', '-req', '-in', f('req.csr'), '-CA', p.rootCa, '-CAkey', path.join(p.dir, 'csms-root-ca.key'), '-days', '30', `-${md}`, '-set_serial', '0x1234abcd', '-extfile', f('ext.cnf'), '-out', f('cert.pem')]);
  assert.equal(r.code, 0, r.stderr);
  return { cert: f('cert.pem'), key: f('key.pem') };
}

itest('COM-8: a CSMS certificate with an RSA-1024 key (trusted CA): InvalidCsmsCertificate', async (ctx, t) => {
  const weak = await weakServerCert(ctx, { newkey: 'rsa:1024', md: 'sha256' });
  await rogueScenario(ctx, t, {
    type: 'InvalidCsmsCertificate',
    reason: /key too (small|weak)/i,
    // s_server itself must be told to use such a key (Debian's default security level 2).
    rogue: { ...weak, args: ['-cipher', 'DEFAULT:@SECLEVEL=0'] },
    takeOver: samePort(ctx),
  });
});

itest('COM-8: a CSMS certificate signed with SHA-1 (trusted CA): InvalidCsmsCertificate', async (ctx, t) => {
  const weak = await weakServerCert(ctx, { newkey: 'ec:' + (await ecParams(ctx)), md: 'sha1' });
  await rogueScenario(ctx, t, {
    type: 'InvalidCsmsCertificate',
    reason: /md too weak|digest/i,
    rogue: { ...weak, args: ['-cipher', 'DEFAULT:@SECLEVEL=0'] },
    takeOver: samePort(ctx),
  });
});

// A P-256 parameter file for `openssl req -newkey ec:FILE`.
async function ecParams(ctx) {
  const f = path.join(ctx.dir, 'p256.pem');
  const r = await run('openssl', ['ecparam', '-name', 'prime256v1', '-out', f]);
  assert.equal(r.code, 0, r.stderr);
  return f;
}

itest('a CSMS certificate for another host name (trusted CA): InvalidCsmsCertificate', async (ctx, t) => {
  // The station trusts the root of this PKI, but the server certificate names
  // csms.other.example while the station connects to localhost.
  await pki('otherhost', ['--csms-host', 'csms.other.example']);
  await rogueScenario(ctx, t, {
    type: 'InvalidCsmsCertificate',
    reason: /hostname mismatch|host/i,
    rogue: { pkiName: 'otherhost' },
    station: { caPki: 'otherhost' },
    // The operator fixes the configuration: the real CSMS and its root CA.
    takeOver: async () => {
      await ctx.stopStation();
      await ctx.startCsms();
      await ctx.startStation({ caPki: 'main', csmsUrl: null });
    },
  });
});

itest('a CSMS that demands a client certificate (TLS 1.2) is not reported as a cipher-suite problem', async (ctx, t) => {
  // Not one of the three TLS events: the suites and the version were fine; the
  // server refused the station (no client certificate in profile 2). OpenSSL
  // reports this with the same generic handshake_failure alert as "no shared
  // cipher", so the station must not take the alert alone as InvalidTLSCipherSuite.
  const port = await freePort();
  const r = await startRogue(t, { port, args: ['-Verify', '1', '-max_protocol', 'TLSv1.2'] });
  await ctx.startStation({ csmsUrl: `wss://localhost:${port}/ocpp` });
  await ctx.waitForLog(/TLS handshake/i, 8000);
  await sleep(1500); // a second attempt
  assert.match(r.output(), /peer did not return a certificate|no certificate|handshake failure/i);
  const tls = await auditRecords(ctx, (x) => TLS_EVENTS.includes(x.type));
  assert.deepEqual(
    tls.map((x) => `${x.type}: ${x.details.reason}`),
    [],
    'a refused client certificate is no InvalidTLSVersion / InvalidTLSCipherSuite / InvalidCsmsCertificate',
  );
  assert.equal((await ctx.status()).online, false);
  await ctx.stopStation();
  await ctx.assertAuditOk();
});
