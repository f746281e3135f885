// RequestStartTransaction / RequestStopTransaction from the CSMS.
'use strict';

const assert = require('node:assert/strict');
const { itest, isCall, energyWh } = require('./lib/harness');

itest('remote start before the EV is plugged, remote stop, unknown transaction id', async (ctx) => {
  await ctx.boot();
  const token = { idToken: 'REMOTE-0001', type: 'Central' };

  // RequestStartTransaction on EVSE 1: accepted; the transaction starts when the EV plugs in.
  let from = ctx.mark();
  const res = await ctx.call('RequestStartTransaction', { evseId: 1, remoteStartId: 4711, idToken: token });
  assert.equal(res.status, 'Accepted');
  assert.equal(res.transactionId, undefined, 'no transaction yet: no EV');
  await ctx.waitStatus((s) => s.evses[0].authorized === true, 5000, 'EVSE 1 authorized');
  await ctx.expectNone('TransactionEvent', 300, { from });

  await ctx.simOk('plug', 1);
  const started = await ctx.waitFor('TransactionEvent', { from });
  const sp = started.payload;
  assert.equal(sp.eventType, 'Started');
  assert.equal(sp.seqNo, 0);
  assert.equal(sp.triggerReason, 'RemoteStart');
  assert.equal(sp.transactionInfo.remoteStartId, 4711);
  assert.deepEqual(sp.idToken, token);
  assert.deepEqual(sp.evse, { id: 1, connectorId: 1 });
  assert.equal(typeof energyWh(sp.meterValue), 'number');
  const txId = sp.transactionInfo.transactionId;
  assert.equal(ctx.calls('Authorize').length, 0, 'AuthorizeRemoteStart is false: no Authorize');

  await ctx.simOk('draw', 1, 10);
  await ctx.waitFor(isCall('TransactionEvent', (p) => p.transactionInfo.chargingState === 'Charging'), { from });

  // RequestStopTransaction: Ended, Remote.
  from = ctx.mark();
  const stop = await ctx.call('RequestStopTransaction', { transactionId: txId });
  assert.deepEqual(stop, { status: 'Accepted' });
  const ended = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Ended'), { from });
  const ep = ended.payload;
  assert.equal(ep.transactionInfo.transactionId, txId);
  assert.equal(ep.transactionInfo.stoppedReason, 'Remote');
  assert.equal(ep.triggerReason, 'RemoteStop');
  assert.equal(ep.transactionInfo.remoteStartId, undefined, 'remoteStartId only in Started');
  const seqs = ctx.calls('TransactionEvent').map((m) => m.payload.seqNo);
  assert.deepEqual(seqs, seqs.map((_, i) => i));
  await ctx.waitStatus((s) => s.evses[0].transactionId === undefined && s.queued === 0, 5000, 'transaction gone');

  // Stopping again (the transaction is over) and an unknown id: Rejected.
  assert.deepEqual(await ctx.call('RequestStopTransaction', { transactionId: txId }), { status: 'Rejected' });
  assert.deepEqual(await ctx.call('RequestStopTransaction', { transactionId: 'no-such-transaction' }), {
    status: 'Rejected',
  });
});

itest('remote start with the EV already plugged returns the transaction id', async (ctx) => {
  await ctx.boot();
  await ctx.simOk('plug', 2);
  await ctx.waitFor(isCall('StatusNotification', (p) => p.evseId === 2 && p.connectorStatus === 'Occupied'));

  const from = ctx.mark();
  const res = await ctx.call('RequestStartTransaction', {
    evseId: 2,
    remoteStartId: 99,
    idToken: { idToken: 'APP-USER-7', type: 'eMAID' },
  });
  assert.equal(res.status, 'Accepted');
  const started = await ctx.waitFor('TransactionEvent', { from });
  assert.equal(started.payload.eventType, 'Started');
  assert.equal(started.payload.triggerReason, 'RemoteStart');
  assert.equal(started.payload.transactionInfo.remoteStartId, 99);
  assert.deepEqual(started.payload.evse, { id: 2, connectorId: 1 });
  assert.equal(res.transactionId, started.payload.transactionInfo.transactionId);

  // A second start on the busy EVSE is rejected and names the running transaction.
  const again = await ctx.call('RequestStartTransaction', {
    evseId: 2,
    remoteStartId: 100,
    idToken: { idToken: 'APP-USER-7', type: 'eMAID' },
  });
  assert.equal(again.status, 'Rejected');
  assert.equal(again.transactionId, res.transactionId);

  const stop = await ctx.call('RequestStopTransaction', { transactionId: res.transactionId });
  assert.equal(stop.status, 'Accepted');
  const ended = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Ended'), { from });
  assert.equal(ended.payload.transactionInfo.stoppedReason, 'Remote');
  assert.equal(ended.payload.seqNo, 1);
});
