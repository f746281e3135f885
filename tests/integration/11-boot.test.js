// B01-B03: BootNotification Pending and Rejected with their interval; nothing
// but BootNotification before the CSMS accepted the station.
'use strict';

const assert = require('node:assert/strict');
const { itest, isCall } = require('./lib/harness');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

for (const refusal of ['Pending', 'Rejected']) {
  itest(`BootNotification ${refusal}: retried after its interval, nothing else sent until Accepted`, async (ctx) => {
    let status = refusal;
    await ctx.startCsms({
      handlers: {
        BootNotification: async () => ({ currentTime: new Date().toISOString(), interval: 1, status }),
      },
    });
    await ctx.startStation();
    const first = await ctx.waitFor('BootNotification', { timeoutMs: 10000 });
    assert.equal(first.payload.reason, 'PowerUp');

    // While not accepted: the hardware works, but the station sends nothing but
    // BootNotification (no StatusNotification, no Authorize, no TransactionEvent).
    const from = ctx.mark();
    await ctx.simOk('plug', 1);
    await ctx.simOk('badge', 1, 'BOOT-TOKEN');
    await sleep(2500);
    const calls = ctx.csms.messages.slice(from).filter((m) => m.direction === 'in' && m.type === 'CALL');
    assert.ok(calls.length >= 2, `BootNotification retried every interval (got ${calls.length})`);
    assert.deepEqual([...new Set(calls.map((m) => m.action))], ['BootNotification']);

    if (refusal === 'Rejected') {
      // A CSMS request while rejected is refused.
      await assert.rejects(
        ctx.call('GetVariables', {
          getVariableData: [{ component: { name: 'OCPPCommCtrlr' }, variable: { name: 'HeartbeatInterval' } }],
        }),
        (err) => err.rpcErrorCode === 'SecurityError' || /SecurityError/.test(String(err.code ?? err.name)),
      );
      const reply = ctx.csms.messages.find((m) => m.direction === 'in' && m.type === 'ERROR' && m.action === 'GetVariables');
      assert.equal(reply.payload.errorCode, 'SecurityError');
    }

    // Accepted: the connectors' status follows, with EVSE 1 occupied by the EV.
    status = 'Accepted';
    const accepted = ctx.mark();
    const st1 = await ctx.waitFor(isCall('StatusNotification', (p) => p.evseId === 1), { from: accepted, timeoutMs: 5000 });
    assert.equal(st1.payload.connectorStatus, 'Occupied');
    const st2 = await ctx.waitFor(isCall('StatusNotification', (p) => p.evseId === 2), { from: accepted, timeoutMs: 5000 });
    assert.equal(st2.payload.connectorStatus, 'Available');
  });
}
