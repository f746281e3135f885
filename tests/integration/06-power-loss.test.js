// kill -9 in the middle of a transaction: after the restart the transaction is
// ended with PowerLoss, with the next seqNo, and nothing acknowledged is re-sent.
'use strict';

const assert = require('node:assert/strict');
const { itest, isCall, energyWh } = require('./lib/harness');

itest('kill -9 mid-transaction: Ended(PowerLoss) after restart, seqNo without gaps', async (ctx) => {
  await ctx.boot();
  const token = { idToken: 'POWERLOSS-1', type: 'ISO14443' };
  let from = ctx.mark();
  await ctx.simOk('badge', 1, token.idToken);
  await ctx.waitFor('Authorize', { from });
  await ctx.waitStatus((s) => s.evses[0].authorized === true, 5000, 'EVSE 1 authorized');
  await ctx.simOk('plug', 1);
  await ctx.simOk('draw', 1, 32);
  const started = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Started'), { from });
  const txId = started.payload.transactionInfo.transactionId;
  const periodic = await ctx.waitFor(
    isCall('TransactionEvent', (p) => p.triggerReason === 'MeterValuePeriodic'),
    { from, timeoutMs: 8000 },
  );
  // The CSMS acknowledged it; wait until the station has processed the
  // acknowledgements (its outbox is empty).
  await ctx.replyTo(periodic);
  const acked = new Set(
    ctx.csms.messages
      .filter((m) => m.direction === 'out' && m.type === 'RESULT' && m.action === 'TransactionEvent')
      .map((m) => m.id),
  );
  const ackedSeqNos = new Set(
    ctx.calls('TransactionEvent').filter((m) => acked.has(m.id)).map((m) => m.payload.seqNo),
  );
  await ctx.waitStatus((s) => s.queued === 0, 5000, 'acknowledgements processed');
  const before = ctx.calls('TransactionEvent').map((m) => m.payload);
  const lastEnergy = Math.max(...before.map((p) => energyWh(p.meterValue) ?? 0));
  const killedAt = ctx.mark();

  const info = await ctx.kill9();
  assert.equal(info.signal, 'SIGKILL');

  await ctx.startStation();
  await ctx.waitBooted({ from: killedAt, timeoutMs: 10000 });
  const ended = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Ended'), {
    from: killedAt,
    timeoutMs: 10000,
  });
  await ctx.replyTo(ended);
  await ctx.waitStatus((s) => s.queued === 0 && s.online, 5000, 'outbox empty');

  const ep = ended.payload;
  assert.equal(ep.transactionInfo.transactionId, txId);
  assert.equal(ep.transactionInfo.stoppedReason, 'PowerLoss');
  assert.equal(ep.idToken, undefined, 'an Ended the driver did not cause carries no idToken (E06)');
  const endEnergy = energyWh(ep.meterValue);
  assert.equal(typeof endEnergy, 'number');
  assert.ok(endEnergy >= lastEnergy, `Ended energy ${endEnergy} below the last reported ${lastEnergy}`);

  // After the restart: no acknowledged event again; the rest continue the numbering.
  const resent = ctx.csms.messages.slice(killedAt).filter(isCall('TransactionEvent')).map((m) => m.payload);
  for (const p of resent) {
    assert.equal(p.transactionInfo.transactionId, txId);
    assert.ok(!ackedSeqNos.has(p.seqNo), `seqNo ${p.seqNo} was acknowledged before the kill but sent again`);
  }
  // De-duplicated by seqNo: 0..n without gaps, Ended last and once.
  const all = ctx.calls('TransactionEvent').map((m) => m.payload);
  const bySeq = new Map();
  for (const p of all) {
    if (bySeq.has(p.seqNo)) {
      // A re-sent (unacknowledged) event must be the same event.
      assert.deepEqual(p, bySeq.get(p.seqNo), `two different events with seqNo ${p.seqNo}`);
    }
    bySeq.set(p.seqNo, p);
  }
  const seqs = [...bySeq.keys()].sort((a, b) => a - b);
  assert.deepEqual(seqs, seqs.map((_, i) => i), `seqNo gap: ${seqs}`);
  assert.equal(bySeq.get(seqs.at(-1)).eventType, 'Ended');
  assert.equal(all.filter((p) => p.eventType === 'Ended').length, 1);
  const others = all.filter((p) => p.eventType !== 'Ended').map((p) => p.seqNo);
  assert.equal(ep.seqNo, Math.max(...others) + 1, 'Ended takes the next seqNo');
  assert.ok(ep.seqNo > Math.max(...before.map((p) => p.seqNo)));

  // The station is usable again: EVSE 1 is Available and free, and the meter
  // register carries on from where it was (never backwards).
  const st = await ctx.status();
  assert.equal(st.evses[0].transactionId, undefined);
  assert.equal(st.evses[0].status, 'Available');
  from = ctx.mark();
  await ctx.call('RequestStartTransaction', { evseId: 1, remoteStartId: 2, idToken: token });
  await ctx.simOk('plug', 1);
  const next = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Started'), { from });
  assert.notEqual(next.payload.transactionInfo.transactionId, txId);
  assert.equal(next.payload.seqNo, 0);
  assert.ok(energyWh(next.payload.meterValue) >= endEnergy, 'meter register went backwards');
});

itest('kill -9 with an unacknowledged TransactionEvent: it is re-sent unchanged, then Ended(PowerLoss)', async (ctx) => {
  // This CSMS does not answer TransactionEvents with seqNo >= 1 until released.
  let hold = true;
  let release;
  const released = new Promise((r) => (release = r));
  await ctx.boot({
    csms: {
      handlers: {
        TransactionEvent: async (client, params, c) => {
          if (hold && params.seqNo >= 1) await released;
          return c.callDefault();
        },
      },
    },
  });
  try {
    let from = ctx.mark();
    await ctx.simOk('badge', 1, 'UNACKED-1');
    await ctx.waitFor('Authorize', { from });
    await ctx.waitStatus((s) => s.evses[0].authorized === true, 5000, 'EVSE 1 authorized');
    await ctx.simOk('plug', 1);
    await ctx.simOk('draw', 1, 16);
    const held = await ctx.waitFor(isCall('TransactionEvent', (p) => p.seqNo === 1), { from });
    const txId = held.payload.transactionInfo.transactionId;
    // Periodic samples pile up behind the unanswered event.
    await ctx.waitStatus((s) => s.queued >= 3, 8000, 'events queued behind the unanswered one');
    const killedAt = ctx.mark();
    await ctx.kill9();
    hold = false;
    release();

    await ctx.startStation();
    await ctx.waitBooted({ from: killedAt, timeoutMs: 10000 });
    const ended = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Ended'), {
      from: killedAt,
      timeoutMs: 10000,
    });
    await ctx.replyTo(ended);
    await ctx.waitStatus((s) => s.queued === 0, 5000, 'outbox empty');

    const after = ctx.csms.messages.slice(killedAt).filter(isCall('TransactionEvent')).map((m) => m.payload);
    assert.deepEqual(after[0], held.payload, 'the unacknowledged event is re-sent first, unchanged');
    assert.equal(ctx.calls('TransactionEvent', (p) => p.seqNo === 0).length, 1, 'the acknowledged Started is not re-sent');
    after.forEach((p, i) => {
      assert.equal(p.transactionInfo.transactionId, txId);
      assert.equal(p.seqNo, i + 1, 'consecutive seqNo after the restart');
    });
    assert.equal(after.at(-1).eventType, 'Ended');
    assert.equal(after.at(-1).transactionInfo.stoppedReason, 'PowerLoss');
    assert.equal(after.filter((p) => p.eventType === 'Ended').length, 1);
  } finally {
    release();
  }
});
