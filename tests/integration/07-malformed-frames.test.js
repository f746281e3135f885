// Broken or hostile frames from the CSMS: each gets the exact CALLERROR, and
// the connection and charging go on.
'use strict';

const assert = require('node:assert/strict');
const { itest, isCall } = require('./lib/harness');

// The station's CALLERROR for message id `id` (index >= from), checked for shape.
async function expectError(ctx, from, id, codes) {
  const m = await ctx.waitFor((x) => x.direction === 'in' && x.type === 'ERROR' && x.id === id, { from });
  const frame = JSON.parse(m.raw);
  assert.equal(frame.length, 5, `CALLERROR must have 5 elements: ${m.raw}`);
  assert.equal(frame[0], 4);
  assert.equal(frame[1], id);
  const allowed = Array.isArray(codes) ? codes : [codes];
  assert.ok(allowed.includes(frame[2]), `error code ${frame[2]}, expected ${allowed.join(' or ')}: ${m.raw}`);
  assert.equal(typeof frame[3], 'string');
  assert.ok(frame[3].length <= 255);
  assert.ok(frame[4] && typeof frame[4] === 'object' && !Array.isArray(frame[4]), 'errorDetails is an object');
  return frame;
}

// Sends one frame and returns the station's CALLERROR.
async function send(ctx, raw, id, codes) {
  const from = ctx.mark();
  ctx.sendRaw(raw);
  const frame = await expectError(ctx, from, id, codes);
  // Exactly one answer.
  const answers = ctx.csms.messages
    .slice(from)
    .filter((x) => x.direction === 'in' && (x.type === 'ERROR' || x.type === 'RESULT') && x.id === id);
  assert.equal(answers.length, 1, `one answer for ${raw.slice(0, 60)}`);
  return frame;
}

itest('malformed frames get the exact CALLERROR; the connection survives', async (ctx) => {
  await ctx.boot();

  await send(ctx, '[2, "broken-json", "Heartbeat", {', '-1', 'RpcFrameworkError');
  await send(ctx, 'hello', '-1', 'RpcFrameworkError');
  await send(ctx, '{"messageTypeId": 2, "id": "obj-1"}', '-1', 'RpcFrameworkError');
  await send(ctx, '"just a string"', '-1', 'RpcFrameworkError');
  await send(ctx, '[2, 5, "Heartbeat", {}]', '-1', 'RpcFrameworkError'); // id not a string
  await send(ctx, `[2, "${'x'.repeat(37)}", "Heartbeat", {}]`, '-1', 'RpcFrameworkError'); // id too long
  await send(ctx, '[7, "type-seven", "Heartbeat", {}]', 'type-seven', 'MessageTypeNotSupported');
  await send(ctx, '[2, "unknown-action", "MakeCoffee", {}]', 'unknown-action', 'NotImplemented');
  // Payload problems, validated against the official schemas:
  await send(ctx, '[2, "missing-field", "GetVariables", {}]', 'missing-field', [
    'OccurrenceConstraintViolation',
    'OccurenceConstraintViolation',
  ]);
  await send(ctx, '[2, "wrong-type", "GetVariables", {"getVariableData": 5}]', 'wrong-type', 'TypeConstraintViolation');
  await send(
    ctx,
    '[2, "bad-enum", "ChangeAvailability", {"operationalStatus": "Sometimes"}]',
    'bad-enum',
    'PropertyConstraintViolation',
  );
  await send(ctx, '[2, "extra-prop", "ClearCache", {"please": true}]', 'extra-prop', 'FormatViolation');
  await send(ctx, '[2, "not-object", "ClearCache", [1, 2]]', 'not-object', 'FormatViolation');
  // Nesting far deeper than any OCPP message: refused unparsed, FormatViolation with the readable id.
  let from = ctx.mark();
  ctx.sendRaw(`[2, "deep", "DataTransfer", {"vendorId": "x", "data": ${'['.repeat(200)}${']'.repeat(200)}}]`);
  const deep = await ctx.waitFor((x) => x.direction === 'in' && x.type === 'ERROR' && (x.id === 'deep' || x.id === '-1'), {
    from,
  });
  assert.equal(deep.id, 'deep', deep.raw);
  assert.equal(deep.payload.errorCode, 'FormatViolation', deep.raw);
  assert.match(deep.payload.errorDescription, /deeper than 32/);

  // None of the rejected requests was carried out.
  let st = await ctx.status();
  assert.ok(st.evses.every((e) => e.operative && e.status === 'Available'));

  // A frame above max_frame_bytes (65536): FormatViolation with the readable id.
  const big = JSON.stringify([2, 'too-big', 'DataTransfer', { vendorId: 'x', data: 'A'.repeat(100 * 1024) }]);
  assert.ok(big.length > 100000);
  const bigErr = await send(ctx, big, 'too-big', 'FormatViolation');
  assert.match(bigErr[3], /limit|exceed|large|size/i);
  // ... and one whose id cannot be read: "-1".
  const bigNoId = '[' + ' '.repeat(70000) + '2, "hidden", "DataTransfer", {"vendorId": "x"}]';
  await send(ctx, bigNoId, '-1', 'FormatViolation');

  // A CALL id used twice in one session: the second is refused.
  from = ctx.mark();
  ctx.sendRaw('[2, "dup-id-1", "GetLocalListVersion", {}]');
  const first = await ctx.waitFor((x) => x.direction === 'in' && x.id === 'dup-id-1', { from });
  assert.equal(first.type, 'RESULT');
  assert.equal(typeof first.payload.versionNumber, 'number');
  await send(ctx, '[2, "dup-id-1", "GetLocalListVersion", {}]', 'dup-id-1', 'RpcFrameworkError');

  // Responses to nothing are ignored (no answer at all).
  from = ctx.mark();
  ctx.sendRaw('[3, "never-asked", {}]');
  ctx.sendRaw('[4, "never-asked-2", "GenericError", "", {}]');
  await ctx.expectNone((x) => x.direction === 'in' && (x.id === 'never-asked' || x.id === 'never-asked-2'), 500, {
    from,
  });

  // Still connected: a normal call works, on the same connection.
  assert.equal(ctx.calls('BootNotification').length, 1, 'no reconnect happened');
  const ver = await ctx.call('GetLocalListVersion', {});
  assert.equal(typeof ver.versionNumber, 'number');
  assert.equal((await ctx.status()).online, true);

  // And a charge still works.
  from = ctx.mark();
  await ctx.simOk('badge', 1, 'AFTER-GARBAGE');
  await ctx.waitFor('Authorize', { from });
  await ctx.waitStatus((s) => s.evses[0].authorized === true, 5000, 'EVSE 1 authorized');
  await ctx.simOk('plug', 1);
  const started = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Started'), { from });
  assert.equal(started.payload.seqNo, 0);
  await ctx.simOk('badge', 1, 'AFTER-GARBAGE');
  const ended = await ctx.waitFor(isCall('TransactionEvent', (p) => p.eventType === 'Ended'), { from });
  assert.equal(ended.payload.transactionInfo.transactionId, started.payload.transactionInfo.transactionId);
  st = await ctx.waitStatus((s) => s.queued === 0, 5000, 'outbox empty');
  assert.equal(ctx.calls('BootNotification').length, 1, 'no reconnect happened');
});
