// COM-1: security profile 1 (plain ws://) is never a default: it needs the
// explicit opt-in csms.allow_insecure_transport, and then warns at every start.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const { itest, run, CG_BIN } = require('./lib/harness');

itest('profile 1 without the opt-in is refused before anything starts', async (ctx) => {
  await ctx.startCsms({ tls: undefined, insecure: true });
  assert.match(ctx.csms.url, /^ws:\/\//);
  const args = ['run', '--state-dir', ctx.stateDir, '--csms-url', ctx.csms.url, '--identity', ctx.identity,
    '--security-profile', '1', '--password-file', ctx.pwFile, '--evse-count', '1'];
  const r = await run(CG_BIN, args, { timeoutMs: 10000 });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /csms\.security_profile: profile 1 sends everything unencrypted; it needs csms\.allow_insecure_transport = true/);
  assert.equal(ctx.csms.messages.length, 0, 'nothing reached the CSMS');
});

itest('profile 1 with the opt-in connects over ws:// and warns loudly', async (ctx) => {
  await ctx.startCsms({ tls: undefined, insecure: true });
  fs.appendFileSync(ctx.configFile, '\n[csms]\nallow_insecure_transport = true\n');
  await ctx.startStation({ securityProfile: 1 });
  await ctx.waitBooted();
  assert.match(ctx.stationLog(), /WARN .*SECURITY PROFILE 1: OCPP traffic and the password travel UNENCRYPTED/);
});
