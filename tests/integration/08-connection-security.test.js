// Security profile 2 failures: a CSMS certificate from another CA, a wrong password.
'use strict';

const assert = require('node:assert/strict');
const { itest, sleep, pki } = require('./lib/harness');

async function waitUntil(cond, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what()}`);
    await sleep(100);
  }
}

itest('a CSMS whose certificate comes from another CA is refused', async (ctx) => {
  // The CSMS presents a certificate of a second, unrelated dev PKI; the station
  // trusts only the root CA of the first one.
  const csms = await ctx.startCsms({ pki: 'other' });
  const tlsErrors = [];
  csms.events.on('tlsClientError', (e) => tlsErrors.push(e));
  await ctx.startStation({ caPki: 'main' });

  await ctx.waitForLog(/TLS handshake: .*certificate verify failed/i, 6000);
  // It keeps trying (once a second with the test's back-off settings), in vain.
  await waitUntil(() => tlsErrors.length >= 3, 8000, () => `${tlsErrors.length} handshakes seen`);
  assert.equal(csms.messages.length, 0, 'not a single OCPP message may pass');
  assert.equal(csms.clients.size, 0);
  const log = ctx.stationLog();
  assert.match(log, /unable to get local issuer certificate|certificate verify failed/i);
  assert.doesNotMatch(log, /BootNotification: Accepted/);
  assert.ok(!log.includes(ctx.password), 'the password is never logged');
  const st = await ctx.status();
  assert.equal(st.online, false);
});

itest('a CSMS certificate for another host name is refused, even from a trusted CA', async (ctx) => {
  // A PKI whose server certificate names csms.other.example; the station trusts
  // its root CA but connects to localhost.
  await pki('otherhost', ['--csms-host', 'csms.other.example']);
  const csms = await ctx.startCsms({ pki: 'otherhost' });
  await ctx.startStation({ caPki: 'otherhost' });
  await ctx.waitForLog(/TLS handshake: .*certificate verify failed.*hostname mismatch/i, 6000);
  assert.equal(csms.messages.length, 0, 'not a single OCPP message may pass');
  assert.equal((await ctx.status()).online, false);
});

itest('a wrong password: the CSMS answers 401 and the station keeps retrying', async (ctx) => {
  const csms = await ctx.startCsms({ password: 'not-the-password-of-this-station' });
  const rejected = [];
  csms.events.on('authRejected', (e) => rejected.push(e));
  await ctx.startStation();

  await ctx.waitForLog(/401/, 6000);
  await waitUntil(() => rejected.length >= 3, 8000, () => `${rejected.length} attempts seen`);
  for (const r of rejected) {
    assert.equal(r.identity, ctx.identity);
    assert.equal(r.code, 401);
  }
  assert.equal(csms.messages.length, 0, 'no OCPP message without authentication');
  const log = ctx.stationLog();
  assert.match(log, /refused our credentials \(HTTP 401\)/);
  assert.ok(!log.includes(ctx.password), 'the password is never logged');
  assert.equal((await ctx.status()).online, false);

  // The same station gets in once the CSMS knows its password.
  await csms.close();
  const good = await ctx.startCsms({ port: csms.port });
  assert.equal(good.port, csms.port);
  await ctx.waitBooted({ timeoutMs: 10000 });
});
