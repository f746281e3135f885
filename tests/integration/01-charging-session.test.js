// A driver's whole charging session: boot, status, heartbeat, badge, plug,
// charge, periodic meter values, badge again to stop.
'use strict';

const assert = require('node:assert/strict');
const { itest, isCall, energyWh, sampled, assertTimestamp, sleep } = require('./lib/harness');

const VOLTS = 230;
const PHASES = 3;
const AMPS = 16;
const POWER_W = VOLTS * AMPS * PHASES; // 11040 W
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

itest('local charging session: boot, status, heartbeat, authorize, start, meter values, stop', { csms: { heartbeatInterval: 1 } }, async (ctx) => {
  await ctx.startCsms();
  await ctx.startStation();

  // --- BootNotification
  const boot = await ctx.waitFor('BootNotification');
  assert.equal(boot.identity, ctx.identity);
  assert.equal(boot.payload.reason, 'PowerUp');
  const cs = boot.payload.chargingStation;
  assert.equal(cs.serialNumber, ctx.serial);
  assert.equal(typeof cs.model, 'string');
  assert.ok(cs.model.length > 0 && cs.model.length <= 20);
  assert.equal(typeof cs.vendorName, 'string');
  assert.ok(cs.vendorName.length > 0);
  assert.equal(typeof cs.firmwareVersion, 'string');
  const bootIdx = ctx.csms.messages.indexOf(boot);
  const bootReply = await ctx.replyTo(boot);
  assert.equal(bootReply.payload.status, 'Accepted');
  assert.equal(bootReply.payload.interval, 1);

  // --- StatusNotification for every connector, after the boot was accepted
  const statuses = await ctx.waitForCount('StatusNotification', 2, { from: bootIdx });
  const byEvse = new Map(statuses.map((m) => [m.payload.evseId, m.payload]));
  assert.deepEqual([...byEvse.keys()].sort(), [1, 2]);
  for (const [evse, p] of byEvse) {
    assert.equal(p.connectorId, 1, `EVSE ${evse}`);
    assert.equal(p.connectorStatus, 'Available', `EVSE ${evse}`);
    assertTimestamp(p.timestamp);
  }
  for (const s of statuses) {
    assert.ok(ctx.csms.messages.indexOf(s) > ctx.csms.messages.indexOf(bootReply), 'status before boot accepted');
  }

  // --- Heartbeat every second (interval from the BootNotification response)
  const hbs = await ctx.waitForCount('Heartbeat', 2, { timeoutMs: 5000 });
  for (const hb of hbs) assert.deepEqual(hb.payload, {});
  const gap = Date.parse(hbs[1].time) - Date.parse(hbs[0].time);
  assert.ok(gap >= 500 && gap <= 2500, `heartbeat gap ${gap} ms, expected about 1000`);

  // --- badge: Authorize
  const token = { idToken: 'DRIVER0001', type: 'ISO14443' };
  let from = ctx.mark();
  await ctx.simOk('badge', 1, token.idToken);
  const auth = await ctx.waitFor('Authorize', { from });
  assert.deepEqual(auth.payload, { idToken: token });
  assert.equal((await ctx.replyTo(auth)).payload.idTokenInfo.status, 'Accepted');
  await ctx.waitStatus((s) => s.evses[0].authorized === true, 5000, 'EVSE 1 authorized');

  // --- plug: TransactionEvent Started
  from = ctx.mark();
  await ctx.simOk('plug', 1);
  const started = await ctx.waitFor('TransactionEvent', { from });
  const sp = started.payload;
  assert.equal(sp.eventType, 'Started');
  assert.equal(sp.seqNo, 0);
  assert.equal(sp.triggerReason, 'CablePluggedIn');
  assert.deepEqual(sp.idToken, token);
  assert.deepEqual(sp.evse, { id: 1, connectorId: 1 });
  assert.equal(sp.offline, undefined);
  assertTimestamp(sp.timestamp);
  const txId = sp.transactionInfo.transactionId;
  assert.match(txId, UUID);
  assert.equal(sp.transactionInfo.chargingState, 'EVConnected');
  const e0 = energyWh(sp.meterValue);
  assert.equal(typeof e0, 'number', 'Started carries Energy.Active.Import.Register');
  const svStart = sampled(sp.meterValue, 'Energy.Active.Import.Register');
  assert.equal(svStart.context, 'Transaction.Begin');
  assert.equal(svStart.unitOfMeasure.unit, 'Wh');
  assertTimestamp(sp.meterValue[0].timestamp);
  const occupied = await ctx.waitFor(isCall('StatusNotification', (p) => p.evseId === 1), { from });
  assert.equal(occupied.payload.connectorStatus, 'Occupied');
  const st = await ctx.status();
  assert.equal(st.evses[0].transactionId, txId);

  // --- draw 16 A: Updated, Charging
  from = ctx.mark();
  await ctx.simOk('draw', 1, AMPS);
  const charging = await ctx.waitFor('TransactionEvent', { from });
  assert.equal(charging.payload.eventType, 'Updated');
  assert.equal(charging.payload.triggerReason, 'ChargingStateChanged');
  assert.equal(charging.payload.transactionInfo.transactionId, txId);
  assert.equal(charging.payload.transactionInfo.chargingState, 'Charging');
  const tCharging = Date.parse(charging.payload.timestamp);

  // --- periodic Updated (TxUpdatedInterval = 2 s) with increasing energy
  const periodic = await ctx.waitForCount(
    isCall('TransactionEvent', (p) => p.triggerReason === 'MeterValuePeriodic'),
    2,
    { from, timeoutMs: 8000 },
  );
  let prev = e0;
  for (const m of periodic) {
    const p = m.payload;
    assert.equal(p.eventType, 'Updated');
    assert.equal(p.transactionInfo.transactionId, txId);
    assert.equal(p.transactionInfo.chargingState, 'Charging');
    const sv = sampled(p.meterValue, 'Energy.Active.Import.Register');
    assert.equal(sv.context, 'Sample.Periodic');
    assert.equal(sv.unitOfMeasure.unit, 'Wh');
    const e = energyWh(p.meterValue);
    assert.ok(e > prev, `energy must increase: ${e} after ${prev}`);
    prev = e;
    const power = sampled(p.meterValue, 'Power.Active.Import');
    const current = sampled(p.meterValue, 'Current.Import');
    assert.ok(power && current, 'periodic values carry power and current');
    assert.equal(power.value, POWER_W);
    assert.equal(power.unitOfMeasure.unit, 'W');
    assert.equal(current.value, AMPS);
    assert.equal(current.unitOfMeasure.unit, 'A');
  }
  await sleep(500);

  // --- badge again: Ended, Local
  from = ctx.mark();
  await ctx.simOk('badge', 1, token.idToken);
  const ended = await ctx.waitFor('TransactionEvent', { from });
  const ep = ended.payload;
  assert.equal(ep.eventType, 'Ended');
  assert.equal(ep.triggerReason, 'StopAuthorized');
  assert.equal(ep.transactionInfo.transactionId, txId);
  assert.equal(ep.transactionInfo.stoppedReason, 'Local');
  assert.deepEqual(ep.idToken, token);
  const svEnd = sampled(ep.meterValue, 'Energy.Active.Import.Register');
  assert.equal(svEnd.context, 'Transaction.End');
  const eEnd = energyWh(ep.meterValue);
  assert.ok(eEnd >= prev, `end energy ${eEnd} below last periodic ${prev}`);
  assert.equal(ctx.calls('Authorize').length, 1, 'the stop badge matches the transaction token locally');
  await ctx.replyTo(ended);

  // --- the whole transaction: one id, seqNo 0,1,2,... without gaps or repeats
  const all = ctx.calls('TransactionEvent').map((m) => m.payload);
  assert.ok(all.length >= 5);
  all.forEach((p, i) => {
    assert.equal(p.transactionInfo.transactionId, txId);
    assert.equal(p.seqNo, i, `seqNo of event ${i}`);
  });
  assert.equal(all[0].eventType, 'Started');
  assert.equal(all.at(-1).eventType, 'Ended');
  assert.ok(all.slice(1, -1).every((p) => p.eventType === 'Updated'));
  const times = all.map((p) => Date.parse(p.timestamp));
  for (let i = 1; i < times.length; i++) assert.ok(times[i] >= times[i - 1], 'timestamps in order');

  // --- energy: about 230 V x 16 A x 3 phases over the charging time
  const hours = (Date.parse(ep.timestamp) - tCharging) / 3600000;
  const expected = POWER_W * hours;
  const delivered = eEnd - e0;
  // The station samples its meter once a second: allow 1.5 s of power plus 15 %.
  const tolerance = (POWER_W * 1.5) / 3600 + expected * 0.15;
  assert.ok(
    Math.abs(delivered - expected) <= tolerance,
    `delivered ${delivered.toFixed(1)} Wh, expected ${expected.toFixed(1)} ± ${tolerance.toFixed(1)} Wh`,
  );
  assert.ok(delivered > 5, `delivered only ${delivered} Wh`);

  // Between two periodic samples the energy grows at about the same rate.
  const [a, b] = periodic.map((m) => m.payload);
  const dE = energyWh(b.meterValue) - energyWh(a.meterValue);
  const dH = (Date.parse(b.meterValue[0].timestamp) - Date.parse(a.meterValue[0].timestamp)) / 3600000;
  const tol2 = (POWER_W * 1.1) / 3600 + POWER_W * dH * 0.15;
  assert.ok(Math.abs(dE - POWER_W * dH) <= tol2, `periodic delta ${dE} Wh vs ${(POWER_W * dH).toFixed(1)} ± ${tol2.toFixed(1)}`);

  // --- the connector is Available again after unplugging; the outbox is empty
  from = ctx.mark();
  await ctx.simOk('unplug', 1);
  const avail = await ctx.waitFor(isCall('StatusNotification', (p) => p.evseId === 1), { from });
  assert.equal(avail.payload.connectorStatus, 'Available');
  const final = await ctx.waitStatus((s) => s.queued === 0, 5000, 'outbox empty');
  assert.equal(final.online, true);
  assert.equal(final.evses[0].transactionId, undefined);

  // Badge ids are personal data: the log shows them masked only, at every log level.
  const log = ctx.stationLog();
  assert.ok(!log.includes(token.idToken), 'the full badge id appears in the station log');
  assert.match(log, /ISO14443:\*+01/);
});

itest('debug log: no badge id, no password, no SetVariables value', { logLevel: 'debug' }, async (ctx) => {
  await ctx.boot();
  const secret = 'Zq8-secret-Value-0123456789';
  ctx.csms.setPassword(ctx.identity, secret); // A01: the CSMS expects the new password from now on
  const fromSet = ctx.mark();
  const r = await ctx.call('SetVariables', {
    setVariableData: [
      { component: { name: 'SecurityCtrlr' }, variable: { name: 'BasicAuthPassword' }, attributeValue: secret },
      { component: { name: 'SecurityCtrlr' }, variable: { name: 'OrganizationName' }, attributeValue: secret },
    ],
  });
  assert.equal(r.setVariableResult.length, 2);
  assert.equal(r.setVariableResult[0].attributeStatus, 'Accepted', 'BasicAuthPassword (A01)');
  assert.equal(r.setVariableResult[1].attributeStatus, 'Accepted', 'OrganizationName');
  await ctx.waitBooted({ from: fromSet }); // reconnected with the new password
  await ctx.simOk('plug', 1);
  await ctx.simOk('badge', 1, 'DEBUGTOKEN77');
  await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Started'));
  const log = ctx.stationLog();
  assert.match(log, /DEBUG/, 'the station ran at debug level');
  for (const s of [secret, 'DEBUGTOKEN77', ctx.password]) {
    assert.ok(!log.includes(s), `a secret or badge id reached the debug log: ${s.slice(0, 4)}…`);
  }
});

itest('EV side: unplugging ends the transaction; a fault ends it and shows Faulted', async (ctx) => {
  await ctx.boot();
  const token = { idToken: 'DRIVER0002', type: 'ISO14443' };

  // Plug first, then badge: the transaction starts on authorization.
  let from = ctx.mark();
  await ctx.simOk('plug', 1);
  await ctx.waitFor(isCall('StatusNotification', (p) => p.evseId === 1 && p.connectorStatus === 'Occupied'), { from });
  await ctx.simOk('badge', 1, token.idToken);
  const started = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Started'), { from });
  assert.equal(started.payload.triggerReason, 'Authorized');
  assert.deepEqual(started.payload.idToken, token);
  await ctx.simOk('draw', 1, 16);
  await ctx.waitFor(isCall('TransactionEvent', (p) => p.transactionInfo.chargingState === 'Charging'), { from });

  // The EV stops drawing: SuspendedEV.
  await ctx.simOk('draw', 1, 0);
  const suspended = await ctx.waitFor(
    isCall('TransactionEvent', (p) => p.transactionInfo.chargingState === 'SuspendedEV'),
    { from },
  );
  assert.equal(suspended.payload.triggerReason, 'ChargingStateChanged');

  // Unplugged at the EV side: Ended, EVDisconnected; connector Available.
  from = ctx.mark();
  await ctx.simOk('unplug', 1);
  const ended = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Ended'), { from });
  assert.equal(ended.payload.transactionInfo.transactionId, started.payload.transactionInfo.transactionId);
  assert.equal(ended.payload.transactionInfo.stoppedReason, 'EVDisconnected');
  assert.equal(ended.payload.transactionInfo.chargingState, 'Idle');
  assert.equal(ended.payload.triggerReason, 'EVCommunicationLost');
  const avail = await ctx.waitFor(isCall('StatusNotification', (p) => p.evseId === 1), { from });
  assert.equal(avail.payload.connectorStatus, 'Available');

  // A fault while charging on EVSE 2: Ended (Other), Faulted; cleared: Occupied, then Available.
  from = ctx.mark();
  await ctx.call('RequestStartTransaction', { evseId: 2, remoteStartId: 8, idToken: token });
  await ctx.simOk('plug', 2);
  await ctx.simOk('draw', 2, 16);
  const s2 = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Started'), { from });
  await ctx.waitFor(isCall('TransactionEvent', (p) => p.transactionInfo.chargingState === 'Charging'), { from });
  from = ctx.mark();
  await ctx.simOk('fault', 2);
  const e2 = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Ended'), { from });
  assert.equal(e2.payload.transactionInfo.transactionId, s2.payload.transactionInfo.transactionId);
  assert.equal(e2.payload.transactionInfo.stoppedReason, 'Other');
  assert.equal(e2.payload.triggerReason, 'AbnormalCondition');
  const faulted = await ctx.waitFor(isCall('StatusNotification', (p) => p.evseId === 2), { from });
  assert.equal(faulted.payload.connectorStatus, 'Faulted');
  await ctx.waitStatus((s) => s.evses[1].powerW === 0, 3000, 'no power while faulted');
  // No new transaction on a faulted EVSE.
  const rs = await ctx.call('RequestStartTransaction', { evseId: 2, remoteStartId: 9, idToken: token });
  assert.equal(rs.status, 'Rejected');
  from = ctx.mark();
  await ctx.simOk('clear-fault', 2);
  assert.equal((await ctx.waitFor(isCall('StatusNotification', (p) => p.evseId === 2), { from })).payload.connectorStatus, 'Occupied');
  await ctx.simOk('unplug', 2);
  await ctx.waitFor(isCall('StatusNotification', (p) => p.evseId === 2 && p.connectorStatus === 'Available'), { from });
  await ctx.expectNone(isCall('TransactionEvent'), 500, { from });
});
