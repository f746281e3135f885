// Device model over OCPP: GetVariables, SetVariables (persisted), GetBaseReport.
'use strict';

const assert = require('node:assert/strict');
const { itest, isCall, assertTimestamp } = require('./lib/harness');

const v = (component, variable, extra = {}) => ({
  component: { name: component },
  variable: { name: variable },
  ...extra,
});

itest('GetVariables and SetVariables; a set value survives a restart', { csms: { heartbeatInterval: 30 } }, async (ctx) => {
  await ctx.boot();

  const get = await ctx.call('GetVariables', {
    getVariableData: [
      v('OCPPCommCtrlr', 'HeartbeatInterval'),
      v('NoSuchCtrlr', 'Whatever'),
      v('OCPPCommCtrlr', 'NoSuchVariable'),
      v('SecurityCtrlr', 'BasicAuthPassword'),
      v('SecurityCtrlr', 'Identity'),
      v('SampledDataCtrlr', 'TxUpdatedInterval'),
    ],
  });
  const r = get.getVariableResult;
  assert.equal(r.length, 6);
  assert.deepEqual(r[0], { ...v('OCPPCommCtrlr', 'HeartbeatInterval'), attributeStatus: 'Accepted', attributeValue: '30' });
  assert.deepEqual(r[1], { ...v('NoSuchCtrlr', 'Whatever'), attributeStatus: 'UnknownComponent' });
  assert.deepEqual(r[2], { ...v('OCPPCommCtrlr', 'NoSuchVariable'), attributeStatus: 'UnknownVariable' });
  // WriteOnly: never readable, not even its length.
  assert.deepEqual(r[3], { ...v('SecurityCtrlr', 'BasicAuthPassword'), attributeStatus: 'Rejected' });
  assert.deepEqual(r[4], { ...v('SecurityCtrlr', 'Identity'), attributeStatus: 'Accepted', attributeValue: ctx.identity });
  // The [device_model] table of the configuration file seeds values.
  assert.equal(r[5].attributeValue, '2');

  // Other attribute types than Actual are not supported.
  const target = await ctx.call('GetVariables', {
    getVariableData: [v('OCPPCommCtrlr', 'HeartbeatInterval', { attributeType: 'Target' })],
  });
  assert.equal(target.getVariableResult[0].attributeStatus, 'NotSupportedAttributeType');
  assert.equal(target.getVariableResult[0].attributeType, 'Target');
  assert.equal(target.getVariableResult[0].attributeValue, undefined);

  // A new HeartbeatInterval takes effect at once.
  const from = ctx.mark();
  const hb1 = await ctx.call('SetVariables', {
    setVariableData: [{ ...v('OCPPCommCtrlr', 'HeartbeatInterval'), attributeValue: '1' }],
  });
  assert.equal(hb1.setVariableResult[0].attributeStatus, 'Accepted');
  const beats = await ctx.waitForCount('Heartbeat', 2, { from, timeoutMs: 4000 });
  const gap = Date.parse(beats[1].time) - Date.parse(beats[0].time);
  assert.ok(gap >= 500 && gap <= 2500, `heartbeat gap ${gap} ms after setting 1 s`);

  const set = await ctx.call('SetVariables', {
    setVariableData: [
      { ...v('OCPPCommCtrlr', 'HeartbeatInterval'), attributeValue: '7' },
      { ...v('SecurityCtrlr', 'Identity'), attributeValue: 'OTHER-ID' },
      { ...v('TxCtrlr', 'EVConnectionTimeOut'), attributeValue: 'soon' },
      { ...v('TxCtrlr', 'EVConnectionTimeOut'), attributeValue: '999999' },
      { ...v('NoSuchCtrlr', 'Whatever'), attributeValue: '1' },
      { ...v('SecurityCtrlr', 'BasicAuthPassword'), attributeValue: 'short-pw' },
    ],
  });
  const s = set.setVariableResult;
  assert.equal(s.length, 6);
  assert.equal(s[0].attributeStatus, 'Accepted');
  assert.deepEqual(s[0].component, { name: 'OCPPCommCtrlr' });
  assert.deepEqual(s[0].variable, { name: 'HeartbeatInterval' });
  assert.equal(s[1].attributeStatus, 'Rejected', 'ReadOnly variable');
  assert.equal(s[2].attributeStatus, 'Rejected', 'not an integer');
  assert.equal(s[3].attributeStatus, 'Rejected', 'above maxLimit');
  assert.equal(s[4].attributeStatus, 'UnknownComponent');
  // A password below 16 characters is refused (A01 rotation itself: 19-password-rotation),
  // and the station stays connected with the old one.
  assert.equal(s[5].attributeStatus, 'Rejected');
  assert.equal(s[5].attributeStatusInfo?.reasonCode, 'InvalidValue');

  const after = (
    await ctx.call('GetVariables', {
      getVariableData: [
        v('OCPPCommCtrlr', 'HeartbeatInterval'),
        v('SecurityCtrlr', 'Identity'),
        v('TxCtrlr', 'EVConnectionTimeOut'),
      ],
    })
  ).getVariableResult.map((x) => x.attributeValue);
  assert.deepEqual(after, ['7', ctx.identity, '60']);
  // Heartbeats now every 7 s: none within the next 3 s after the last one.
  await ctx.expectNone('Heartbeat', 3000);
  assert.equal(ctx.calls('BootNotification').length, 1);

  // Restart the station. This CSMS answers the next boot with interval 0 (no
  // heartbeat interval imposed), so the value set above must come back from storage.
  ctx.csms.close();
  await ctx.stopStation();
  await ctx.startCsms({
    handlers: {
      BootNotification: async () => ({ currentTime: new Date().toISOString(), interval: 0, status: 'Accepted' }),
    },
  });
  await ctx.startStation();
  await ctx.waitBooted();
  const persisted = await ctx.call('GetVariables', { getVariableData: [v('OCPPCommCtrlr', 'HeartbeatInterval')] });
  assert.equal(persisted.getVariableResult[0].attributeStatus, 'Accepted');
  assert.equal(persisted.getVariableResult[0].attributeValue, '7');
});

itest('GetBaseReport FullInventory: NotifyReport parts with every controller', async (ctx) => {
  await ctx.boot();
  const from = ctx.mark();
  const res = await ctx.call('GetBaseReport', { requestId: 42, reportBase: 'FullInventory' });
  assert.equal(res.status, 'Accepted');

  // Collect NotifyReport parts until the one without tbc.
  const parts = [];
  for (;;) {
    const m = await ctx.waitFor(isCall('NotifyReport', (p) => p.requestId === 42 && p.seqNo === parts.length), {
      from,
    });
    parts.push(m.payload);
    if (!m.payload.tbc) break;
    assert.ok(parts.length < 50, 'too many report parts');
  }
  assert.ok(parts.length >= 2, 'a full inventory takes more than one message');
  parts.forEach((p, i) => {
    assert.equal(p.requestId, 42);
    assert.equal(p.seqNo, i);
    assertTimestamp(p.generatedAt, 'generatedAt');
    assert.equal(p.generatedAt, parts[0].generatedAt);
    if (i < parts.length - 1) assert.equal(p.tbc, true, `part ${i} must have tbc`);
    else assert.ok(p.tbc === undefined || p.tbc === false, 'last part must not have tbc');
    assert.ok(Array.isArray(p.reportData) && p.reportData.length > 0);
  });
  // No part for another request id, and no extra part after the last.
  assert.equal(ctx.calls('NotifyReport').length, parts.length);

  const data = parts.flatMap((p) => p.reportData);
  const find = (c, n) => data.filter((d) => d.component.name === c && d.variable.name === n);

  const hb = find('OCPPCommCtrlr', 'HeartbeatInterval');
  assert.equal(hb.length, 1);
  assert.equal(hb[0].variableAttribute[0].value, '60');
  assert.equal(hb[0].variableAttribute[0].mutability, 'ReadWrite');
  assert.equal(hb[0].variableCharacteristics.dataType, 'integer');

  const pw = find('SecurityCtrlr', 'BasicAuthPassword');
  assert.equal(pw.length, 1);
  for (const a of pw[0].variableAttribute) {
    assert.equal(a.value, undefined, 'BasicAuthPassword must not be reported');
    assert.equal(a.mutability, 'WriteOnly');
  }
  assert.ok(!JSON.stringify(data).includes(ctx.password), 'the password appears nowhere in the report');

  const components = new Set(data.map((d) => d.component.name));
  for (const c of [
    'OCPPCommCtrlr',
    'TxCtrlr',
    'DeviceDataCtrlr',
    'ClockCtrlr',
    'SecurityCtrlr',
    'SampledDataCtrlr',
    'AlignedDataCtrlr',
    'AuthCtrlr',
  ]) {
    assert.ok(components.has(c), `component ${c} missing from the full inventory`);
  }
  // EVSE-bound variables carry their EVSE.
  const evseAvail = data.filter((d) => d.component.name === 'EVSE' && d.variable.name === 'AvailabilityState');
  assert.deepEqual(evseAvail.map((d) => d.component.evse.id).sort(), [1, 2]);
});
