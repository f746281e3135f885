// Network connection profiles (issue 4, OCPP B09/B10 and the A05 upgrade):
// SetNetworkProfile stores a profile in slot 1-3 after checking it (no profile 1
// over OCPP, no downgrade below the active profile unless
// the local csms.allow_security_profile_downgrade allows 3 -> 2, preconditions); the CSMS moves
// the station with NetworkConfigurationPriority + Reset; a profile that cannot
// connect falls back to the last working one after
// NetworkProfileConnectionAttempts; every step is audited.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { itest, pki, sleep } = require('./lib/harness');

const ORG = 'Test CPO';

const profile = (url, securityProfile, extra = {}) => ({
  ocppVersion: 'OCPP20',
  ocppTransport: 'JSON',
  ocppCsmsUrl: url,
  messageTimeout: 30,
  securityProfile,
  ocppInterface: 'Wired0',
  ...extra,
});

const variable = (component, name) => ({ component: { name: component }, variable: { name } });
const PRIORITY = variable('OCPPCommCtrlr', 'NetworkConfigurationPriority');

async function getVar(ctx, component, name) {
  const r = await ctx.call('GetVariables', { getVariableData: [variable(component, name)] });
  assert.equal(r.getVariableResult[0].attributeStatus, 'Accepted');
  return r.getVariableResult[0].attributeValue;
}

async function setVar(ctx, component, name, value) {
  const r = await ctx.call('SetVariables', { setVariableData: [{ ...variable(component, name), attributeValue: value }] });
  return r.setVariableResult[0];
}

function expectRejected(res, reasonCode, infoRe) {
  assert.equal(res.status, 'Rejected', JSON.stringify(res));
  assert.equal(res.statusInfo.reasonCode, reasonCode, JSON.stringify(res));
  if (infoRe) assert.match(res.statusInfo.additionalInfo, infoRe);
}

const networkRecords = (ex, change) => ex.records.filter((r) => r.details.change === change);

itest('B09: SetNetworkProfile refuses bad slots, profile 1, missing credentials and unsupported data, audited', async (ctx) => {
  await ctx.boot();
  const url = ctx.csms.url;
  const refusals = [
    [0, profile(url, 2), 'InvalidConfSlot', /configuration file/],
    [4, profile(url, 2), 'InvalidConfSlot', /not one of 0,1,2,3/],
    [1, profile(url.replace('wss:', 'ws:'), 1), 'NoSecurityDowngrade', /never accepted over OCPP/],
    [1, profile(url, 3), 'NoCertificate', /station certificate/],
    [1, profile(url.replace('wss:', 'ws:'), 2), 'InvalidNetworkConf', /needs a wss:\/\/ URL/],
    [1, profile(url, 2, { ocppInterface: 'Wireless0' }), 'InvalidNetworkConf', /Wireless0 does not exist/],
    [1, profile(url, 2, { ocppVersion: 'OCPP16' }), 'InvalidNetworkConf', /OCPP20 only/],
  ];
  for (const [slot, data, code, re] of refusals) {
    expectRejected(await ctx.call('SetNetworkProfile', { configurationSlot: slot, connectionData: data }), code, re);
  }
  // A slot that holds nothing cannot be put into the priority list.
  const pr = await setVar(ctx, 'OCPPCommCtrlr', 'NetworkConfigurationPriority', '1,0');
  assert.equal(pr.attributeStatus, 'Rejected');
  assert.equal(pr.attributeStatusInfo.reasonCode, 'InvalidNetworkConf');
  assert.match(pr.attributeStatusInfo.additionalInfo, /slot 1 holds no network profile/);
  assert.equal(await getVar(ctx, 'OCPPCommCtrlr', 'NetworkConfigurationPriority'), '0');
  // A good one is Accepted and stored, but changes nothing until it is in the priority list.
  assert.deepEqual(await ctx.call('SetNetworkProfile', { configurationSlot: 2, connectionData: profile(url, 2) }), { status: 'Accepted' });
  assert.equal(await getVar(ctx, 'OCPPCommCtrlr', 'ActiveNetworkProfile'), '0');
  assert.equal((await ctx.status()).online, true);

  const ex = await ctx.auditExport();
  const recs = networkRecords(ex, 'setNetworkProfile');
  assert.equal(recs.filter((r) => r.details.status === 'Rejected').length, refusals.length, recs.map((r) => r.line).join('\n'));
  assert.ok(recs.every((r) => r.type === 'ReconfigurationOfSecurityParameters'));
  const ok = recs.find((r) => r.details.status === 'Accepted');
  assert.equal(ok.details.slot, 2);
  assert.equal(ok.outcome, 'success');
  assert.ok(ex.records.some((r) => r.type === 'ReconfigurationOfSecurityParameters' && r.details.status === 'Rejected' &&
    r.details.variable?.includes('NetworkConfigurationPriority')), 'the refused priority change is audited');
  await ctx.assertAuditOk();
});

itest('B10: migrate to another CSMS through slot 1; when it fails, fall back to the last working slot', { timeout: 60000 }, async (ctx) => {
  const a = await ctx.startCsms();
  await ctx.startStation();
  await ctx.waitBooted();
  const b = await ctx.startCsms();
  ctx.csms = a;

  assert.deepEqual(await ctx.call('SetNetworkProfile', { configurationSlot: 1, connectionData: profile(b.url, 2) }), { status: 'Accepted' });
  assert.equal((await setVar(ctx, 'OCPPCommCtrlr', 'NetworkProfileConnectionAttempts', '2')).attributeStatus, 'Accepted');
  assert.equal((await setVar(ctx, 'OCPPCommCtrlr', 'NetworkConfigurationPriority', '1,0')).attributeStatus, 'Accepted');
  assert.equal(await getVar(ctx, 'OCPPCommCtrlr', 'NetworkConfigurationPriority'), '1,0');
  assert.deepEqual(await ctx.call('Reset', { type: 'Immediate' }), { status: 'Accepted' });

  // The station comes up at CSMS B through slot 1 and registers there (B10.FR.10).
  ctx.csms = b;
  const boot = await ctx.waitBooted({ timeoutMs: 15000 });
  assert.equal(boot.payload.reason, 'RemoteReset');
  assert.equal(await getVar(ctx, 'OCPPCommCtrlr', 'ActiveNetworkProfile'), '1');
  // The slot in use cannot be overwritten.
  expectRejected(await ctx.call('SetNetworkProfile', { configurationSlot: 1, connectionData: profile(a.url, 2) }),
    'ActiveNetworkConf', /used by the current connection/);
  // And after a restart as well: the priority list is kept (the file still names CSMS A).
  await ctx.stopStation();
  const again = ctx.mark();
  await ctx.startStation({ csmsUrl: a.url });
  await ctx.waitBooted({ from: again });

  // CSMS B goes away: two attempts through slot 1, then slot 0 (CSMS A) again.
  const fromA = a.messages.length;
  await b.close();
  ctx.csms = a;
  await ctx.waitBooted({ from: fromA, timeoutMs: 20000 });
  assert.equal(await getVar(ctx, 'OCPPCommCtrlr', 'ActiveNetworkProfile'), '0');
  assert.match(ctx.stationLog(), /network profile slot 1 failed .*falling back to slot 0/);

  const ex = await ctx.auditExport();
  const changes = networkRecords(ex, 'networkProfile').map((r) => `${r.details.previousSlot}->${r.details.slot}`);
  assert.deepEqual(changes, ['0->1', '1->0'], 'each switch of the working profile is audited');
  const fallback = networkRecords(ex, 'networkProfileFallback');
  assert.ok(fallback.length >= 1);
  assert.equal(fallback[0].details.fromSlot, 1);
  assert.equal(fallback[0].details.toSlot, 0);
  await ctx.assertAuditOk();
});

// A TCP server that counts connections and drops each at once (a CSMS that
// does not work), on 127.0.0.1.
async function deadEnd() {
  const server = net.createServer((sock) => {
    server.count += 1;
    sock.destroy();
  });
  server.count = 0;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

itest('B10: a new profile that cannot connect gets NetworkProfileConnectionAttempts tries, then the last working one', { timeout: 45000 }, async (ctx) => {
  await ctx.boot();
  const dead = await deadEnd();
  try {
    const url = `wss://127.0.0.1:${dead.address().port}/ocpp`;
    assert.equal((await setVar(ctx, 'OCPPCommCtrlr', 'NetworkProfileConnectionAttempts', '2')).attributeStatus, 'Accepted');
    assert.deepEqual(await ctx.call('SetNetworkProfile', { configurationSlot: 2, connectionData: profile(url, 2) }), { status: 'Accepted' });
    // Slot 0 (the working one) is not even in the list.
    assert.equal((await setVar(ctx, 'OCPPCommCtrlr', 'NetworkConfigurationPriority', '2')).attributeStatus, 'Accepted');
    const from = ctx.mark();
    assert.deepEqual(await ctx.call('Reset', { type: 'Immediate' }), { status: 'Accepted' });
    await ctx.waitBooted({ from, timeoutMs: 15000 });
    assert.equal(dead.count, 2, 'two attempts at slot 2');
    assert.equal(await getVar(ctx, 'OCPPCommCtrlr', 'ActiveNetworkProfile'), '0');
    assert.equal(await getVar(ctx, 'OCPPCommCtrlr', 'NetworkConfigurationPriority'), '2', 'the CSMS\'s list is kept');
    const ex = await ctx.auditExport();
    const fb = networkRecords(ex, 'networkProfileFallback');
    assert.equal(fb.length, 1);
    assert.equal(fb[0].details.fromSlot, 2);
    assert.equal(fb[0].details.toSlot, 0);
    assert.equal(fb[0].type, 'ConfigurationChanged');
    assert.deepEqual(networkRecords(ex, 'networkProfile'), [], 'the working slot did not change');
  } finally {
    dead.close();
  }
});

// One CSMS for both: Basic auth without a client certificate (profile 2),
// mutual TLS with CN/O checked (profile 3); it signs CSRs with the operator
// CA. The station starts at profile 2.
async function startTwoProfileCsms(ctx) {
  const p = await pki('main');
  const operatorCa = path.join(p.dir, 'operator-root-ca.pem');
  await ctx.startCsms({
    tls: { cert: p.cert, key: p.key, ca: operatorCa },
    organization: ORG,
    stations: { [ctx.identity]: { serial: ctx.serial } },
    signer: { caCert: operatorCa, caKey: path.join(p.dir, 'operator-root-ca.key'), days: 30 },
  });
  ctx.clientCaFile = operatorCa;
  await ctx.startStation();
  await ctx.waitBooted();
  return { p, operatorCa };
}

// A02 at profile 2 gives the station its certificate (promoted at once).
async function certificateAtProfile2(ctx) {
  const from = ctx.mark();
  assert.equal((await ctx.call('TriggerMessage', { requestedMessage: 'SignChargingStationCertificate' })).status, 'Accepted');
  const signed = await ctx.waitFor((m) => m.direction === 'out' && m.type === 'CALL' && m.action === 'CertificateSigned', { from });
  assert.equal((await ctx.stationReply(signed.id, { from })).payload.status, 'Accepted');
  assert.ok(fs.existsSync(path.join(ctx.stateDir, 'identity', 'station.pem')));
}

itest('A05: upgrade from profile 2 to 3 over OCPP, then no way back to 2 unless the local configuration allows it', { timeout: 90000 }, async (ctx) => {
  const { p, operatorCa } = await startTwoProfileCsms(ctx);
  const url = ctx.csms.url;
  const session = () => ctx.csms.clients.get(ctx.identity).session;
  assert.equal(session().profile, 2);
  expectRejected(await ctx.call('SetNetworkProfile', { configurationSlot: 1, connectionData: profile(url, 3) }), 'NoCertificate');

  // A02 at profile 2 gives the station its certificate (promoted at once) …
  await certificateAtProfile2(ctx);

  // … then profile 3 in slot 1, first in the list, and a reset.
  assert.deepEqual(await ctx.call('SetNetworkProfile', { configurationSlot: 1, connectionData: profile(url, 3) }), { status: 'Accepted' });
  assert.equal((await setVar(ctx, 'OCPPCommCtrlr', 'NetworkConfigurationPriority', '1,0')).attributeStatus, 'Accepted');
  const beforeReset = ctx.mark();
  await ctx.call('Reset', { type: 'OnIdle' });
  await ctx.waitBooted({ from: beforeReset, timeoutMs: 15000 });
  assert.equal(session().profile, 3, 'connected with mutual TLS');
  assert.equal(session().certificate.subject.CN, ctx.serial);
  assert.equal(await getVar(ctx, 'SecurityCtrlr', 'SecurityProfile'), '3');
  assert.equal(await getVar(ctx, 'OCPPCommCtrlr', 'ActiveNetworkProfile'), '1');

  // Profile 3 is now the floor: no profile 2 in a slot, no slot 0 (profile 2) in the list.
  expectRejected(await ctx.call('SetNetworkProfile', { configurationSlot: 2, connectionData: profile(url, 2) }),
    'NoSecurityDowngrade', /below the active profile 3/);
  const pr = await setVar(ctx, 'OCPPCommCtrlr', 'NetworkConfigurationPriority', '0,1');
  assert.equal(pr.attributeStatus, 'Rejected');
  assert.equal(pr.attributeStatusInfo.reasonCode, 'NoSecurityDowngrade');

  // A restart (the configuration file still says profile 2) stays at profile 3:
  // slot 0 is skipped as a downgrade.
  await ctx.stopStation();
  const again = ctx.mark();
  await ctx.startStation();
  await ctx.waitBooted({ from: again });
  assert.equal(session().profile, 3);
  assert.match(ctx.stationLog(), /slot 0 \(security profile 2\) is below the active profile 3/);

  // The profile-3 link breaks (the CSMS stops asking for client certificates):
  // the station keeps trying slot 1 and never falls back to profile 2 (slot 0),
  // so it never sends its password.
  const port = ctx.csms.port;
  await ctx.csms.close();
  const noMtls = await ctx.startCsms({ port });
  const logFrom = ctx.stationLog().length;
  await sleep(3500);
  assert.equal(noMtls.clients.size, 0, 'no session at the CSMS without mutual TLS');
  assert.equal((await ctx.status()).online, false);
  const attempts = ctx.stationLog().slice(logFrom).match(/connecting to .*\(network profile slot \d, security profile \d\)/g) ?? [];
  assert.ok(attempts.length >= 2, attempts.join('\n'));
  assert.ok(attempts.every((l) => l.includes('slot 1, security profile 3')), attempts.join('\n'));
  await noMtls.close();
  await ctx.startCsms({
    port,
    tls: { cert: p.cert, key: p.key, ca: operatorCa },
    organization: ORG,
    stations: { [ctx.identity]: { serial: ctx.serial } },
  });
  await ctx.waitBooted({ timeoutMs: 15000 });
  assert.equal(session().profile, 3);

  // COM-6: the CSMS cannot grant itself the downgrade (the permission is a
  // local setting, ReadOnly over OCPP) …
  const grant = await setVar(ctx, 'SecurityCtrlr', 'AllowSecurityProfileDowngrade', 'true');
  assert.equal(grant.attributeStatus, 'Rejected');
  assert.equal(grant.attributeStatusInfo.reasonCode, 'ReadOnly');
  assert.equal(await getVar(ctx, 'SecurityCtrlr', 'AllowSecurityProfileDowngrade'), 'false');
  expectRejected(await ctx.call('SetNetworkProfile', { configurationSlot: 2, connectionData: profile(url, 2) }), 'NoSecurityDowngrade');

  // … the local admin can, in the configuration file: audited at the next
  // start; then 3 -> 2 is accepted, profile 1 still refused.
  await ctx.stopStation();
  fs.appendFileSync(ctx.configFile, '\n[csms]\nallow_security_profile_downgrade = true\n');
  const local = ctx.mark();
  await ctx.startStation();
  await ctx.waitBooted({ from: local });
  assert.equal(await getVar(ctx, 'SecurityCtrlr', 'AllowSecurityProfileDowngrade'), 'true');
  assert.deepEqual(await ctx.call('SetNetworkProfile', { configurationSlot: 2, connectionData: profile(url, 2) }), { status: 'Accepted' });
  expectRejected(await ctx.call('SetNetworkProfile', { configurationSlot: 3, connectionData: profile(url.replace('wss:', 'ws:'), 1) }),
    'NoSecurityDowngrade');

  const ex = await ctx.auditExport();
  const up = networkRecords(ex, 'networkProfile').find((r) => r.details.slot === 1);
  assert.ok(up, 'the upgrade is audited');
  assert.equal(up.details.securityProfile, 3);
  assert.equal(up.details.previousSecurityProfile, 2);
  const refused = ex.records.find((r) => r.details.variable?.includes('AllowSecurityProfileDowngrade'));
  assert.equal(refused?.details.status, 'Rejected', 'the CSMS\'s attempt is audited as refused');
  const allowed = ex.records.filter((r) => r.details.change === 'allowSecurityProfileDowngrade');
  assert.equal(allowed.length, 1, 'the local change is audited once');
  assert.equal(allowed[0].type, 'ReconfigurationOfSecurityParameters');
  assert.equal(allowed[0].details.value, 'true');
  assert.equal(allowed[0].source.interface, 'LocalMaintenance');
  await ctx.assertAuditOk();
});

// COM-6: a security profile is raised, never lowered remotely. At profile 3
// (reached by the A05 upgrade) every request a CSMS could try towards profile
// 2 or 1 is refused, and after a reset the station still connects at 3.
itest('COM-6: no sequence of CSMS requests lowers the active security profile', { timeout: 90000 }, async (ctx) => {
  await startTwoProfileCsms(ctx);
  const url = ctx.csms.url;
  const session = () => ctx.csms.clients.get(ctx.identity).session;
  // Up to profile 3: certificate (A02), slot 1 at profile 3 first, reset.
  await certificateAtProfile2(ctx);
  let from;
  assert.deepEqual(await ctx.call('SetNetworkProfile', { configurationSlot: 1, connectionData: profile(url, 3) }), { status: 'Accepted' });
  assert.equal((await setVar(ctx, 'OCPPCommCtrlr', 'NetworkConfigurationPriority', '1,0')).attributeStatus, 'Accepted');
  from = ctx.mark();
  await ctx.call('Reset', { type: 'Immediate' });
  await ctx.waitBooted({ from, timeoutMs: 15000 });
  assert.equal(session().profile, 3);

  // Everything a CSMS could send to get back to profile 2 or 1.
  assert.equal((await setVar(ctx, 'SecurityCtrlr', 'AllowSecurityProfileDowngrade', 'true')).attributeStatus, 'Rejected');
  assert.equal((await setVar(ctx, 'SecurityCtrlr', 'SecurityProfile', '2')).attributeStatus, 'Rejected');
  for (const [slot, sp] of [[2, 2], [3, 1], [1, 2], [0, 2]]) {
    const u = sp === 1 ? url.replace('wss:', 'ws:') : url;
    const r = await ctx.call('SetNetworkProfile', { configurationSlot: slot, connectionData: profile(u, sp) });
    assert.equal(r.status, 'Rejected', `slot ${slot} at profile ${sp}`);
  }
  // Slot 0 (the configuration file's profile 2) cannot be in the list at profile 3.
  for (const prio of ['0', '0,1', '1,0', '2,1']) {
    assert.equal((await setVar(ctx, 'OCPPCommCtrlr', 'NetworkConfigurationPriority', prio)).attributeStatus, 'Rejected', prio);
  }
  from = ctx.mark();
  await ctx.call('Reset', { type: 'Immediate' });
  await ctx.waitBooted({ from, timeoutMs: 15000 });
  assert.equal(session().profile, 3, 'still mutual TLS after every attempt and a reset');
  assert.equal(await getVar(ctx, 'SecurityCtrlr', 'SecurityProfile'), '3');
  await ctx.assertAuditOk();
});
