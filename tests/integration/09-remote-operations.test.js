// Remote operations: TriggerMessage, ChangeAvailability, UnlockConnector,
// ClearCache, SendLocalList / GetLocalListVersion, GetTransactionStatus, DataTransfer.
'use strict';

const assert = require('node:assert/strict');
const { itest, isCall, energyWh, sampled, assertTimestamp } = require('./lib/harness');

itest('TriggerMessage', async (ctx) => {
  await ctx.boot();

  // StatusNotification for one connector: exactly that one.
  let from = ctx.mark();
  assert.deepEqual(
    await ctx.call('TriggerMessage', { requestedMessage: 'StatusNotification', evse: { id: 2, connectorId: 1 } }),
    { status: 'Accepted' },
  );
  const sn = await ctx.waitFor('StatusNotification', { from });
  assert.equal(sn.payload.evseId, 2);
  assert.equal(sn.payload.connectorId, 1);
  assert.equal(sn.payload.connectorStatus, 'Available');
  assertTimestamp(sn.payload.timestamp);
  await ctx.expectNone('StatusNotification', 300, { from: ctx.csms.messages.indexOf(sn) + 1 });

  // Heartbeat.
  from = ctx.mark();
  assert.deepEqual(await ctx.call('TriggerMessage', { requestedMessage: 'Heartbeat' }), { status: 'Accepted' });
  const hb = await ctx.waitFor('Heartbeat', { from });
  assert.deepEqual(hb.payload, {});

  // MeterValues of EVSE 1.
  from = ctx.mark();
  assert.deepEqual(await ctx.call('TriggerMessage', { requestedMessage: 'MeterValues', evse: { id: 1 } }), {
    status: 'Accepted',
  });
  const mv = await ctx.waitFor('MeterValues', { from });
  assert.equal(mv.payload.evseId, 1);
  assert.equal(typeof energyWh(mv.payload.meterValue), 'number');
  assert.equal(sampled(mv.payload.meterValue, 'Energy.Active.Import.Register').context, 'Trigger');
  assertTimestamp(mv.payload.meterValue[0].timestamp);
  await ctx.expectNone('MeterValues', 300, { from: ctx.csms.messages.indexOf(mv) + 1 });

  // BootNotification after the boot was accepted: Rejected, and no boot is sent.
  from = ctx.mark();
  assert.equal((await ctx.call('TriggerMessage', { requestedMessage: 'BootNotification' })).status, 'Rejected');
  // TransactionEvent without a transaction, or for an EVSE that does not exist: Rejected.
  assert.equal((await ctx.call('TriggerMessage', { requestedMessage: 'TransactionEvent' })).status, 'Rejected');
  assert.equal(
    (await ctx.call('TriggerMessage', { requestedMessage: 'StatusNotification', evse: { id: 9, connectorId: 1 } }))
      .status,
    'Rejected',
  );
  // A message this station cannot send on request.
  assert.equal(
    (await ctx.call('TriggerMessage', { requestedMessage: 'SignV2GCertificate' })).status,
    'NotImplemented',
  );
  await ctx.expectNone('BootNotification', 300, { from });

  // TransactionEvent during a transaction: an Updated with triggerReason Trigger.
  from = ctx.mark();
  await ctx.call('RequestStartTransaction', { evseId: 1, remoteStartId: 1, idToken: { idToken: 'T1', type: 'Central' } });
  await ctx.simOk('plug', 1);
  const started = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Started'), { from });
  assert.deepEqual(await ctx.call('TriggerMessage', { requestedMessage: 'TransactionEvent', evse: { id: 1 } }), {
    status: 'Accepted',
  });
  const trig = await ctx.waitFor(isCall('TransactionEvent', (p) => p.triggerReason === 'Trigger'), { from });
  assert.equal(trig.payload.eventType, 'Updated');
  assert.equal(trig.payload.transactionInfo.transactionId, started.payload.transactionInfo.transactionId);
  assert.equal(trig.payload.seqNo, 1);
});

itest('ChangeAvailability: Inoperative, badge ignored, Operative; scheduled during a transaction; persisted', async (ctx) => {
  await ctx.boot();
  const statusOf = (evse, from) =>
    ctx.waitFor(isCall('StatusNotification', (p) => p.evseId === evse), { from });

  // The whole station Inoperative: every connector Unavailable.
  let from = ctx.mark();
  assert.deepEqual(await ctx.call('ChangeAvailability', { operationalStatus: 'Inoperative' }), { status: 'Accepted' });
  const unavailable1 = await statusOf(1, from);
  assert.equal(unavailable1.payload.connectorStatus, 'Unavailable');
  assert.equal((await statusOf(2, from)).payload.connectorStatus, 'Unavailable');
  // The station answered the request before it reported the change it caused.
  const answer = ctx.csms.messages.findIndex((m, i) => i >= from && m.direction === 'in' && m.type === 'RESULT' && m.action === 'ChangeAvailability');
  assert.ok(answer >= 0 && answer < ctx.csms.messages.indexOf(unavailable1), 'ChangeAvailability answered after its StatusNotification');

  // A driver's badge is ignored: no Authorize, no authorization, no transaction.
  from = ctx.mark();
  await ctx.simOk('badge', 1, 'IGNORED-1');
  await ctx.simOk('plug', 1);
  await ctx.expectNone((m) => m.direction === 'in' && m.type === 'CALL' && m.action !== 'StatusNotification', 1000, { from });
  let st = await ctx.status();
  assert.equal(st.evses[0].authorized, undefined);
  assert.equal(st.evses[0].transactionId, undefined);
  // Remote start is refused too.
  const rs = await ctx.call('RequestStartTransaction', {
    evseId: 1,
    remoteStartId: 5,
    idToken: { idToken: 'IGNORED-2', type: 'Central' },
  });
  assert.equal(rs.status, 'Rejected');
  from = ctx.mark();
  await ctx.simOk('unplug', 1);
  await statusOf(1, from).then((m) => assert.equal(m.payload.connectorStatus, 'Unavailable'));

  // Operative again: Available.
  from = ctx.mark();
  assert.deepEqual(await ctx.call('ChangeAvailability', { operationalStatus: 'Operative' }), { status: 'Accepted' });
  assert.equal((await statusOf(1, from)).payload.connectorStatus, 'Available');
  assert.equal((await statusOf(2, from)).payload.connectorStatus, 'Available');

  // EVSE 1 Inoperative during a transaction: Scheduled; Unavailable once it ended.
  from = ctx.mark();
  await ctx.call('RequestStartTransaction', { evseId: 1, remoteStartId: 6, idToken: { idToken: 'T6', type: 'Central' } });
  await ctx.simOk('plug', 1);
  const started = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Started'), { from });
  assert.deepEqual(await ctx.call('ChangeAvailability', { operationalStatus: 'Inoperative', evse: { id: 1 } }), {
    status: 'Scheduled',
  });
  st = await ctx.status();
  assert.equal(st.evses[0].transactionId, started.payload.transactionInfo.transactionId, 'the transaction goes on');
  from = ctx.mark();
  await ctx.call('RequestStopTransaction', { transactionId: started.payload.transactionInfo.transactionId });
  await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Ended'), { from });
  await ctx.simOk('unplug', 1);
  await ctx.waitFor(isCall('StatusNotification', (p) => p.evseId === 1 && p.connectorStatus === 'Unavailable'), {
    from,
  });
  assert.equal(ctx.calls('StatusNotification', (p) => p.evseId === 2).length, 3, 'EVSE 2 untouched');

  // The availability survives a restart.
  from = ctx.mark();
  await ctx.restartStation();
  await ctx.waitBooted({ from });
  const after = ctx.csms.messages.slice(from).filter(isCall('StatusNotification')).map((m) => m.payload);
  assert.equal(after.find((p) => p.evseId === 1).connectorStatus, 'Unavailable');
  assert.equal(after.find((p) => p.evseId === 2).connectorStatus, 'Available');
  // Unknown EVSE: Rejected.
  assert.equal((await ctx.call('ChangeAvailability', { operationalStatus: 'Operative', evse: { id: 7 } })).status, 'Rejected');
});

itest('UnlockConnector, ClearCache, GetTransactionStatus, DataTransfer', async (ctx) => {
  await ctx.boot();

  assert.deepEqual(await ctx.call('UnlockConnector', { evseId: 1, connectorId: 1 }), { status: 'Unlocked' });
  assert.deepEqual(await ctx.call('UnlockConnector', { evseId: 5, connectorId: 1 }), { status: 'UnknownConnector' });
  assert.deepEqual(await ctx.call('UnlockConnector', { evseId: 1, connectorId: 3 }), { status: 'UnknownConnector' });

  // Authorization cache: a second badge is accepted from the cache (no Authorize);
  // after ClearCache the CSMS is asked again.
  const token = 'CACHE-ME-1';
  let from = ctx.mark();
  await ctx.simOk('badge', 2, token);
  await ctx.replyTo(await ctx.waitFor('Authorize', { from }));
  await ctx.waitStatus((s) => s.evses[1].authorized === true, 5000, 'EVSE 2 authorized');
  from = ctx.mark();
  await ctx.simOk('badge', 1, token);
  await ctx.waitStatus((s) => s.evses[0].authorized === true, 5000, 'EVSE 1 authorized from the cache');
  await ctx.expectNone('Authorize', 300, { from });
  assert.deepEqual(await ctx.call('ClearCache', {}), { status: 'Accepted' });
  assert.ok(
    (await ctx.auditExport()).records.some((r) => r.type === 'AuthorizationChanged' && r.details.change === 'authorizationCacheCleared'),
    'ClearCache leaves an AuthorizationChanged record',
  );
  from = ctx.mark();
  await ctx.simOk('unplug', 1); // drops EVSE 1's authorization
  await ctx.simOk('badge', 1, token);
  const again = await ctx.waitFor('Authorize', { from });
  assert.deepEqual(again.payload, { idToken: { idToken: token, type: 'ISO14443' } });

  // A transaction on EVSE 1 (authorized above): unlock refused while it runs.
  from = ctx.mark();
  await ctx.waitStatus((s) => s.evses[0].authorized === true, 5000, 'EVSE 1 authorized');
  await ctx.simOk('plug', 1);
  const started = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Started'), { from });
  const txId = started.payload.transactionInfo.transactionId;
  assert.deepEqual(await ctx.call('UnlockConnector', { evseId: 1, connectorId: 1 }), {
    status: 'OngoingAuthorizedTransaction',
  });
  await ctx.replyTo(started);
  await ctx.waitStatus((s) => s.queued === 0, 5000, 'outbox empty');

  // GetTransactionStatus
  assert.deepEqual(await ctx.call('GetTransactionStatus', { transactionId: txId }), {
    ongoingIndicator: true,
    messagesInQueue: false,
  });
  assert.deepEqual(await ctx.call('GetTransactionStatus', {}), { messagesInQueue: false });
  assert.deepEqual(await ctx.call('GetTransactionStatus', { transactionId: 'unknown-tx' }), {
    ongoingIndicator: false,
    messagesInQueue: false,
  });
  from = ctx.mark();
  await ctx.simOk('badge', 1, token);
  await ctx.replyTo(await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Ended'), { from }));
  await ctx.waitStatus((s) => s.queued === 0, 5000, 'outbox empty');
  assert.deepEqual(await ctx.call('GetTransactionStatus', { transactionId: txId }), {
    ongoingIndicator: false,
    messagesInQueue: false,
  });

  // DataTransfer: no vendor extensions.
  assert.deepEqual(await ctx.call('DataTransfer', { vendorId: 'com.example', messageId: 'x', data: { a: 1 } }), {
    status: 'UnknownVendorId',
  });
});

itest('SendLocalList Full/Differential and GetLocalListVersion', async (ctx) => {
  await ctx.boot();
  assert.deepEqual(await ctx.call('GetLocalListVersion', {}), { versionNumber: 0 });

  const entry = (id, status) => ({ idToken: { idToken: id, type: 'ISO14443' }, idTokenInfo: { status } });
  assert.deepEqual(
    await ctx.call('SendLocalList', {
      versionNumber: 3,
      updateType: 'Full',
      localAuthorizationList: [entry('LIST-A', 'Accepted'), entry('LIST-B', 'Blocked')],
    }),
    { status: 'Accepted' },
  );
  assert.deepEqual(await ctx.call('GetLocalListVersion', {}), { versionNumber: 3 });

  // Differential: add one, remove one.
  assert.deepEqual(
    await ctx.call('SendLocalList', {
      versionNumber: 4,
      updateType: 'Differential',
      localAuthorizationList: [entry('LIST-C', 'Accepted'), { idToken: { idToken: 'LIST-B', type: 'ISO14443' } }],
    }),
    { status: 'Accepted' },
  );
  assert.deepEqual(await ctx.call('GetLocalListVersion', {}), { versionNumber: 4 });

  // A differential update that is not newer than the list: VersionMismatch, list unchanged.
  for (const versionNumber of [4, 2]) {
    assert.deepEqual(
      await ctx.call('SendLocalList', {
        versionNumber,
        updateType: 'Differential',
        localAuthorizationList: [entry('LIST-D', 'Accepted')],
      }),
      { status: 'VersionMismatch' },
    );
  }
  assert.deepEqual(await ctx.call('GetLocalListVersion', {}), { versionNumber: 4 });
  const entries = await ctx.call('GetVariables', {
    getVariableData: [{ component: { name: 'LocalAuthListCtrlr' }, variable: { name: 'Entries' } }],
  });
  assert.equal(entries.getVariableResult[0].attributeValue, '2', 'LIST-A and LIST-C');

  // A listed token is accepted locally (LocalPreAuthorize): no Authorize.
  const from = ctx.mark();
  await ctx.simOk('badge', 1, 'LIST-C');
  await ctx.waitStatus((s) => s.evses[0].authorized === true, 5000, 'EVSE 1 authorized by the local list');
  await ctx.expectNone('Authorize', 300, { from });

  // A full update to an empty list.
  assert.deepEqual(await ctx.call('SendLocalList', { versionNumber: 5, updateType: 'Full' }), { status: 'Accepted' });
  assert.deepEqual(await ctx.call('GetLocalListVersion', {}), { versionNumber: 5 });

  // Each accepted update is an AuthorizationChanged audit record (LOG-1), without badge ids;
  // refused ones (VersionMismatch) change nothing and leave none.
  const { records } = await ctx.auditExport();
  const changes = records.filter((r) => r.type === 'AuthorizationChanged');
  assert.deepEqual(
    changes.map((r) => [r.details.change, r.details.updateType, r.details.versionNumber, r.details.entriesNow]),
    [
      ['localListUpdated', 'Full', 3, 2],
      ['localListUpdated', 'Differential', 4, 2],
      ['localListUpdated', 'Full', 5, 0],
    ],
  );
  for (const r of changes) {
    assert.equal(r.source.interface, 'Wan');
    assert.ok(!/LIST-[A-D]/.test(r.line), 'no badge id in the record');
  }
});
