#!/usr/bin/env node
// Smoke test of the development CSMS against a real ocpp-rpc client over TLS.
// Uses only the openssl CLI and node; run: node tools/dev-csms/selftest.js
// Exits non-zero on failure; removes its temporary files.
'use strict';

const assert = require('assert/strict');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const tls = require('tls');
const { execFileSync, spawn } = require('child_process');
const { RPCClient, createValidator } = require('ocpp-rpc');
const { startCsms } = require('./csms');

// The dev CSMS listens on 127.0.0.1 and names itself wss://localhost:…; where
// /etc/hosts lists ::1 for localhost too (a stock Debian), Node's clients would
// try ::1 first and not fall back. The station (Asio) tries every address.
require('dns').setDefaultResultOrder('ipv4first');

const PW1 = 'CS001-dev-password-0123456789';
const ORG = 'ChargeGuard Ops, Inc.'; // the operator (O); the comma tests name escaping
const SERIAL10 = 'SN-0010'; // serial number (CN) of station CS010
const PW2 = 'CS002-dev-password-abcdefghij';
const FILE_PW = 'shared-file-password-XYZ-42';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dev-csms-selftest-'));
const f = (name) => path.join(tmp, name);
const validator = createValidator('ocpp2.0.1', require('ocpp-rpc/lib/schemas/ocpp2_0_1.json'));
const started = [];
const clients = [];
let passed = 0;

function openssl(...args) {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function makePki() {
  fs.writeFileSync(
    f('openssl.cnf'),
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      '[dn]',
      'CN = unused',
      '[ca_ext]',
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier = hash',
      '[server_ext]',
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'extendedKeyUsage = serverAuth',
      'subjectAltName = DNS:localhost,IP:127.0.0.1',
      '[client_ext]',
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'extendedKeyUsage = clientAuth',
      '',
    ].join('\n'),
  );
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  for (const [ca, subj] of [['ca', '/O=selftest/CN=dev-csms selftest CA'], ['ca2', '/O=selftest/CN=some other CA']]) {
    openssl('req', '-x509', '-config', f('openssl.cnf'), '-extensions', 'ca_ext', ...ec,
      '-keyout', f(`${ca}.key`), '-out', f(`${ca}.pem`), '-days', '2', '-subj', subj);
  }
  const leaf = (name, cn, ext, { o = 'selftest', ca = 'ca' } = {}) => {
    openssl('req', '-new', '-config', f('openssl.cnf'), ...ec, '-keyout', f(`${name}.key`),
      '-out', f(`${name}.csr`), '-subj', `/O=${o}/CN=${cn}`);
    openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f(`${ca}.pem`), '-CAkey', f(`${ca}.key`),
      '-set_serial', '0x' + crypto.randomBytes(16).toString('hex').replace(/^[89a-f]/, '1'),
      '-days', '2', '-extfile', f('openssl.cnf'), '-extensions', ext, '-out', f(`${name}.pem`));
  };
  leaf('server', 'localhost', 'server_ext');
  leaf('cs003', 'CS003', 'client_ext');
  leaf('wrongcn', 'SOMEONE-ELSE', 'client_ext');
  // profile 3 with organization ORG and stations {CS010: {serial: SERIAL10}}
  leaf('cs010', SERIAL10, 'client_ext', { o: ORG }); // right CN (serial) and O
  leaf('cs010-wrongo', SERIAL10, 'client_ext', { o: 'Someone Else Ltd' });
  leaf('cs010-idcn', 'CS010', 'client_ext', { o: ORG }); // CN = identity, but CS010 has a serial
  leaf('cs010-foreign', SERIAL10, 'client_ext', { o: ORG, ca: 'ca2' }); // untrusted CA
  leaf('cs011', 'CS011', 'client_ext', { o: ORG }); // unlisted station: CN = identity
  fs.writeFileSync(f('password.txt'), FILE_PW + '\n', { mode: 0o600 });
}

// A new P-256 key and a CSR for `subj` (the station side of A02).
function makeCsr(name, subj) {
  openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-utf8',
    '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', subj);
  return fs.readFileSync(f(`${name}.csr`), 'utf8');
}

// The same CSR with one bit of its signature flipped.
function tamperCsr(pem) {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  der[der.length - 1] ^= 0x01;
  const b64 = der.toString('base64').match(/.{1,64}/g).join('\n');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64}\n-----END CERTIFICATE REQUEST-----\n`;
}

// {CN, O, ...} of a crypto.X509Certificate, unescaped (#subject escapes ',' as '\,')
const subjectOf = (x) => ({ ...x.toLegacyObject().subject });

const pemCerts = (text) => text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function test(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    console.log(`FAIL ${name}`);
    throw err;
  }
}

function newClient(csms, identity, extra = {}) {
  const cli = new RPCClient({
    endpoint: csms.url,
    identity,
    protocols: ['ocpp2.0.1'],
    strictMode: true,
    reconnect: false,
    ...extra,
    wsOpts: { ca: fs.readFileSync(f('ca.pem')), ...(extra.wsOpts ?? {}) },
  });
  clients.push(cli);
  return cli;
}

// A client that presents the client certificate `name` (.pem/.key files).
function certClient(csms, identity, name, extra = {}) {
  const wsOpts = { ca: fs.readFileSync(f('ca.pem')), cert: fs.readFileSync(f(`${name}.pem`)), key: fs.readFileSync(f(`${name}.key`)) };
  return newClient(csms, identity, { ...extra, wsOpts });
}

async function expectConnectFailure(cli, check) {
  let err = null;
  try {
    await cli.connect();
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'connection unexpectedly succeeded');
  if (check) check(err);
}

const iso = () => new Date().toISOString();
const TOKEN = { idToken: 'TOKEN-OK-1', type: 'ISO14443' };

// A schema-valid request for every message a station sends in OCPP 2.0.1.
const STATION_REQUESTS = {
  BootNotification: { reason: 'PowerUp', chargingStation: { model: 'CG-1', vendorName: 'chargeguard' } },
  Heartbeat: {},
  StatusNotification: { timestamp: iso(), connectorStatus: 'Available', evseId: 1, connectorId: 1 },
  Authorize: { idToken: TOKEN },
  TransactionEvent: {
    eventType: 'Started', timestamp: iso(), triggerReason: 'Authorized', seqNo: 0,
    transactionInfo: { transactionId: 'tx-1' }, idToken: TOKEN,
  },
  MeterValues: { evseId: 1, meterValue: [{ timestamp: iso(), sampledValue: [{ value: 1.5 }] }] },
  NotifyReport: { requestId: 1, generatedAt: iso(), seqNo: 0 },
  SecurityEventNotification: { type: 'StartupOfTheDevice', timestamp: iso() },
  NotifyEvent: {
    generatedAt: iso(), seqNo: 0,
    eventData: [{
      eventId: 1, timestamp: iso(), trigger: 'Delta', actualValue: 'true',
      eventNotificationType: 'HardWiredNotification', component: { name: 'EVSE' }, variable: { name: 'Available' },
    }],
  },
  LogStatusNotification: { status: 'Idle' },
  FirmwareStatusNotification: { status: 'Idle' },
  SignCertificate: { csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----' },
  DataTransfer: { vendorId: 'com.example' },
  ClearedChargingLimit: { chargingLimitSource: 'EMS' },
  NotifyChargingLimit: { chargingLimit: { chargingLimitSource: 'EMS' } },
  NotifyCustomerInformation: { data: 'none', seqNo: 0, generatedAt: iso(), requestId: 1 },
  NotifyDisplayMessages: { requestId: 1 },
  NotifyMonitoringReport: { requestId: 1, seqNo: 0, generatedAt: iso() },
  PublishFirmwareStatusNotification: { status: 'Idle' },
  ReportChargingProfiles: {
    requestId: 1, chargingLimitSource: 'CSO', evseId: 1,
    chargingProfile: [{
      id: 1, stackLevel: 0, chargingProfilePurpose: 'TxDefaultProfile', chargingProfileKind: 'Absolute',
      chargingSchedule: [{ id: 1, chargingRateUnit: 'A', chargingSchedulePeriod: [{ startPeriod: 0, limit: 16 }] }],
    }],
  },
  ReservationStatusUpdate: { reservationId: 1, reservationUpdateStatus: 'Expired' },
  NotifyEVChargingNeeds: { evseId: 1, chargingNeeds: { requestedEnergyTransfer: 'DC' } },
  NotifyEVChargingSchedule: {
    timeBase: iso(), evseId: 1,
    chargingSchedule: { id: 1, chargingRateUnit: 'W', chargingSchedulePeriod: [{ startPeriod: 0, limit: 1000 }] },
  },
  GetCertificateStatus: {
    ocspRequestData: {
      hashAlgorithm: 'SHA256', issuerNameHash: 'ab', issuerKeyHash: 'cd', serialNumber: '01',
      responderURL: 'http://ocsp.example',
    },
  },
  Get15118EVCertificate: { iso15118SchemaVersion: 'urn:iso:15118:2:2013:MsgDef', action: 'Install', exiRequest: 'AAAA' },
};

// ---- security profile 3 (O and CN checks) and A02/A03 certificate signing ----

async function profile3Tests() {
  const caX = new crypto.X509Certificate(fs.readFileSync(f('ca.pem')));
  // os.tmpdir() of the CSMS's signing directories, to check that they are removed
  const signTmp = f('signtmp');
  fs.mkdirSync(signTmp);
  const savedTmpdir = process.env.TMPDIR;
  process.env.TMPDIR = signTmp;
  const logLines = [];
  const csms = await startCsms({
    tls: { cert: f('server.pem'), key: f('server.key'), ca: f('ca.pem') },
    passwords: { CS010: PW1, CS011: PW2 },
    organization: ORG,
    stations: new Map([['CS010', { serial: SERIAL10 }]]),
    profile3Only: true,
    signer: { caCert: f('ca.pem'), caKey: f('ca.key'), days: 30 },
    log: (l) => logLines.push(l),
  });
  started.push(csms);
  const authRejected = [];
  csms.events.on('authRejected', (e) => authRejected.push(e));
  const lastReason = () => authRejected[authRejected.length - 1]?.reason ?? '';
  const is401 = (e) => assert.equal(e.code, 401, String(e));

  await test('profile 3: O = organization and CN = station serial connect; session.certificate', async () => {
    const cli = certClient(csms, 'CS010', 'cs010');
    await cli.connect();
    const session = csms.clients.get('CS010').session;
    assert.equal(session.profile, 3);
    const x = new crypto.X509Certificate(fs.readFileSync(f('cs010.pem')));
    assert.deepEqual(session.certificate, {
      subject: { CN: SERIAL10, O: ORG },
      serialNumber: x.serialNumber,
      fingerprint256: x.fingerprint256,
      validTo: x.validTo,
    });
    assert.ok(logLines.includes(`== CS010 connected (profile 3, 127.0.0.1, client certificate CN=${SERIAL10} O=${ORG} ` +
      `serial=${x.serialNumber})`), logLines.join('\n'));
    await cli.call('Heartbeat', {});
    await cli.close();
    // an unlisted station: CN = identity
    const cli11 = certClient(csms, 'CS011', 'cs011');
    await cli11.connect();
    assert.equal(csms.clients.get('CS011').session.certificate.subject.CN, 'CS011');
    await cli11.close();
  });

  await test('profile 3: wrong O, CN = identity for a listed station, other CA, no certificate: 401', async () => {
    await expectConnectFailure(certClient(csms, 'CS010', 'cs010-wrongo'), is401);
    assert.match(lastReason(), /O is not the operator .*O=Someone Else Ltd/);
    await expectConnectFailure(certClient(csms, 'CS010', 'cs010-idcn'), is401);
    assert.match(lastReason(), /CN does not match the serial number of this station \("SN-0010"\): CN=CS010 /);
    await expectConnectFailure(certClient(csms, 'CS011', 'cs010'), is401); // unlisted: CN must be CS011
    assert.match(lastReason(), /CN does not match the identity: CN=SN-0010/);
    await expectConnectFailure(certClient(csms, 'CS010', 'cs010-foreign'), is401);
    assert.match(lastReason(), /client certificate not trusted \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/);
    // profile3Only: a right password does not help
    await expectConnectFailure(newClient(csms, 'CS010', { password: PW1 }), is401);
    assert.match(lastReason(), /no client certificate \(security profile 3 required\)/);
    assert.equal(authRejected.length, 5);
    assert.ok(!csms.clients.has('CS010') && !csms.clients.has('CS011'));
  });

  await test("profile 3: an expired station certificate (signCsr mode 'expired') is refused", async () => {
    const pem = csms.signCsr('CS010', fs.readFileSync(f('cs010.csr'), 'utf8'), { mode: 'expired' });
    const x = new crypto.X509Certificate(pem);
    assert.ok(Date.parse(x.validTo) < Date.now(), x.validTo);
    assert.ok(x.checkIssued(caX) && x.verify(caX.publicKey));
    fs.writeFileSync(f('cs010-expired.pem'), pem);
    fs.copyFileSync(f('cs010.key'), f('cs010-expired.key'));
    await expectConnectFailure(certClient(csms, 'CS010', 'cs010-expired'), is401);
    assert.match(lastReason(), /not trusted \(CERT_HAS_EXPIRED\)/);
  });

  // A connected station CS010 that records CertificateSigned CALLs.
  const signedCalls = [];
  const station = certClient(csms, 'CS010', 'cs010');
  station.handle('CertificateSigned', ({ params }) => {
    signedCalls.push(params);
    return { status: 'Accepted' };
  });
  await station.connect();
  const nextCertificateSigned = async (timeoutMs = 3000) => {
    const n = signedCalls.length;
    for (let t = 0; t < timeoutMs && signedCalls.length === n; t += 20) await sleep(20);
    assert.ok(signedCalls.length > n, 'no CertificateSigned within 3 s');
    return signedCalls[n];
  };
  const issuedEvents = [];
  csms.events.on('certificateIssued', (e) => issuedEvents.push(e));

  await test('SignCertificate: Accepted, then CertificateSigned with a chain to the CA, CN/O kept, clientAuth', async () => {
    const csr = makeCsr('renew1', `/CN=${SERIAL10}/O=${ORG}`);
    const res = await station.call('SignCertificate', { csr, certificateType: 'ChargingStationCertificate' });
    assert.deepEqual(res, { status: 'Accepted' });
    const params = await nextCertificateSigned();
    assert.equal(params.certificateType, 'ChargingStationCertificate');
    const pems = pemCerts(params.certificateChain);
    assert.equal(pems.length, 1, 'the CA is a root: only the leaf is sent');
    const x = new crypto.X509Certificate(pems[0]);
    assert.ok(x.checkIssued(caX), 'issuer is the CA');
    assert.ok(x.verify(caX.publicKey), 'signature of the CA');
    assert.deepEqual(subjectOf(x), { CN: SERIAL10, O: ORG });
    assert.equal(x.ca, false);
    assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.2']); // extended key usage: clientAuth only
    const days = (Date.parse(x.validTo) - Date.now()) / 86400000;
    assert.ok(days > 29 && days <= 30.01, `valid for ${days} days`);
    const want = crypto.createPublicKey(crypto.createPrivateKey(fs.readFileSync(f('renew1.key'))));
    assert.ok(x.publicKey.export({ type: 'spki', format: 'der' }).equals(want.export({ type: 'spki', format: 'der' })));
    assert.match(x.serialNumber, /^[1-7][0-9A-F]{31}$/);
    // recorded and announced
    const entry = csms.issued[csms.issued.length - 1];
    assert.equal(entry.identity, 'CS010');
    assert.equal(entry.serial, x.serialNumber);
    assert.equal(entry.pem.trim(), pems[0]);
    assert.equal(issuedEvents[issuedEvents.length - 1], entry);
    // the CALL went out after the RESULT
    const iRes = csms.messages.findIndex((m) => m.direction === 'out' && m.type === 'RESULT' && m.action === 'SignCertificate');
    const iCall = csms.messages.findIndex((m) => m.direction === 'out' && m.type === 'CALL' && m.action === 'CertificateSigned');
    assert.ok(iRes >= 0 && iCall > iRes, `RESULT at ${iRes}, CALL at ${iCall}`);
    await csms.waitFor((m) => m.direction === 'in' && m.type === 'RESULT' && m.action === 'CertificateSigned', 2000);
    assert.deepEqual(entry.response, { status: 'Accepted' });
    fs.writeFileSync(f('renew1.pem'), pems[0]);
    assert.ok(logLines.some((l) => l.includes(`certificate issued (sign): serial ${x.serialNumber}`)));
  });

  await test('the renewed certificate authenticates (session.certificate.serialNumber = issued serial)', async () => {
    const replaced = new Promise((r) => (station.state === RPCClient.CLOSED ? r() : station.once('close', r)));
    const cli = certClient(csms, 'CS010', 'renew1');
    await cli.connect(); // the CSMS closes `station`, the previous connection of CS010
    assert.equal(csms.clients.get('CS010').session.certificate.serialNumber, csms.issued[csms.issued.length - 1].serial);
    await replaced;
    await cli.close();
    await station.connect(); // back to the original connection for the next tests
  });

  await test('SignCertificate: wrong O, wrong CN, bad signature, garbage -> Rejected InvalidCSR', async () => {
    const rejected = [];
    csms.events.on('csrRejected', (e) => rejected.push(e));
    const before = { issued: csms.issued.length, signed: signedCalls.length };
    const cases = [
      [makeCsr('bad-o', `/CN=${SERIAL10}/O=Someone Else Ltd`), /CSR O "Someone Else Ltd" is not the operator/],
      [makeCsr('bad-cn', `/CN=CS010/O=${ORG}`), /CSR CN "CS010" is not the serial number of CS010 \("SN-0010"\)/],
      [makeCsr('two-cn', `/CN=${SERIAL10}/CN=${SERIAL10}/O=${ORG}`), /more than one CN/],
      [tamperCsr(makeCsr('tampered', `/CN=${SERIAL10}/O=${ORG}`)), /signature does not verify/],
      ['-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', /cannot be parsed/],
      ['not a csr', /not a PEM certificate request/],
    ];
    for (const [csr, why] of cases) {
      const res = await station.call('SignCertificate', { csr });
      assert.equal(res.status, 'Rejected');
      assert.equal(res.statusInfo.reasonCode, 'InvalidCSR');
      assert.match(res.statusInfo.additionalInfo, why);
      assert.match(rejected[rejected.length - 1].reason, why);
    }
    const v2g = await station.call('SignCertificate', { csr: makeCsr('v2g', `/CN=${SERIAL10}/O=${ORG}`), certificateType: 'V2GCertificate' });
    assert.deepEqual(v2g.statusInfo.reasonCode, 'UnsupportedCertType');
    await sleep(100);
    assert.equal(csms.issued.length, before.issued);
    assert.equal(signedCalls.length, before.signed);
    assert.throws(() => csms.signCsr('CS010', fs.readFileSync(f('bad-o.csr'), 'utf8')), /is not the operator/);
  });

  await test("test modes: 'reject', 'accept-only' (no CertificateSigned), 'wrong-cn'; signCsr sendChain", async () => {
    const csr = makeCsr('renew2', `/CN=${SERIAL10}/O=${ORG}`);
    csms.setSignCertificateMode('reject');
    assert.deepEqual(await station.call('SignCertificate', { csr }), { status: 'Rejected' });
    csms.setSignCertificateMode('accept-only');
    const n = signedCalls.length;
    assert.deepEqual(await station.call('SignCertificate', { csr }), { status: 'Accepted' });
    await sleep(300);
    assert.equal(signedCalls.length, n, 'accept-only sent CertificateSigned');
    csms.setSignCertificateMode('wrong-cn');
    assert.deepEqual(await station.call('SignCertificate', { csr }), { status: 'Accepted' });
    const wrong = new crypto.X509Certificate(pemCerts((await nextCertificateSigned()).certificateChain)[0]);
    assert.deepEqual(subjectOf(wrong), { CN: `NOT-${SERIAL10}`, O: ORG });
    assert.ok(wrong.verify(caX.publicKey));
    csms.setSignCertificateMode('sign');
    assert.throws(() => csms.setSignCertificateMode('bogus'), /one of/);
    // programmatic signing with the CA certificate appended, then sent by the test itself
    const chain = csms.signCsr('CS010', csr, { sendChain: true, days: 2 });
    const pems = pemCerts(chain);
    assert.equal(pems.length, 2);
    assert.equal(new crypto.X509Certificate(pems[1]).fingerprint256, caX.fingerprint256);
    assert.deepEqual(await csms.call('CS010', 'CertificateSigned', { certificateChain: chain, certificateType: 'ChargingStationCertificate' }),
      { status: 'Accepted' });
    assert.equal(signedCalls[signedCalls.length - 1].certificateChain, chain);
  });

  await test('signing leaves no temporary files', async () => {
    assert.equal(os.tmpdir(), signTmp);
    assert.deepEqual(fs.readdirSync(signTmp), []);
  });
  if (savedTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmpdir;

  await test('no key material in the log', async () => {
    const all = logLines.join('\n');
    assert.ok(!/PRIVATE KEY/.test(all));
    for (const k of ['ca.key', 'cs010.key', 'renew1.key']) {
      const body = fs.readFileSync(f(k), 'utf8').split('\n').filter((l) => l && !l.startsWith('-----'));
      for (const line of body) assert.ok(!all.includes(line.slice(0, 24)), `log shows part of ${k}`);
    }
    assert.ok(all.includes(`CS010 SignCertificate CSR CN=${SERIAL10} O=${ORG} is acceptable (mode 'sign')`), all);
    assert.ok(all.includes(`CS010 certificate issued (sign): serial ${csms.issued.find((e) => e.mode === 'sign').serial}, subject CN=${SERIAL10} O=${ORG}, valid to `));
  });
  await station.close();
  await csms.close();

  await test('profile 3 without profile3Only: no certificate falls back to Basic auth; a bad one does not', async () => {
    const mixed = await startCsms({
      tls: { cert: f('server.pem'), key: f('server.key'), ca: f('ca.pem') },
      passwords: { CS010: PW1 },
      organization: ORG,
      stations: { CS010: { serial: SERIAL10 } },
    });
    started.push(mixed);
    const cli = newClient(mixed, 'CS010', { password: PW1 });
    await cli.connect();
    assert.equal(mixed.clients.get('CS010').session.profile, 2);
    assert.equal(mixed.clients.get('CS010').session.certificate, null);
    // without a signer SignCertificate keeps the old answer
    assert.deepEqual(await cli.call('SignCertificate', { csr: fs.readFileSync(f('renew1.csr'), 'utf8') }), { status: 'Rejected' });
    assert.throws(() => mixed.signCsr('CS010', 'x'), /no signer/);
    assert.throws(() => mixed.setSignCertificateMode('sign'), /needs a signer/);
    await cli.close();
    await expectConnectFailure(certClient(mixed, 'CS010', 'cs010-wrongo', { password: PW1 }), is401);
    await mixed.close();
    await assert.rejects(startCsms({ tls: { cert: f('server.pem'), key: f('server.key') }, profile3Only: true }), /profile3Only needs tls.ca/);
    await assert.rejects(startCsms({ tls: { cert: f('server.pem'), key: f('server.key') }, signer: { caCert: f('ca.pem'), caKey: f('ca2.key') } }),
      /does not match/);
  });
}

async function main() {
  makePki();

  await test('refuses to start without TLS unless insecure', async () => {
    await assert.rejects(startCsms({ passwords: { CS001: PW1 } }), /tls/);
  });

  const logLines = [];
  const csms = await startCsms({
    tls: { cert: f('server.pem'), key: f('server.key'), ca: f('ca.pem') },
    passwords: { CS001: PW1, CS002: PW2 },
    blockedTokens: ['BLOCKED-1'],
    heartbeatInterval: 120,
    log: (l) => logLines.push(l),
  });
  started.push(csms);
  const authRejected = [];
  csms.events.on('authRejected', (e) => authRejected.push(e));

  await test('listens on an ephemeral port with a wss:// url', async () => {
    assert.ok(csms.port > 0);
    assert.equal(csms.url, `wss://localhost:${csms.port}/ocpp`);
    assert.ok(logLines.includes(`dev CSMS listening on ${csms.url}`));
  });

  const cs1 = newClient(csms, 'CS001', { password: PW1 });
  cs1.handle('Reset', () => ({ status: 'Accepted' }));
  cs1.handle('SetVariables', ({ params }) => ({
    setVariableResult: params.setVariableData.map((d) => ({
      attributeStatus: 'Accepted', component: d.component, variable: d.variable,
    })),
  }));

  await test('profile 2: right password connects; BootNotification and Heartbeat answered', async () => {
    const connected = new Promise((r) => csms.events.once('client', r));
    await cs1.connect();
    const serverSide = await connected;
    assert.equal(serverSide.identity, 'CS001');
    assert.equal(csms.clients.get('CS001'), serverSide);
    assert.equal(serverSide.session.profile, 2);

    const boot = await cs1.call('BootNotification', STATION_REQUESTS.BootNotification);
    assert.equal(boot.status, 'Accepted');
    assert.equal(boot.interval, 120);
    assert.ok(!Number.isNaN(Date.parse(boot.currentTime)));
    const hb = await cs1.call('Heartbeat', {});
    assert.ok(!Number.isNaN(Date.parse(hb.currentTime)));
  });

  await test('messages are recorded both ways with action, id, payload and raw', async () => {
    const inBoot = csms.messages.find((m) => m.direction === 'in' && m.action === 'BootNotification');
    assert.ok(inBoot);
    assert.equal(inBoot.type, 'CALL');
    assert.equal(inBoot.identity, 'CS001');
    assert.deepEqual(inBoot.payload, STATION_REQUESTS.BootNotification);
    assert.equal(JSON.parse(inBoot.raw)[1], inBoot.id);
    assert.ok(!Number.isNaN(Date.parse(inBoot.time)));
    const outBoot = csms.messages.find((m) => m.direction === 'out' && m.id === inBoot.id);
    assert.ok(outBoot);
    assert.equal(outBoot.type, 'RESULT');
    assert.equal(outBoot.action, 'BootNotification');
    assert.equal(outBoot.payload.status, 'Accepted');
    assert.ok(logLines.some((l) => l.startsWith('<- CS001 BootNotification {"reason":"PowerUp"')), logLines.join('\n'));
    assert.ok(logLines.some((l) => l.startsWith('-> CS001 BootNotification result {')));
  });

  await test('waitFor: past message, future message, timeout', async () => {
    const past = await csms.waitFor('Heartbeat', 100);
    assert.equal(past.action, 'Heartbeat');
    const future = csms.waitFor((m) => m.direction === 'out' && m.type === 'RESULT' && m.action === 'StatusNotification', 3000);
    await cs1.call('StatusNotification', STATION_REQUESTS.StatusNotification);
    const rec = await future;
    assert.deepEqual(rec.payload, {});
    await assert.rejects(csms.waitFor('NoSuchAction', 50), /within 50 ms/);
    await assert.rejects(csms.waitFor(() => { throw new Error('bad predicate'); }, 50), /bad predicate/);
  });

  await test('default handlers answer every station message schema-valid', async () => {
    for (const [action, params] of Object.entries(STATION_REQUESTS)) {
      validator.validate(`urn:${action}.req`, params); // our sample is valid
      const res = await cs1.call(action, params); // client strict mode validates the response too
      validator.validate(`urn:${action}.conf`, res);
    }
  });

  await test('Authorize / TransactionEvent: Accepted, Blocked for blockedTokens', async () => {
    const ok = await cs1.call('Authorize', { idToken: TOKEN });
    assert.equal(ok.idTokenInfo.status, 'Accepted');
    const blocked = await cs1.call('Authorize', { idToken: { idToken: 'BLOCKED-1', type: 'ISO14443' } });
    assert.equal(blocked.idTokenInfo.status, 'Blocked');
    const te = await cs1.call('TransactionEvent', STATION_REQUESTS.TransactionEvent);
    assert.equal(te.idTokenInfo.status, 'Accepted');
    const { idToken, ...noToken } = STATION_REQUESTS.TransactionEvent;
    assert.ok(idToken);
    assert.deepEqual(await cs1.call('TransactionEvent', { ...noToken, eventType: 'Updated', seqNo: 1 }), {});
  });

  await test('call(): CSMS-initiated CALL and the station reply are recorded', async () => {
    const res = await csms.call('CS001', 'Reset', { type: 'Immediate' });
    assert.deepEqual(res, { status: 'Accepted' });
    const out = csms.messages.findLast((m) => m.direction === 'out' && m.type === 'CALL' && m.action === 'Reset');
    const reply = await csms.waitFor((m) => m.direction === 'in' && m.id === out.id, 1000);
    assert.equal(reply.type, 'RESULT');
    assert.equal(reply.action, 'Reset');
    await assert.rejects(csms.call('NOPE', 'Reset', { type: 'Immediate' }), /not connected/);
    // strict mode also checks what we send
    await assert.rejects(csms.call('CS001', 'Reset', { type: 'Sometime' }));
  });

  await test('sendRaw(): raw CALL gets a recorded reply; garbage gets RpcFrameworkError', async () => {
    csms.sendRaw('CS001', '[2,"raw-1","Reset",{"type":"OnIdle"}]');
    const reply = await csms.waitFor((m) => m.direction === 'in' && m.id === 'raw-1', 2000);
    assert.equal(reply.type, 'RESULT');
    assert.equal(reply.action, 'Reset');
    assert.deepEqual(reply.payload, { status: 'Accepted' });

    csms.sendRaw('CS001', 'this is not json');
    const sent = csms.messages.findLast((m) => m.direction === 'out');
    assert.equal(sent.type, 'INVALID');
    assert.equal(sent.raw, 'this is not json');
    const err = await csms.waitFor((m) => m.direction === 'in' && m.type === 'ERROR' && m.time >= sent.time, 2000);
    assert.equal(err.id, '-1');
    assert.equal(err.payload.errorCode, 'RpcFrameworkError');
    assert.throws(() => csms.sendRaw('NOPE', '[]'), /not connected/);
  });

  await test('strict mode: invalid or unknown station CALLs get CALLERRORs', async () => {
    cs1.sendRaw('[2,"bad-1","BootNotification",{"reason":"PowerUp"}]');
    const e1 = await csms.waitFor((m) => m.direction === 'out' && m.id === 'bad-1', 2000);
    assert.equal(e1.type, 'ERROR');
    assert.equal(e1.action, 'BootNotification');
    assert.match(e1.payload.errorCode, /^Occurr?enceConstraintViolation$/);
    cs1.sendRaw('[2,"bad-2","FooBar",{}]');
    const e2 = await csms.waitFor((m) => m.direction === 'out' && m.id === 'bad-2', 2000);
    assert.equal(e2.payload.errorCode, 'NotImplemented');
  });

  await test('log lines never show passwords (SetVariables BasicAuthPassword redacted)', async () => {
    const secret = 'new-basic-auth-password-123456';
    await csms.call('CS001', 'SetVariables', {
      setVariableData: [{ attributeValue: secret, component: { name: 'SecurityCtrlr' }, variable: { name: 'BasicAuthPassword' } }],
    });
    const rec = csms.messages.findLast((m) => m.action === 'SetVariables' && m.type === 'CALL');
    assert.equal(rec.payload.setVariableData[0].attributeValue, secret); // the record is complete
    const all = logLines.join('\n');
    assert.ok(all.includes('SetVariables'));
    for (const s of [secret, PW1, PW2]) assert.ok(!all.includes(s), `log shows ${s}`);
  });

  await test('wrong password, unknown identity, missing password: refused with 401', async () => {
    const check = (e) => assert.equal(e.code, 401, String(e));
    await expectConnectFailure(newClient(csms, 'CS002', { password: PW1 }), check);
    await expectConnectFailure(newClient(csms, 'CS009', { password: PW1 }), check);
    await expectConnectFailure(newClient(csms, 'CS002'), check);
    assert.deepEqual(authRejected.map((r) => r.reason), ['wrong password', 'unknown identity', 'no Basic auth credentials for this identity']);
    assert.ok(!csms.clients.has('CS002'));
    assert.ok(!logLines.join('\n').includes(PW1));
  });

  await test('a client that does not trust the CSMS root fails the TLS handshake', async () => {
    const cli = newClient(csms, 'CS002', { password: PW2, wsOpts: { ca: fs.readFileSync(f('cs003.pem')) } });
    await expectConnectFailure(cli, (e) => assert.match(String(e.code ?? e.message), /CERT|certificate|SELF_SIGNED/i));
  });

  await test('TLS 1.1 is refused by the server', async () => {
    // (the previous test's aborted handshake may still report ECONNRESET here)
    const serverSaw = new Promise((r) => csms.events.on('tlsClientError', (e) => /UNSUPPORTED_PROTOCOL/.test(e.error.code) && r(e)));
    await new Promise((resolve, reject) => {
      const s = tls.connect({
        host: '127.0.0.1', port: csms.port, minVersion: 'TLSv1', maxVersion: 'TLSv1.1',
        ciphers: 'DEFAULT@SECLEVEL=0', rejectUnauthorized: false,
      });
      s.once('secureConnect', () => { s.destroy(); reject(new Error('TLS 1.1 handshake succeeded')); });
      s.once('error', () => resolve());
    });
    await serverSaw; // the server, not just our client, refused it
  });

  await test('a malformed %-escape in the URL gets 400 and does not crash the CSMS', async () => {
    const reply = await new Promise((resolve, reject) => {
      let got = '';
      const s = tls.connect({ host: '127.0.0.1', port: csms.port, servername: 'localhost', ca: fs.readFileSync(f('ca.pem')) }, () => {
        s.write('GET /ocpp/%E0%A4%A HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp2.0.1\r\n\r\n');
      });
      s.on('data', (d) => { got += d; });
      s.on('error', reject);
      s.on('close', () => resolve(got));
    });
    assert.match(reply, /^HTTP\/1\.1 400/);
  });

  await test('profile 3: client certificate with CN = identity connects without password', async () => {
    const wsOpts = { ca: fs.readFileSync(f('ca.pem')), cert: fs.readFileSync(f('cs003.pem')), key: fs.readFileSync(f('cs003.key')) };
    const cli = newClient(csms, 'CS003', { wsOpts });
    await cli.connect();
    assert.equal(csms.clients.get('CS003').session.profile, 3);
    await cli.call('Heartbeat', {});
    await cli.close();
    const wrong = { ...wsOpts, cert: fs.readFileSync(f('wrongcn.pem')), key: fs.readFileSync(f('wrongcn.key')) };
    await expectConnectFailure(newClient(csms, 'CS003', { wsOpts: wrong }), (e) => assert.equal(e.code, 401));
  });

  await test('a station that does not offer ocpp2.0.1 is closed right away', async () => {
    // The server completes the handshake without a subprotocol (OCPP-J 2.0.1
    // section 3.1.2) and closes; the ws client itself already gives up on that.
    const cli = newClient(csms, 'CS002', { password: PW2, protocols: ['ocpp1.6'], strictMode: false });
    const gone = new Promise((r) => csms.events.on('disconnect', (id) => id === 'CS002' && r()));
    await expectConnectFailure(cli, (e) => assert.match(e.message, /no subprotocol/));
    await gone;
    assert.ok(!csms.clients.has('CS002'));
    assert.ok(logLines.some((l) => l === '!! CS002 did not offer ocpp2.0.1; closing'));
  });

  await test('disconnect event and clients map on station close', async () => {
    const gone = new Promise((r) => csms.events.once('disconnect', r));
    await cs1.close();
    assert.equal(await gone, 'CS001');
    assert.ok(!csms.clients.has('CS001'));
  });

  await csms.close();

  await test('insecure profile 1 with passwordFile (any identity) and handler override', async () => {
    const seen = [];
    const plain = await startCsms({
      insecure: true,
      passwordFile: f('password.txt'),
      handlers: {
        BootNotification: async (client, params, ctx) => {
          seen.push([client.identity, params.reason, ctx.messageId]);
          return { ...(await ctx.callDefault()), status: 'Pending', interval: 5 };
        },
      },
    });
    started.push(plain);
    assert.equal(plain.url, `ws://localhost:${plain.port}/ocpp`);
    const cli = newClient(plain, 'ANY-STATION-7', { password: FILE_PW });
    await cli.connect();
    assert.equal(plain.clients.get('ANY-STATION-7').session.profile, 1);
    const boot = await cli.call('BootNotification', STATION_REQUESTS.BootNotification);
    assert.equal(boot.status, 'Pending');
    assert.equal(boot.interval, 5);
    assert.equal(seen[0][0], 'ANY-STATION-7');
    await expectConnectFailure(newClient(plain, 'OTHER', { password: FILE_PW + 'x' }), (e) => assert.equal(e.code, 401));
    await plain.close(); // closes the connected station too
    await new Promise((r) => (cli.state === RPCClient.CLOSED ? r() : cli.once('close', r)));
  });

  await profile3Tests();

  await test('CLI: listening line, one line per message, no password, clean SIGTERM', async () => {
    const child = spawn(process.execPath, [path.join(__dirname, 'csms.js'), '--port', '0', '--cert', f('server.pem'),
      '--key', f('server.key'), '--password-file', f('password.txt')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errOut = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { errOut += d; });
    const exited = new Promise((r) => child.once('exit', (code, sig) => r({ code, sig })));
    try {
      const waitOut = async (re) => {
        for (let i = 0; i < 100 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 50));
        assert.match(out, re, `stdout: ${out}\nstderr: ${errOut}`);
      };
      await waitOut(/dev CSMS listening on wss:\/\/localhost:(\d+)\/ocpp\n/);
      const port = Number(/localhost:(\d+)/.exec(out)[1]);
      const cli = newClient({ url: `wss://localhost:${port}/ocpp` }, 'CS001', { password: FILE_PW });
      await cli.connect();
      await cli.call('BootNotification', STATION_REQUESTS.BootNotification);
      await waitOut(/^<- CS001 BootNotification \{"reason":"PowerUp",/m);
      await waitOut(/^-> CS001 BootNotification result \{/m);
      child.kill('SIGTERM');
      const { code } = await exited;
      assert.equal(code, 0, `exit ${code}; stderr: ${errOut}`);
      assert.ok(!out.includes(FILE_PW) && !errOut.includes(FILE_PW));
      assert.equal(out.match(/dev CSMS listening/g).length, 1);
    } finally {
      child.kill('SIGKILL');
    }
  });

  await test('CLI: --ca --require-client-cert --organization --station --sign-ca-cert/--sign-ca-key/--sign-days', async () => {
    const child = spawn(process.execPath, [path.join(__dirname, 'csms.js'), '--port', '0', '--cert', f('server.pem'),
      '--key', f('server.key'), '--password-file', f('password.txt'), '--ca', f('ca.pem'), '--require-client-cert',
      '--organization', ORG, '--station', `CS010=${SERIAL10}`, '--station', 'CS012=SN-0012',
      '--sign-ca-cert', f('ca.pem'), '--sign-ca-key', f('ca.key'), '--sign-days', '7'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errOut = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { errOut += d; });
    const exited = new Promise((r) => child.once('exit', (code, sig) => r({ code, sig })));
    try {
      const waitOut = async (re) => {
        for (let i = 0; i < 100 && !re.test(out); i++) await sleep(50);
        assert.match(out, re, `stdout: ${out}\nstderr: ${errOut}`);
      };
      await waitOut(/dev CSMS listening on wss:\/\/localhost:(\d+)\/ocpp\n/);
      const where = { url: `wss://localhost:${Number(/localhost:(\d+)/.exec(out)[1])}/ocpp` };
      await expectConnectFailure(newClient(where, 'CS010', { password: FILE_PW }), (e) => assert.equal(e.code, 401));
      await waitOut(/refused \(401\): no client certificate \(security profile 3 required\)/);
      const cli = certClient(where, 'CS010', 'cs010');
      let signed;
      const gotSigned = new Promise((r) => cli.handle('CertificateSigned', ({ params }) => {
        signed = params;
        r();
        return { status: 'Accepted' };
      }));
      await cli.connect();
      await waitOut(new RegExp(`== CS010 connected \\(profile 3, [^,]+, client certificate CN=${SERIAL10} O=ChargeGuard Ops, Inc\\. serial=[0-9A-F]+\\)`));
      const res = await cli.call('SignCertificate', { csr: fs.readFileSync(f('renew1.csr'), 'utf8') });
      assert.equal(res.status, 'Accepted');
      await gotSigned;
      const x = new crypto.X509Certificate(signed.certificateChain);
      const days = (Date.parse(x.validTo) - Date.now()) / 86400000;
      assert.ok(days > 6 && days <= 7.01, `valid for ${days} days`);
      await waitOut(new RegExp(`certificate issued \\(sign\\): serial ${x.serialNumber}, subject CN=${SERIAL10} O=`));
      child.kill('SIGTERM');
      const { code } = await exited;
      assert.equal(code, 0, `exit ${code}; stderr: ${errOut}`);
      assert.ok(!/PRIVATE KEY/.test(out + errOut));
    } finally {
      child.kill('SIGKILL');
    }
  });
}

const watchdog = setTimeout(() => {
  console.error('selftest: timed out (or a handle was left open after close())');
  process.exit(1);
}, 60000);
watchdog.unref();

main()
  .then(() => {
    console.log(`selftest: ${passed} checks passed`);
  })
  .catch((err) => {
    console.error(err && err.stack ? err.stack : err);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const c of clients) await c.close({ force: true }).catch(() => {});
    for (const s of started) await s.close().catch(() => {});
    fs.rmSync(tmp, { recursive: true, force: true });
  });
