// Reset from the CSMS: Immediate, and OnIdle while a transaction runs.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const { itest, isCall, sleep } = require('./lib/harness');

// Open descriptors of a process that are sockets (Linux /proc).
function socketCount(pid) {
  let n = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      /* closed meanwhile */
    }
  }
  return n;
}

itest('Reset Immediate: the station reboots and says RemoteReset', async (ctx) => {
  const firstBoot = await ctx.boot();
  assert.equal(firstBoot.payload.reason, 'PowerUp');
  const pid = ctx.child.pid;
  await sleep(200);
  const socketsBefore = socketCount(pid);

  // A reset of one EVSE is not supported.
  assert.equal((await ctx.call('Reset', { type: 'Immediate', evseId: 1 })).status, 'Rejected');
  await ctx.expectNone('BootNotification', 500);

  // Immediate, then OnIdle while idle: both reset at once.
  for (const type of ['Immediate', 'OnIdle']) {
    const from = ctx.mark();
    const res = await ctx.call('Reset', { type });
    assert.deepEqual(res, { status: 'Accepted' });
    const boot = await ctx.waitBooted({ from, timeoutMs: 10000 });
    assert.equal(boot.payload.reason, 'RemoteReset');
    assert.equal(boot.payload.chargingStation.serialNumber, ctx.serial);
    assert.equal(ctx.child?.pid, pid, 'the daemon restarts in place');
  }
  // The simulator socket is back, and the station is online.
  await ctx.waitStatus((s) => s.online, 5000, 'online after reset');
  // The old connections did not survive the restart (no descriptor leak; a
  // simulator session may take a moment to close, a leaked socket never does).
  const deadline = Date.now() + 3000;
  while (socketCount(pid) > socketsBefore && Date.now() < deadline) await sleep(100);
  assert.ok(
    socketCount(pid) <= socketsBefore,
    `sockets open: ${socketCount(pid)} after two resets, ${socketsBefore} before`,
  );

  // A later reconnect (no reset) is a PowerUp again: the reason is used once.
  const from2 = ctx.mark();
  await ctx.restartStation();
  const boot2 = await ctx.waitBooted({ from: from2 });
  assert.equal(boot2.payload.reason, 'PowerUp');
});

itest('Reset OnIdle during a transaction is Scheduled and happens after it ends', async (ctx) => {
  await ctx.boot();
  const token = 'IDLE-RESET-1';
  let from = ctx.mark();
  await ctx.simOk('badge', 2, token);
  await ctx.waitFor('Authorize', { from });
  await ctx.waitStatus((s) => s.evses[1].authorized === true, 5000, 'EVSE 2 authorized');
  await ctx.simOk('plug', 2);
  const started = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Started'), { from });
  const txId = started.payload.transactionInfo.transactionId;
  await ctx.simOk('draw', 2, 6);

  from = ctx.mark();
  const res = await ctx.call('Reset', { type: 'OnIdle' });
  assert.deepEqual(res, { status: 'Scheduled' });

  // Nothing happens while charging: the transaction goes on.
  await ctx.expectNone('BootNotification', 2500, { from });
  const mid = ctx.calls('TransactionEvent', (p) => p.transactionInfo.transactionId === txId).slice(-1)[0];
  assert.notEqual(mid.payload.eventType, 'Ended');
  assert.equal((await ctx.status()).evses[1].transactionId, txId);

  // The driver stops; then the station resets.
  await ctx.simOk('badge', 2, token);
  const ended = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Ended'), { from });
  assert.equal(ended.payload.transactionInfo.transactionId, txId);
  assert.equal(ended.payload.transactionInfo.stoppedReason, 'Local');
  const boot = await ctx.waitBooted({ from, timeoutMs: 10000 });
  assert.equal(boot.payload.reason, 'RemoteReset');
  assert.ok(ctx.csms.messages.indexOf(boot) > ctx.csms.messages.indexOf(ended), 'reset after the transaction ended');

  // Exactly one Ended for the transaction, nothing sent twice.
  const events = ctx.calls('TransactionEvent', (p) => p.transactionInfo.transactionId === txId).map((m) => m.payload);
  assert.equal(events.filter((p) => p.eventType === 'Ended').length, 1);
  assert.deepEqual(
    events.map((p) => p.seqNo),
    events.map((_, i) => i),
  );
  await sleep(200);
  await ctx.waitStatus((s) => s.queued === 0 && s.online, 5000, 'empty outbox after reset');
});

itest('Reset Immediate during a transaction ends it (ImmediateReset) exactly once', async (ctx) => {
  await ctx.boot();
  let from = ctx.mark();
  await ctx.call('RequestStartTransaction', {
    evseId: 1,
    remoteStartId: 31,
    idToken: { idToken: 'RESET-NOW-1', type: 'Central' },
  });
  await ctx.simOk('plug', 1);
  await ctx.simOk('draw', 1, 16);
  const started = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Started'), { from });
  const txId = started.payload.transactionInfo.transactionId;
  await ctx.waitFor(isCall('TransactionEvent', (p) => p.transactionInfo.chargingState === 'Charging'), { from });

  from = ctx.mark();
  assert.deepEqual(await ctx.call('Reset', { type: 'Immediate' }), { status: 'Accepted' });
  const ended = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Ended'), { from });
  assert.equal(ended.payload.transactionInfo.transactionId, txId);
  assert.equal(ended.payload.transactionInfo.stoppedReason, 'ImmediateReset');
  assert.equal(ended.payload.triggerReason, 'ResetCommand');
  const boot = await ctx.waitBooted({ from, timeoutMs: 10000 });
  assert.equal(boot.payload.reason, 'RemoteReset');
  await ctx.waitStatus((s) => s.online && s.queued === 0, 5000, 'online with an empty outbox');

  // No second end (e.g. PowerLoss) after the reboot, seqNo without gaps.
  const events = ctx.calls('TransactionEvent', (p) => p.transactionInfo.transactionId === txId).map((m) => m.payload);
  const unique = new Map(events.map((p) => [p.seqNo, p]));
  assert.deepEqual([...unique.keys()], [...unique.keys()].map((_, i) => i));
  // An event not acknowledged before the reboot may be delivered again after
  // it (at least once), but only unchanged: same seqNo, same content.
  for (const p of events) assert.deepEqual(p, unique.get(p.seqNo), `seqNo ${p.seqNo} re-sent with other content`);
  assert.equal([...unique.values()].filter((p) => p.eventType === 'Ended').length, 1);
  const st = await ctx.status();
  assert.equal(st.evses[0].transactionId, undefined);
});
