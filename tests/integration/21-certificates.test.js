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
const { itest, pki, run } = require('./lib/harness');

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

itest('M05: no root certificate over security profile 1', async (ctx) => {
  const main = await pki('main');
  await ctx.startCsms({ tls: undefined, insecure: true });
  fs.appendFileSync(ctx.configFile, '\n[csms]\nallow_insecure_transport = true\n');
  await ctx.startStation({ securityProfile: 1 });
  await ctx.waitBooted();
  const r = await ctx.call('InstallCertificate', { certificateType: CSMS_ROOT, certificate: fs.readFileSync(main.rootCa, 'utf8') });
  assert.equal(r.status, 'Rejected');
  assert.match(r.statusInfo.additionalInfo, /unencrypted connection \(security profile 1\)/);
  assert.equal((await ids(ctx)).status, 'NotFound');
});
