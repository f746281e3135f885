// Charging while the CSMS is unreachable; the queued TransactionEvents arrive
// in order once it is back.
'use strict';

const assert = require('node:assert/strict');
const { itest, isCall, energyWh } = require('./lib/harness');

itest('offline charge with a cached token; queued events delivered in order afterwards', async (ctx) => {
  const csms1 = await ctx.startCsms();
  await ctx.startStation();
  await ctx.waitBooted();
  const port = csms1.port;
  const token = { idToken: 'CACHED-TOKEN-9', type: 'ISO14443' };

  // Authorized once online (on EVSE 2, no EV there): the answer goes into the cache.
  await ctx.simOk('badge', 2, token.idToken);
  const auth = await ctx.waitFor('Authorize');
  await ctx.replyTo(auth);
  await ctx.waitStatus((s) => s.evses[1].authorized === true, 5000, 'EVSE 2 authorized');

  // The CSMS goes away.
  await csms1.close();
  await ctx.waitStatus((s) => !s.online, 5000, 'station offline');

  // A token the station has never seen is not accepted offline
  // (OfflineTxForUnknownIdEnabled = false).
  await ctx.simOk('plug', 1);
  await ctx.simOk('badge', 1, 'NEVER-SEEN-1');
  await ctx.waitForLog(/ISO14443:\*+-1 not authorized/, 5000);
  let st = await ctx.status();
  assert.equal(st.evses[0].transactionId, undefined);
  assert.equal(st.evses[0].authorized, undefined);
  assert.equal(st.queued, 0);

  // Badge (authorized from the cache), charge, stop - all offline.
  await ctx.simOk('badge', 1, token.idToken);
  st = await ctx.waitStatus((s) => s.evses[0].transactionId, 5000, 'offline transaction started');
  const txId = st.evses[0].transactionId;
  await ctx.simOk('draw', 1, 16);
  await ctx.waitStatus((s) => s.evses[0].state === 'C', 5000, 'charging');
  // Started, Updated(Charging) and at least one periodic Updated (TxUpdatedInterval = 2 s).
  await ctx.waitStatus((s) => s.queued >= 3, 6000, 'a periodic sample queued');
  await ctx.simOk('badge', 1, token.idToken);
  await ctx.waitStatus((s) => !s.evses[0].transactionId, 5000, 'offline transaction ended');
  await ctx.simOk('unplug', 1);
  const queued = (await ctx.status()).queued;
  assert.ok(queued >= 4, `expected Started, Updated(Charging), Updated(periodic), Ended queued, got ${queued}`);

  // A new CSMS on the same address: the station reconnects, boots and delivers.
  const csms2 = await ctx.startCsms({ port });
  assert.equal(csms2.port, port);
  await ctx.waitBooted({ timeoutMs: 10000 });
  const ended = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Ended'), { timeoutMs: 10000 });
  await ctx.replyTo(ended);
  await ctx.waitStatus((s) => s.queued === 0, 5000, 'outbox empty');

  const events = ctx.calls('TransactionEvent', () => true, csms2).map((m) => m.payload);
  assert.equal(events.length, queued, 'every queued event was delivered exactly once');
  events.forEach((p, i) => {
    assert.equal(p.transactionInfo.transactionId, txId);
    assert.equal(p.seqNo, i);
    assert.equal(p.offline, true, `event ${i} (${p.eventType}) must be marked offline`);
  });
  assert.equal(events[0].eventType, 'Started');
  assert.deepEqual(events[0].idToken, token);
  assert.deepEqual(events[0].evse, { id: 1, connectorId: 1 });
  assert.equal(events.at(-1).eventType, 'Ended');
  assert.equal(events.at(-1).transactionInfo.stoppedReason, 'Local');
  assert.ok(events.slice(1, -1).every((p) => p.eventType === 'Updated'));
  assert.ok(events.some((p) => p.triggerReason === 'MeterValuePeriodic'), 'a periodic sample was recorded offline');
  // Timestamps are those of the events, not of the delivery.
  const times = events.map((p) => Date.parse(p.timestamp));
  for (let i = 1; i < times.length; i++) assert.ok(times[i] >= times[i - 1]);
  const reconnected = Date.parse(ctx.calls('BootNotification', () => true, csms2)[0].time);
  assert.ok(times.at(-1) < reconnected, 'Ended happened before the reconnect');
  assert.ok(energyWh(events.at(-1).meterValue) > energyWh(events[0].meterValue), 'energy was delivered');
  // Delivered in order: nothing about this transaction before the boot, and no status while offline reached csms1.
  assert.equal(ctx.calls('TransactionEvent', () => true, csms1).length, 0);
  // The StatusNotifications after the reconnect show the current state.
  const statuses = ctx.calls('StatusNotification', () => true, csms2).map((m) => m.payload);
  assert.ok(statuses.some((p) => p.evseId === 1 && p.connectorStatus === 'Available'));
});

itest('a transaction started offline is stopped when the CSMS rejects its token afterwards', async (ctx) => {
  const csms1 = await ctx.startCsms();
  await ctx.startStation();
  await ctx.waitBooted();
  const token = { idToken: 'STOLEN-CARD-1', type: 'ISO14443' };
  await ctx.simOk('badge', 2, token.idToken);
  await ctx.replyTo(await ctx.waitFor('Authorize'));
  await ctx.waitStatus((s) => s.evses[1].authorized === true, 5000, 'EVSE 2 authorized');

  await csms1.close();
  await ctx.waitStatus((s) => !s.online, 5000, 'station offline');
  await ctx.simOk('plug', 1);
  await ctx.simOk('badge', 1, token.idToken);
  const st = await ctx.waitStatus((s) => s.evses[0].transactionId, 5000, 'offline transaction started');
  const txId = st.evses[0].transactionId;
  await ctx.simOk('draw', 1, 16);

  // Meanwhile the card was blocked: the CSMS says so in its answer to Started.
  await ctx.startCsms({ port: csms1.port, blockedTokens: [token.idToken] });
  await ctx.waitBooted({ timeoutMs: 10000 });
  const ended = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Ended'), { timeoutMs: 8000 });
  const started = ctx.calls('TransactionEvent', (p) => p.eventType === 'Started', ctx.csms)[0];
  assert.equal(started.payload.offline, true);
  assert.equal((await ctx.replyTo(started)).payload.idTokenInfo.status, 'Blocked');
  const ep = ended.payload;
  assert.equal(ep.transactionInfo.transactionId, txId);
  assert.equal(ep.transactionInfo.stoppedReason, 'DeAuthorized');
  assert.equal(ep.triggerReason, 'Deauthorized');
  assert.equal(ep.offline, undefined, 'the stop happened online');
  const seqs = ctx.calls('TransactionEvent', () => true, ctx.csms).map((m) => m.payload.seqNo);
  assert.deepEqual(seqs, seqs.map((_, i) => i));
  await ctx.waitStatus((s) => s.queued === 0, 5000, 'outbox empty');
  // Power to the EV is switched off (the EV stays plugged, not charging).
  const after = await ctx.waitStatus((s) => s.evses[0].powerW === 0, 3000, 'power off');
  assert.equal(after.evses[0].transactionId, undefined);
  assert.equal(after.evses[0].state, 'B');
});
