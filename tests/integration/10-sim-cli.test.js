// The `chargeguard sim` command-line contract: exit status and messages, and
// the control socket's permissions.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { itest, run, CG_BIN } = require('./lib/harness');

const USAGE = /plug EVSE.*unplug EVSE.*badge EVSE TOKEN/s;

itest('sim: exit status, messages, socket mode', async (ctx) => {
  await ctx.boot();

  // Success: exit 0, "ok" on stdout.
  let r = await ctx.sim('plug', 2);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), 'ok');
  assert.equal(r.stderr, '');
  // The event reaches the control loop within a period; status shows it.
  await ctx.waitStatus((x) => x.evses[1].state === 'B', 3000, 'EVSE 2 plugged');
  r = await ctx.sim('status');
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^ok \{.*\}\n$/);
  const st = JSON.parse(r.stdout.replace(/^ok /, ''));
  assert.equal(st.online, true);
  assert.equal(st.evses.length, 2);
  assert.equal(st.evses[1].state, 'B');
  assert.equal(typeof st.queued, 'number');

  // The station refuses an event: exit 1 and a message on stderr.
  for (const [args, re] of [
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['plug'], /usage: plug EVSE/],
    [['plug', 'x'], /EVSE must be a positive integer/],
    [['plug', 9], /EVSE 9 does not exist/],
    [['draw', 1, 'lots'], /AMPS must be a number/],
    [['badge', 1, 'TOK', 'Bitcoin'], /TYPE must be one of/],
    [['case', 'ajar'], /usage: case open\|close/],
  ]) {
    r = await ctx.sim(...args);
    assert.equal(r.code, 1, `sim ${args.join(' ')}: exit ${r.code}`);
    assert.match(r.stderr, re, `sim ${args.join(' ')}`);
    assert.match(r.stderr, /^error: /);
    assert.equal(r.stdout, '');
  }
  // An unknown command lists the commands there are.
  r = await ctx.sim('frobnicate');
  assert.match(r.stderr, USAGE);

  // Bad usage of the command line itself: non-zero, with usage help.
  r = await run(CG_BIN, ['sim', '--state-dir', ctx.stateDir]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /command is required/);
  assert.match(r.stderr, /--help/);
  r = await run(CG_BIN, ['sim', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, USAGE);
  assert.match(r.stdout, /Exit status/);

  // The control socket is the owner's only.
  const sock = path.join(ctx.stateDir, 'sim.sock');
  const s = fs.statSync(sock);
  assert.ok(s.isSocket());
  assert.equal(s.mode & 0o777, 0o600, `socket mode ${(s.mode & 0o777).toString(8)}`);
  assert.equal(fs.statSync(ctx.stateDir).mode & 0o077, 0, 'state directory closed to group and others');

  // No station on a state directory: exit 2 and a clear message.
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-it-empty-'));
  try {
    r = await run(CG_BIN, ['sim', '--state-dir', empty, 'status']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no station is running with state directory/);
    assert.ok(r.stderr.includes(empty));
    assert.equal(r.stdout, '');
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }

  // After the station stopped: exit 2 as well, and the socket is gone.
  await ctx.stopStation();
  assert.ok(!fs.existsSync(sock), 'the socket file is removed on shutdown');
  r = await ctx.sim('status');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no station is running/);
});
