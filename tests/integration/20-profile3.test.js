// Security profile 3 and the station identity (issue 4): `chargeguard pki
// provision` makes the key inside the key store (file backend, or SoftHSM2 over
// PKCS#11) and a certificate with CN = serial number, O = organization; the
// station connects with mutual TLS to the dev CSMS, which checks CN and O and
// asks for no password. A02/A03 renewal end to end: TriggerMessage →
// SignCertificate with a CSR made by a new key → the CSMS signs with the
// operator CA → CertificateSigned checked → reconnection with the new
// certificate, the old key deleted; a certificate the CSMS does not accept
// falls back to the old one; wrong chains are Rejected with
// InvalidChargingStationCertificate; the CSR is resent after
// CertSigningWaitMinimum; a certificate near its end is renewed by itself (COM-10).
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { itest, pki, run, sleep, isCall } = require('./lib/harness');

const ORG = 'Test CPO';

// The files of a dev PKI (pki dev-init) that profile 3 needs.
async function operatorPki(name = 'main') {
  const p = await pki(name);
  return {
    ...p,
    operatorCa: path.join(p.dir, 'operator-root-ca.pem'),
    operatorKey: path.join(p.dir, 'operator-root-ca.key'),
  };
}

// A SoftHSM2 token made for this test: SOFTHSM2_CONF for the station and the
// CLI, a random user PIN in a 0600 file. Returns the [key_store] TOML.
async function softhsmToken(ctx) {
  const dir = path.join(ctx.dir, 'softhsm');
  fs.mkdirSync(path.join(dir, 'tokens'), { recursive: true, mode: 0o700 });
  const conf = path.join(dir, 'softhsm2.conf');
  fs.writeFileSync(conf, `directories.tokendir = ${path.join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  ctx.env.SOFTHSM2_CONF = conf;
  const pin = crypto.randomBytes(8).toString('hex');
  const so = crypto.randomBytes(8).toString('hex');
  const label = 'cg-it';
  const r = await run('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', so, '--pin', pin], {
    env: { ...process.env, SOFTHSM2_CONF: conf },
  });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const pinFile = path.join(dir, 'pin');
  fs.writeFileSync(pinFile, pin + '\n', { mode: 0o600 });
  return { toml: `[key_store]\nbackend = "pkcs11"\ntoken_label = "${label}"\npin_file = "${pinFile}"\n`, pin, tokens: path.join(dir, 'tokens') };
}

// Writes the station's whole configuration (what `pki provision --config`
// reads; the station gets the same values on its command line as well).
function writeProfile3Config(ctx, p, extra = '') {
  ctx.clientCaFile = ctx.clientCaFile ?? p.operatorCa;
  ctx.writeConfig(
    [
      '[station]',
      `identity = "${ctx.identity}"`,
      `serial = "${ctx.serial}"`,
      `organization = "${ORG}"`,
      `state_dir = "${ctx.stateDir}"`,
      '[csms]',
      `url = "${ctx.csms.url}"`,
      'security_profile = 3',
      `ca_file = "${p.rootCa}"`,
      `client_ca_file = "${ctx.clientCaFile}"`,
      extra,
    ].join('\n') + '\n',
  );
}

// A profile-3 CSMS: client certificates must chain to the operator CA, with
// CN = the station's serial number and O = ORG; no password accepted.
async function startProfile3Csms(ctx, p, extra = {}) {
  return ctx.startCsms({
    tls: { cert: p.cert, key: p.key, ca: p.operatorCa },
    organization: ORG,
    stations: { [ctx.identity]: { serial: ctx.serial } },
    profile3Only: true,
    signer: { caCert: p.operatorCa, caKey: p.operatorKey, days: 30 },
    ...extra,
  });
}

async function provision(ctx, p, args = []) {
  const r = await ctx.cli(['pki', 'provision', '--config', ctx.configFile, '--ca-cert', p.operatorCa, '--ca-key', p.operatorKey, ...args]);
  assert.equal(r.code, 0, `pki provision failed:\n${r.stderr}\n${r.stdout}`);
  return r;
}

// The usual start: a profile-3 CSMS (csms: its extra options), the station's
// configuration (toml: extra [csms] lines), provisioning (args), the station
// at profile 3, booted.
async function bootProvisioned(ctx, p, { csms = {}, toml = '', args = [] } = {}) {
  await startProfile3Csms(ctx, p, csms);
  writeProfile3Config(ctx, p, toml);
  await provision(ctx, p, args);
  await ctx.startStation({ securityProfile: 3 });
  await bootAccepted(ctx, 0);
}

// The certificate the station's current connection presented.
function sessionCert(ctx) {
  const c = ctx.csms.clients.get(ctx.identity);
  assert.ok(c, 'the station is connected');
  assert.equal(c.session.profile, 3);
  return c.session.certificate;
}

// A station certificate for `csr` from another CA (the dev CSMS signs with its own signer only).
async function signWith(ctx, ca, csr) {
  const dir = fs.mkdtempSync(path.join(ctx.dir, 'sign-'));
  fs.writeFileSync(path.join(dir, 'req.csr'), csr);
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  const r = await run('openssl', ['x509', '-req', '-in', path.join(dir, 'req.csr'), '-CA', ca.operatorCa, '-CAkey', ca.operatorKey,
    '-days', '30', '-sha256', '-set_serial', '0x' + crypto.randomBytes(16).toString('hex'), '-extfile', path.join(dir, 'ext.cnf')]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
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

// The BootNotification was answered Accepted (and the connectors reported):
// only then does the station take the CSMS's requests (a slow CSMS under load
// may send its next CALL before its answer otherwise).
const bootAccepted = (ctx, from) => ctx.waitBooted({ from, timeoutMs: 10000 });

itest('profile 3: refuses to start without a provisioned identity, and says how to provision', async (ctx) => {
  const p = await operatorPki();
  await startProfile3Csms(ctx, p);
  writeProfile3Config(ctx, p);
  const r = await ctx.cli(['run', '--config', ctx.configFile, '--log-level', 'warn'], { timeoutMs: 10000 });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /security profile 3 needs the station's key and certificate/);
  assert.match(r.stderr, /chargeguard pki provision/);
});

itest('profile 3 (file key store): provision, mutual TLS with CN = serial and O = organization, no password', async (ctx) => {
  const p = await operatorPki();
  await startProfile3Csms(ctx, p);
  writeProfile3Config(ctx, p);
  const r = await provision(ctx, p);
  assert.match(r.stdout, new RegExp(`CN=${ctx.serial}, O=${ORG}`));
  const shown = await ctx.cli(['pki', 'show', '--config', ctx.configFile]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /key store: file/);
  assert.match(shown.stdout, new RegExp(`CN=${ctx.serial}`));
  // A second provisioning is refused: the identity is renewed over OCPP or reset.
  const again = await ctx.cli(['pki', 'provision', '--config', ctx.configFile, '--ca-cert', p.operatorCa, '--ca-key', p.operatorKey]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /provisioned already/);

  let handshakePassword = 'none seen';
  ctx.csms.events.on('client', (c) => (handshakePassword = c.handshake.password));
  await ctx.startStation({ securityProfile: 3 });
  await bootAccepted(ctx, 0);
  const cert = sessionCert(ctx);
  assert.equal(cert.subject.CN, ctx.serial);
  assert.equal(cert.subject.O, ORG);
  assert.equal(handshakePassword, undefined, 'no Basic auth at profile 3');
  const st = await ctx.call('GetVariables', {
    getVariableData: [{ component: { name: 'SecurityCtrlr' }, variable: { name: 'SecurityProfile' } }],
  });
  assert.equal(st.getVariableResult[0].attributeValue, '3');
  // The provisioning is in the security log.
  const ex = await ctx.auditExport();
  assert.ok(
    ex.records.some((r) => r.type === 'ReconfigurationOfSecurityParameters' && r.details.change === 'stationCertificate'),
    'provisioning audited',
  );
});

itest('profile 3 (PKCS#11, SoftHSM2): the private key never lands in the state directory', { timeout: 45000 }, async (ctx) => {
  const p = await operatorPki();
  const hsm = await softhsmToken(ctx);
  await startProfile3Csms(ctx, p);
  writeProfile3Config(ctx, p, hsm.toml);
  const r = await provision(ctx, p);
  assert.match(r.stderr, /in the pkcs11 key store; it cannot be exported/);
  await ctx.startStation({ securityProfile: 3 });
  await bootAccepted(ctx, 0);
  assert.equal(sessionCert(ctx).subject.CN, ctx.serial);
  // No private key, in any encoding, anywhere in the state directory.
  for (const f of filesUnder(ctx.stateDir)) {
    const text = fs.readFileSync(f);
    assert.ok(!text.includes(Buffer.from('PRIVATE KEY')), `PEM private key in ${f}`);
    assert.ok(!f.includes(`${path.sep}keys${path.sep}`), `file key store used: ${f}`);
    let parsed = null;
    try {
      parsed = crypto.createPrivateKey({ key: text, format: 'der', type: 'pkcs8' });
    } catch {
      /* not a key: good */
    }
    assert.equal(parsed, null, `DER private key in ${f}`);
  }
  // The token holds it, marked sensitive and not extractable.
  const list = await run('pkcs11-tool', ['--module', '/usr/lib/softhsm/libsofthsm2.so', '--token-label', 'cg-it', '--login', '--pin', hsm.pin, '--list-objects', '--type', 'privkey'], {
    env: { ...process.env, ...ctx.env },
  });
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /label:\s+station/);
  assert.match(list.stdout, /Access:\s+sensitive, always sensitive, never extractable/);
  // A02 with the token: the new key is made on it, the old one deleted from it.
  const before = sessionCert(ctx);
  const from = ctx.mark();
  await ctx.call('TriggerMessage', { requestedMessage: 'SignChargingStationCertificate' });
  await ctx.waitFor('SignCertificate', { from });
  await ctx.waitForCount('BootNotification', 1, { from: ctx.mark(), timeoutMs: 15000 });
  assert.notEqual(sessionCert(ctx).serialNumber, before.serialNumber);
  const after = await run('pkcs11-tool', ['--module', '/usr/lib/softhsm/libsofthsm2.so', '--token-label', 'cg-it', '--login', '--pin', hsm.pin, '--list-objects', '--type', 'privkey'], {
    env: { ...process.env, ...ctx.env },
  });
  assert.equal(after.code, 0, after.stderr);
  // The renewed station key replaced the old one; the web UI's key (issue 12) is on the token too.
  assert.deepEqual([...after.stdout.matchAll(/label:\s+(\S+)/g)].map((m) => m[1]).sort(), ['station', 'web'], after.stdout);
  assert.equal([...after.stdout.matchAll(/never extractable/g)].length, 2, 'both keys are non-extractable');
});

// The first 32-byte window of any of `files` that is a key K with
// HMAC-SHA256(K, message) equal to one of `macs` (Buffers or lowercase hex
// strings), or null. Every byte offset is tried.
function findHmacKey(files, tries) {
  for (const f of files) {
    const data = fs.readFileSync(f);
    for (let i = 0; i + 32 <= data.length; i++) {
      const k = data.subarray(i, i + 32);
      for (const { message, macs } of tries) {
        const m = crypto.createHmac('sha256', k).update(message).digest();
        if (macs.has(m.toString('hex'))) return { file: f, offset: i };
      }
    }
  }
  return null;
}

// LOG-2, COM-4, CHG-2: the audit log's MAC key and the badge-hash key are
// sealed by the token (an AES key that never leaves it): no file of the state
// directory holds either — not even as 32 raw bytes somewhere: every 32-byte
// window of every file is tried as the key of a stored MAC.
itest('PKCS#11 (SoftHSM2): the audit MAC key and the badge-hash key are in no file of the state directory', { timeout: 60000 }, async (ctx) => {
  const p = await operatorPki();
  const hsm = await softhsmToken(ctx);
  await startProfile3Csms(ctx, p);
  writeProfile3Config(ctx, p, hsm.toml);
  await provision(ctx, p);
  await ctx.startStation({ securityProfile: 3 });
  await ctx.waitBooted();
  const badge = { idToken: 'AABBCCDD11', type: 'ISO14443' };
  const sl = await ctx.call('SendLocalList', {
    versionNumber: 3, updateType: 'Full',
    localAuthorizationList: [{ idToken: badge, idTokenInfo: { status: 'Accepted' } }],
  });
  assert.equal(sl.status, 'Accepted');
  const ex = await ctx.auditExport();
  assert.equal(ex.code, 0, ex.stderr);
  assert.ok(ex.records.length >= 3);
  await ctx.stopStation();
  await ctx.assertAuditOk('audit verify with the key unsealed by the token');

  for (const plain of ['audit/audit.key', 'token.key']) assert.ok(!fs.existsSync(path.join(ctx.stateDir, plain)), plain);
  for (const sealed of ['audit/audit.key.sealed', 'token.key.sealed']) assert.ok(fs.existsSync(path.join(ctx.stateDir, sealed)), sealed);

  // What the keys computed: the audit records' MACs over their hashes, and the
  // badge's keyed hash stored in the local list (hex in station.db).
  const auditTry = { message: null, macs: new Set() };
  const rec = ex.records[0];
  auditTry.message = Buffer.from(rec.hash, 'hex');
  auditTry.macs.add(rec.mac);
  const dbHex = new Set(fs.readFileSync(path.join(ctx.stateDir, 'station.db')).toString('latin1').match(/[0-9a-f]{64}/g) ?? []);
  assert.ok(dbHex.size >= 1, 'the keyed hash of the badge is in station.db');
  const badgeTry = { message: Buffer.from(`${badge.type}\x1f${badge.idToken}`, 'latin1'), macs: dbHex };
  const files = filesUnder(ctx.stateDir);

  // The search finds a key that is there (the same search over a file that holds one).
  const planted = crypto.randomBytes(32);
  const control = path.join(ctx.dir, 'control.bin');
  fs.writeFileSync(control, Buffer.concat([crypto.randomBytes(1001), planted, crypto.randomBytes(77)]));
  const plantedMac = crypto.createHmac('sha256', planted).update(badgeTry.message).digest('hex');
  assert.deepEqual(findHmacKey([control], [{ message: badgeTry.message, macs: new Set([plantedMac]) }]), { file: control, offset: 1001 });

  assert.equal(findHmacKey(files, [auditTry, badgeTry]), null);
});

itest('A02: TriggerMessage(SignChargingStationCertificate) renews the certificate with a new key, end to end', { timeout: 45000 }, async (ctx) => {
  const p = await operatorPki();
  await bootProvisioned(ctx, p);
  const before = sessionCert(ctx);
  const keyBefore = fs.readFileSync(path.join(ctx.stateDir, 'identity', 'station.pem'), 'utf8');

  const from = ctx.mark();
  const res = await ctx.call('TriggerMessage', { requestedMessage: 'SignChargingStationCertificate' });
  assert.equal(res.status, 'Accepted');
  const sign = await ctx.waitFor('SignCertificate', { from });
  assert.equal(sign.payload.certificateType, 'ChargingStationCertificate');
  const csr = sign.payload.csr;
  assert.match(csr, /^-----BEGIN CERTIFICATE REQUEST-----/);
  const csrFile = path.join(ctx.dir, 'renewal.csr');
  fs.writeFileSync(csrFile, csr);
  const subj = await run('openssl', ['req', '-in', csrFile, '-noout', '-verify', '-subject', '-nameopt', 'RFC2253']);
  assert.equal(subj.code, 0, subj.stderr);
  assert.match(subj.stdout, new RegExp(`subject=O=${ORG},CN=${ctx.serial}|subject=CN=${ctx.serial},O=${ORG}`));
  // The dev CSMS signs and sends CertificateSigned; the station accepts …
  const signed = await ctx.waitFor((m) => m.direction === 'out' && m.type === 'CALL' && m.action === 'CertificateSigned', { from });
  const answer = await ctx.stationReply(signed.id, { from });
  assert.equal(answer.payload.status, 'Accepted', JSON.stringify(answer.payload));
  // … reconnects with the new certificate and boots again.
  await ctx.waitFor((m) => m.direction === 'in' && m.type === 'CALL' && m.action === 'BootNotification', { from: ctx.csms.messages.indexOf(answer), timeoutMs: 10000 });
  const after = sessionCert(ctx);
  assert.notEqual(after.serialNumber, before.serialNumber, 'a new certificate');
  assert.equal(after.subject.CN, ctx.serial);
  assert.equal(ctx.csms.issued.at(-1).serial.toLowerCase(), after.serialNumber.toLowerCase());
  // The new key replaced the old one: one key, one chain file.
  assert.notEqual(fs.readFileSync(path.join(ctx.stateDir, 'identity', 'station.pem'), 'utf8'), keyBefore);
  assert.ok(!fs.existsSync(path.join(ctx.stateDir, 'identity', 'station.next.pem')));
  assert.deepEqual(fs.readdirSync(path.join(ctx.stateDir, 'keys')).filter((f) => f.startsWith('station')).sort(), ['station.pem']);
  // A restart keeps the renewed identity.
  await ctx.stopStation();
  const from2 = ctx.mark();
  await ctx.startStation({ securityProfile: 3 });
  await bootAccepted(ctx, from2);
  assert.equal(sessionCert(ctx).serialNumber, after.serialNumber);
  const ex = await ctx.auditExport();
  const results = ex.records.filter((r) => r.details.change === 'stationCertificate').map((r) => r.details.result);
  assert.ok(results.includes('renewal started; new key generated'), results.join(' | '));
  assert.ok(results.includes('connected with the renewed certificate; old key deleted'), results.join(' | '));
});

itest('A02: a CertificateSigned chain that is wrong is Rejected with InvalidChargingStationCertificate', { timeout: 45000 }, async (ctx) => {
  const p = await operatorPki();
  const other = await operatorPki('other');
  await bootProvisioned(ctx, p, { csms: { signCertificate: 'accept-only' } });
  const before = sessionCert(ctx);
  const from = ctx.mark();
  await ctx.call('TriggerMessage', { requestedMessage: 'SignChargingStationCertificate' });
  const sign = await ctx.waitFor('SignCertificate', { from });
  const tryChain = async (pem, why) => {
    const r = await ctx.call('CertificateSigned', { certificateChain: pem, certificateType: 'ChargingStationCertificate' });
    assert.equal(r.status, 'Rejected', why);
    return r;
  };
  // Signed by a CA the station does not know.
  const foreign = await signWith(ctx, other, sign.payload.csr);
  let r = await tryChain(foreign, 'foreign CA');
  assert.match(r.statusInfo.additionalInfo, /issuer|chain/i);
  // A certificate for another key (the operator CA signs the old CSR of another station).
  const otherCsr = await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', '/dev/null', '-subj', `/CN=${ctx.serial}/O=${ORG}`], {});
  assert.equal(otherCsr.code, 0, otherCsr.stderr);
  r = await tryChain(await ctx.csms.signCsr(ctx.identity, otherCsr.stdout), 'other key');
  assert.match(r.statusInfo.additionalInfo, /not for the key pair/);
  // Garbage.
  r = await tryChain('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'garbage');
  // One InvalidChargingStationCertificate per refusal (the boot's own StartupOfTheDevice
  // may still be on its way: other types are not counted).
  const invalid = isCall('SecurityEventNotification', (pl) => pl.type === 'InvalidChargingStationCertificate');
  await ctx.waitForCount(invalid, 3, { from, timeoutMs: 8000 });
  await sleep(300);
  assert.equal(ctx.csms.messages.slice(from).filter(invalid).length, 3);
  // Still connected with the old certificate; the right one is still accepted afterwards.
  assert.equal(sessionCert(ctx).serialNumber, before.serialNumber);
  const good = await ctx.csms.signCsr(ctx.identity, sign.payload.csr);
  const ok = await ctx.call('CertificateSigned', { certificateChain: good, certificateType: 'ChargingStationCertificate' });
  assert.equal(ok.status, 'Accepted');
  const from2 = ctx.mark();
  await ctx.waitFor('BootNotification', { from: from2, timeoutMs: 10000 });
  assert.notEqual(sessionCert(ctx).serialNumber, before.serialNumber);
});

itest('A02: a renewed certificate the CSMS refuses is discarded; the station goes back to the old one', { timeout: 45000 }, async (ctx) => {
  const p = await operatorPki();
  const other = await operatorPki('other');
  // The station trusts both operator CAs for its own certificate; the CSMS only the first.
  const both = path.join(ctx.dir, 'operator-cas.pem');
  fs.writeFileSync(both, fs.readFileSync(p.operatorCa, 'utf8') + fs.readFileSync(other.operatorCa, 'utf8'));
  ctx.clientCaFile = both;
  await bootProvisioned(ctx, p, { csms: { signCertificate: 'accept-only' } });
  const before = sessionCert(ctx);
  const from = ctx.mark();
  await ctx.call('TriggerMessage', { requestedMessage: 'SignChargingStationCertificate' });
  const sign = await ctx.waitFor('SignCertificate', { from });
  const pem = await signWith(ctx, other, sign.payload.csr);
  const res = await ctx.call('CertificateSigned', { certificateChain: pem, certificateType: 'ChargingStationCertificate' });
  assert.equal(res.status, 'Accepted');
  // The CSMS refuses it (401); the station discards it and connects with the old one.
  const rejected = new Promise((resolve) => ctx.csms.events.once('authRejected', resolve));
  await rejected;
  const from2 = ctx.mark();
  await ctx.waitFor('BootNotification', { from: from2, timeoutMs: 10000 });
  assert.equal(sessionCert(ctx).serialNumber, before.serialNumber);
  assert.ok(!fs.existsSync(path.join(ctx.stateDir, 'identity', 'station.next.pem')));
  const ex = await ctx.auditExport();
  assert.ok(
    ex.records.some((r) => r.details.result === 'renewed certificate discarded; using the previous one' && r.outcome === 'failure'),
    'the fallback is audited',
  );
});

itest(
  'A02: without CertificateSigned the CSR is sent again after CertSigningWaitMinimum, CertSigningRepeatTimes times',
  { timeout: 45000, deviceModel: { 'SecurityCtrlr.CertSigningWaitMinimum': 1, 'SecurityCtrlr.CertSigningRepeatTimes': 2 } },
  async (ctx) => {
    const p = await operatorPki();
    await bootProvisioned(ctx, p, { csms: { signCertificate: 'accept-only' } });
    const from = ctx.mark();
    await ctx.call('TriggerMessage', { requestedMessage: 'SignChargingStationCertificate' });
    // 1 s, then 2 s, then 4 s: three requests with the same CSR, then it gives up.
    await ctx.waitFor('SignCertificate', { from });
    assert.ok(fs.existsSync(path.join(ctx.stateDir, 'keys', 'station.next.pem')), 'the renewal key exists meanwhile');
    const reqs = await ctx.waitForCount('SignCertificate', 3, { from, timeoutMs: 10000 });
    assert.ok(reqs.every((m) => m.payload.csr === reqs[0].payload.csr));
    await ctx.expectNone('SignCertificate', 5000, { from: ctx.mark() });
    const ex = await ctx.auditExport();
    assert.ok(ex.records.some((r) => r.details.result === 'renewal failed' && /no CertificateSigned/.test(r.details.reason)));
    assert.ok(!fs.existsSync(path.join(ctx.stateDir, 'keys', 'station.next.pem')), 'the unused key is deleted');
    assert.ok(!fs.existsSync(path.join(ctx.stateDir, 'identity', 'station.next.csr')), 'and its request');
  },
);

itest('A02: a restart while the CSMS signs does not lose the renewal: same key and request, the late certificate is accepted', { timeout: 45000 }, async (ctx) => {
  const p = await operatorPki();
  await bootProvisioned(ctx, p, { csms: { signCertificate: 'accept-only' } });
  const before = sessionCert(ctx);
  let from = ctx.mark();
  await ctx.call('TriggerMessage', { requestedMessage: 'SignChargingStationCertificate' });
  const sign = await ctx.waitFor('SignCertificate', { from });
  const csrFile = path.join(ctx.stateDir, 'identity', 'station.next.csr');
  assert.equal(fs.readFileSync(csrFile, 'utf8'), sign.payload.csr, 'the request is kept next to the chains');

  await ctx.stopStation();
  from = ctx.mark();
  await ctx.startStation({ securityProfile: 3 });
  await bootAccepted(ctx, from);
  // Sent again after the boot, the same request (same key).
  const again = await ctx.waitFor('SignCertificate', { from });
  assert.equal(again.payload.csr, sign.payload.csr);
  // The certificate for the first request, signed meanwhile, is accepted and used.
  const res = await ctx.call('CertificateSigned', {
    certificateChain: await ctx.csms.signCsr(ctx.identity, sign.payload.csr),
    certificateType: 'ChargingStationCertificate',
  });
  assert.equal(res.status, 'Accepted', JSON.stringify(res));
  from = ctx.mark();
  await ctx.waitFor('BootNotification', { from, timeoutMs: 10000 });
  assert.notEqual(sessionCert(ctx).serialNumber, before.serialNumber, 'connected with the renewed certificate');
  assert.ok(!fs.existsSync(csrFile), 'the request is gone with the promotion');
  const ex = await ctx.auditExport();
  assert.ok(ex.records.some((r) => r.details.result === 'renewal resumed after a restart'));
});

itest('COM-10: a certificate close to its end is renewed without being asked', { timeout: 45000 }, async (ctx) => {
  const p = await operatorPki();
  await bootProvisioned(ctx, p, { toml: 'certificate_renewal_days = 30', args: ['--days', '10'] });
  const before = sessionCert(ctx);
  const sign = await ctx.waitFor('SignCertificate', { timeoutMs: 20000 });
  assert.equal(sign.payload.certificateType, 'ChargingStationCertificate');
  await ctx.waitForCount('BootNotification', 2, { timeoutMs: 15000 });
  await sleep(200);
  assert.notEqual(sessionCert(ctx).serialNumber, before.serialNumber);
});

itest('pki provision --csr-out and pki install-cert: the manufacturing flow, with its checks', async (ctx) => {
  const p = await operatorPki();
  const other = await operatorPki('other');
  await startProfile3Csms(ctx, p);
  writeProfile3Config(ctx, p);
  const csrFile = path.join(ctx.dir, 'station.csr');
  const r = await ctx.cli(['pki', 'provision', '--config', ctx.configFile, '--csr-out', csrFile]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /pki install-cert/);
  const csr = fs.readFileSync(csrFile, 'utf8');
  const install = async (pem) => {
    const f = path.join(ctx.dir, `chain-${crypto.randomBytes(3).toString('hex')}.pem`);
    fs.writeFileSync(f, pem);
    return ctx.cli(['pki', 'install-cert', '--config', ctx.configFile, '--cert', f]);
  };
  let res = await install(await signWith(ctx, other, csr));
  assert.equal(res.code, 1);
  assert.match(res.stderr, /not acceptable/);
  res = await install('not a certificate\n');
  assert.equal(res.code, 1);
  assert.match(res.stderr, /certificate chain/);
  res = await install(await ctx.csms.signCsr(ctx.identity, csr));
  assert.equal(res.code, 0, res.stderr);
  await ctx.startStation({ securityProfile: 3 });
  await bootAccepted(ctx, 0);
  assert.equal(sessionCert(ctx).subject.CN, ctx.serial);
});
