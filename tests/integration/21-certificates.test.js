// M03/M04/M05 (issue 4): GetInstalledCertificateIds, InstallCertificate and
// DeleteCertificate against the certificate store, with our stricter rules: no
// root over profile 1, a manufacturer root only when signed by the pinned one,
// never the last CSMS root. The roots the station trusts for TLS follow the
// store: after the CSMS installed another root and deleted the old one, the
// station connects to a CSMS of the new PKI only. Hash data per RFC 6960 CertID,
// checked against `openssl ocsp`.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { itest, pki, run, isCall, startUploadServer } = require('./lib/harness');

const CSMS_ROOT = 'CSMSRootCertificate';

// CertificateHashData of a self-signed root by `openssl ocsp` (SHA-256 CertID).
async function opensslHashData(ctx, certFile) {
  const req = path.join(ctx.dir, `ocsp-${path.basename(certFile)}.der`);
  let r = await run('openssl', ['ocsp', '-sha256', '-issuer', certFile, '-cert', certFile, '-no_nonce', '-reqout', req]);
  assert.equal(r.code, 0, r.stderr);
  r = await run('openssl', ['ocsp', '-reqin', req, '-req_text']);
  assert.equal(r.code, 0, r.stderr);
  const field = (name) => r.stdout.match(new RegExp(`${name}: ([0-9A-F]+)`))[1].toLowerCase();
  return {
    hashAlgorithm: 'SHA256',
    issuerNameHash: field('Issuer Name Hash'),
    issuerKeyHash: field('Issuer Key Hash'),
    serialNumber: field('Serial Number').replace(/^0+(?=.)/, ''),
  };
}

const ids = async (ctx, types) => ctx.call('GetInstalledCertificateIds', types ? { certificateType: types } : {});

itest('M03/M04/M05: list, install and delete roots; TLS trusts what the store holds', { timeout: 45000 }, async (ctx) => {
  const main = await pki('main');
  const other = await pki('other');
  await ctx.startCsms();
  await ctx.startStation();
  await ctx.waitBooted();

  // M03: the root seeded from csms.ca_file, with RFC 6960 hash data.
  let res = await ids(ctx);
  assert.equal(res.status, 'Accepted');
  assert.equal(res.certificateHashDataChain.length, 1);
  assert.equal(res.certificateHashDataChain[0].certificateType, CSMS_ROOT);
  const mainHash = await opensslHashData(ctx, main.rootCa);
  assert.deepEqual(res.certificateHashDataChain[0].certificateHashData, mainHash);
  assert.equal((await ids(ctx, ['ManufacturerRootCertificate'])).status, 'NotFound');

  // M05: refused — a leaf, a self-signed manufacturer root with none pinned.
  let r = await ctx.call('InstallCertificate', { certificateType: CSMS_ROOT, certificate: fs.readFileSync(main.cert, 'utf8') });
  assert.equal(r.status, 'Rejected');
  assert.match(r.statusInfo.additionalInfo, /CA/);
  r = await ctx.call('InstallCertificate', {
    certificateType: 'ManufacturerRootCertificate',
    certificate: fs.readFileSync(path.join(main.dir, 'manufacturer-root-ca.pem'), 'utf8'),
  });
  assert.equal(r.status, 'Rejected');
  assert.match(r.statusInfo.additionalInfo, /no manufacturer root is pinned/);

  // M05: a second CSMS root (another PKI) is Accepted and counted.
  r = await ctx.call('InstallCertificate', { certificateType: CSMS_ROOT, certificate: fs.readFileSync(other.rootCa, 'utf8') });
  assert.equal(r.status, 'Accepted');
  res = await ids(ctx, [CSMS_ROOT]);
  assert.equal(res.certificateHashDataChain.length, 2);
  const entries = await ctx.call('GetVariables', {
    getVariableData: [{ component: { name: 'SecurityCtrlr' }, variable: { name: 'CertificateEntries' } }],
  });
  assert.equal(entries.getVariableResult[0].attributeValue, '2');

  // M04: the old root goes (hash data in upper case, as CSMSs send it); the last one cannot.
  const upper = { ...mainHash, issuerNameHash: mainHash.issuerNameHash.toUpperCase(), issuerKeyHash: mainHash.issuerKeyHash.toUpperCase() };
  r = await ctx.call('DeleteCertificate', { certificateHashData: upper });
  assert.equal(r.status, 'Accepted');
  r = await ctx.call('DeleteCertificate', { certificateHashData: upper });
  assert.equal(r.status, 'NotFound');
  const otherHash = await opensslHashData(ctx, other.rootCa);
  r = await ctx.call('DeleteCertificate', { certificateHashData: otherHash });
  assert.equal(r.status, 'Failed');
  assert.match(r.statusInfo.additionalInfo, /last CSMS root/);

  // Every change is in the security log.
  const ex = await ctx.auditExport();
  const changes = ex.records.filter((x) => x.type === 'ReconfigurationOfSecurityParameters' && /Certificate$/.test(x.details.change ?? ''));
  assert.deepEqual(
    changes.map((x) => `${x.details.change}:${x.details.status}`),
    ['installCertificate:Rejected', 'installCertificate:Rejected', 'installCertificate:Accepted', 'deleteCertificate:Accepted', 'deleteCertificate:NotFound', 'deleteCertificate:Failed'],
  );

  // TLS follows the store: a CSMS of the old PKI is refused now, one of the new PKI accepted.
  await ctx.stopStation();
  const oldCsms = ctx.csms;
  await ctx.startStation();
  await ctx.waitForLog(/certificate verify failed/, 8000);
  assert.equal((await ctx.status()).online, false);
  await ctx.stopStation();
  await ctx.startCsms({ pki: 'other' });
  assert.notEqual(ctx.csms, oldCsms);
  await ctx.startStation({ csmsUrl: ctx.csms.url });
  await ctx.waitBooted();
});

// COM-9: GetLog uploads trust the roots of the certificate store (what the CSMS
// installed and deleted), not the csms.ca_file they were seeded from.
itest('COM-9: GetLog uploads trust the certificate store\'s CSMS roots, not csms.ca_file', { timeout: 45000 }, async (ctx) => {
  const main = await pki('main');
  const other = await pki('other');
  const oldSrv = await startUploadServer(); // certificate of the PKI of csms.ca_file
  const newSrv = await startUploadServer({ pki: 'other' });
  try {
    await ctx.startCsms();
    await ctx.startStation();
    await ctx.waitBooted();
    const lsn = (id, status) => isCall('LogStatusNotification', (p) => p.requestId === id && p.status === status);
    const getLog = (id, url) => ctx.call('GetLog', { logType: 'SecurityLog', requestId: id, log: { remoteLocation: url } });

    // The CSMS replaces its root: the other PKI's root in, the seeded one out.
    let r = await ctx.call('InstallCertificate', { certificateType: CSMS_ROOT, certificate: fs.readFileSync(other.rootCa, 'utf8') });
    assert.equal(r.status, 'Accepted');
    r = await ctx.call('DeleteCertificate', { certificateHashData: await opensslHashData(ctx, main.rootCa) });
    assert.equal(r.status, 'Accepted');

    // A server of the deleted root gets nothing, though csms.ca_file still names it …
    let from = ctx.mark();
    assert.equal((await getLog(41, oldSrv.url())).status, 'Accepted');
    await ctx.waitFor(lsn(41, 'UploadFailure'), { from, timeoutMs: 15000 });
    assert.equal(oldSrv.requests.length, 0, 'no data sent to a server of a deleted root');
    // … and one of the installed root gets the log.
    from = ctx.mark();
    assert.equal((await getLog(42, newSrv.url())).status, 'Accepted');
    await ctx.waitFor(lsn(42, 'Uploaded'), { from, timeoutMs: 15000 });
    assert.equal(newSrv.requests.length, 1);
  } finally {
    await oldSrv.close();
    await newSrv.close();
  }
});

itest('M05: no root certificate over security profile 1', async (ctx) => {
  const main = await pki('main');
  const other = await pki('other');
  await ctx.startCsms({ tls: undefined, insecure: true });
  fs.appendFileSync(ctx.configFile, '\n[csms]\nallow_insecure_transport = true\n');
  await ctx.startStation({ securityProfile: 1 });
  await ctx.waitBooted();
  const r = await ctx.call('InstallCertificate', { certificateType: CSMS_ROOT, certificate: fs.readFileSync(other.rootCa, 'utf8') });
  assert.equal(r.status, 'Rejected');
  assert.match(r.statusInfo.additionalInfo, /unencrypted connection \(security profile 1\)/);
  // Only the root of the local csms.ca_file (seeded for a later upgrade to profile 2) is there.
  const list = await ids(ctx);
  assert.equal(list.status, 'Accepted');
  assert.deepEqual(list.certificateHashDataChain.map((c) => c.certificateHashData), [await opensslHashData(ctx, main.rootCa)]);
});

// A successor root: key R2, certificate "R2" signed by the installed root R1
// (cross-signed), its self-signed form, and a CSMS server certificate issued by R2.
async function successorRoot(ctx, r1Cert, r1Key) {
  const dir = fs.mkdtempSync(path.join(ctx.dir, 'r2-'));
  const f = (n) => path.join(dir, n);
  const ok = async (args) => {
    const r = await run('openssl', args);
    assert.equal(r.code, 0, `openssl ${args[0]}: ${r.stderr}`);
  };
  fs.writeFileSync(f('ca.cnf'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  fs.writeFileSync(f('srv.cnf'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n');
  await ok(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', f('r2.key')]);
  await ok(['req', '-new', '-key', f('r2.key'), '-subj', '/O=chargeguard test/CN=successor CSMS root CA', '-out', f('r2.csr')]);
  await ok(['x509', '-req', '-in', f('r2.csr'), '-CA', r1Cert, '-CAkey', r1Key, '-days', '30',
    '-sha256', '-set_serial', '0x2201', '-extfile', f('ca.cnf'), '-out', f('r2-cross.pem')]);
  await ok(['x509', '-req', '-in', f('r2.csr'), '-signkey', f('r2.key'), '-days', '30', '-sha256', '-extfile', f('ca.cnf'),
    '-out', f('r2-self.pem')]);
  await ok(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', f('srv.key')]);
  await ok(['req', '-new', '-key', f('srv.key'), '-subj', '/CN=localhost', '-out', f('srv.csr')]);
  await ok(['x509', '-req', '-in', f('srv.csr'), '-CA', f('r2-cross.pem'), '-CAkey', f('r2.key'), '-days', '30', '-sha256',
    '-set_serial', '0x2202', '-extfile', f('srv.cnf'), '-out', f('srv.pem')]);
  return { cross: f('r2-cross.pem'), self: f('r2-self.pem'), cert: f('srv.pem'), key: f('srv.key') };
}

itest('M05 AdditionalRootCertificateCheck: a successor root signed by the old one; the old goes after the first connection through the new', { timeout: 45000 }, async (ctx) => {
  const main = await pki('main');
  const r2 = await successorRoot(ctx, main.rootCa, path.join(main.dir, 'csms-root-ca.key'));
  const a = await ctx.startCsms();
  await ctx.startStation();
  await ctx.waitBooted();
  const set = await ctx.call('SetVariables', { setVariableData: [{
    component: { name: 'SecurityCtrlr' }, variable: { name: 'AdditionalRootCertificateCheck' }, attributeValue: 'true' }] });
  assert.equal(set.setVariableResult[0].attributeStatus, 'Accepted');

  // Not signed by the installed root: Rejected. Cross-signed by it: Accepted, the old one kept as fallback.
  let r = await ctx.call('InstallCertificate', { certificateType: CSMS_ROOT, certificate: fs.readFileSync(r2.self, 'utf8') });
  assert.equal(r.status, 'Rejected');
  assert.match(r.statusInfo.additionalInfo, /not signed by the installed CSMS root/);
  r = await ctx.call('InstallCertificate', { certificateType: CSMS_ROOT, certificate: fs.readFileSync(r2.cross, 'utf8') });
  assert.equal(r.status, 'Accepted', JSON.stringify(r));
  assert.equal((await ids(ctx, [CSMS_ROOT])).certificateHashDataChain.length, 2);
  // A reconnection to the same CSMS (old PKI) confirms nothing.
  await ctx.stopStation();
  let from = ctx.mark();
  await ctx.startStation();
  await ctx.waitBooted({ from });
  assert.equal((await ids(ctx, [CSMS_ROOT])).certificateHashDataChain.length, 2, 'the old root stays while unconfirmed');

  // The CSMS moves to a server certificate of the new root: the first connection confirms the change.
  await ctx.stopStation();
  const b = await ctx.startCsms({ tls: { cert: r2.cert, key: r2.key } });
  await ctx.startStation({ csmsUrl: b.url });
  await ctx.waitBooted();
  await ctx.waitForLog(/connected through the new CSMS root/);
  const left = (await ids(ctx, [CSMS_ROOT])).certificateHashDataChain;
  assert.equal(left.length, 1, 'the old root is deleted');
  // The cross-signed root, listed with its own key now that its issuer is gone.
  assert.deepEqual(left[0].certificateHashData, await opensslHashData(ctx, r2.cross));

  // The cross-signed root alone is the trust anchor now: a restart connects to B, never to A.
  await ctx.stopStation();
  from = ctx.mark();
  await ctx.startStation();
  await ctx.waitBooted({ from });
  await ctx.stopStation();
  await ctx.startStation({ csmsUrl: a.url });
  await ctx.waitForLog(/certificate verify failed/, 8000);
  assert.equal((await ctx.status()).online, false);

  const ex = await ctx.auditExport();
  const confirmed = ex.records.find((x) => x.details.change === 'csmsRootConfirmed');
  assert.ok(confirmed, 'the confirmation is audited');
  assert.equal(confirmed.type, 'ReconfigurationOfSecurityParameters');
  await ctx.assertAuditOk();
});

itest('pki install-root pins the first manufacturer root; over OCPP only its successor, and never the last one deleted', { timeout: 45000 }, async (ctx) => {
  const main = await pki('main');
  await ctx.startCsms();
  ctx.writeConfig([
    '[station]', `identity = "${ctx.identity}"`, `state_dir = "${ctx.stateDir}"`,
    '[csms]', `url = "${ctx.csms.url}"`, 'security_profile = 2', `ca_file = "${main.rootCa}"`, `password_file = "${ctx.pwFile}"`,
  ].join('\n') + '\n');
  const m1 = path.join(main.dir, 'manufacturer-root-ca.pem');
  const installRoot = (type, cert, extra = []) => ctx.cli(['pki', 'install-root', '--config', ctx.configFile, '--type', type, '--cert', cert, ...extra]);

  // Clear errors: an unknown type, a certificate that is not a CA.
  let r = await installRoot('FirmwareRoot', m1);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--type FirmwareRoot: must be ManufacturerRootCertificate/);
  r = await installRoot('ManufacturerRootCertificate', main.cert);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not installed: .*CA/);
  r = await installRoot('ManufacturerRootCertificate', m1);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /ManufacturerRootCertificate: .*\n  subject .*chargeguard development manufacturer/i);

  await ctx.startStation();
  await ctx.waitBooted();
  // The daemon owns the state directory now.
  r = await installRoot('ManufacturerRootCertificate', m1);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /daemon is running/);

  const listed = await ids(ctx, ['ManufacturerRootCertificate']);
  assert.equal(listed.certificateHashDataChain.length, 1);
  const m1Hash = listed.certificateHashDataChain[0].certificateHashData;
  let res = await ctx.call('DeleteCertificate', { certificateHashData: m1Hash });
  assert.equal(res.status, 'Failed');
  assert.match(res.statusInfo.additionalInfo, /last manufacturer root/);

  // Its successor, cross-signed by it, is accepted over OCPP; then the old one may go.
  const m2 = await successorRoot(ctx, m1, path.join(main.dir, 'manufacturer-root-ca.key'));
  res = await ctx.call('InstallCertificate', { certificateType: 'ManufacturerRootCertificate', certificate: fs.readFileSync(m2.self, 'utf8') });
  assert.equal(res.status, 'Rejected');
  res = await ctx.call('InstallCertificate', { certificateType: 'ManufacturerRootCertificate', certificate: fs.readFileSync(m2.cross, 'utf8') });
  assert.equal(res.status, 'Accepted', JSON.stringify(res));
  res = await ctx.call('DeleteCertificate', { certificateHashData: m1Hash });
  assert.equal(res.status, 'Accepted');
  assert.equal((await ids(ctx, ['ManufacturerRootCertificate'])).certificateHashDataChain.length, 1);

  const ex = await ctx.auditExport();
  const cli = ex.records.filter((x) => x.details.change === 'installCertificate' && x.details.mode === 'add');
  assert.deepEqual(cli.map((x) => x.outcome), ['failure', 'success'], 'the CLI attempts are audited (the bad type never got that far)');
  await ctx.assertAuditOk();
});
