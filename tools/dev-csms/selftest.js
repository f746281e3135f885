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

const PW1 = 'CS001-dev-password-0123456789';
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
  openssl('req', '-x509', '-config', f('openssl.cnf'), '-extensions', 'ca_ext', ...ec,
    '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/O=selftest/CN=dev-csms selftest CA');
  const leaf = (name, cn, ext) => {
    openssl('req', '-new', '-config', f('openssl.cnf'), ...ec, '-keyout', f(`${name}.key`),
      '-out', f(`${name}.csr`), '-subj', `/O=selftest/CN=${cn}`);
    openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
      '-set_serial', '0x' + crypto.randomBytes(16).toString('hex').replace(/^[89a-f]/, '1'),
      '-days', '2', '-extfile', f('openssl.cnf'), '-extensions', ext, '-out', f(`${name}.pem`));
  };
  leaf('server', 'localhost', 'server_ext');
  leaf('cs003', 'CS003', 'client_ext');
  leaf('wrongcn', 'SOMEONE-ELSE', 'client_ext');
  fs.writeFileSync(f('password.txt'), FILE_PW + '\n', { mode: 0o600 });
}

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
