// The dev CSMS's operator console: a UNIX socket (mode 0600) taking one JSON
// line per connection, and the shell client for it.
//   {"call": {"identity", "action", "payload"}}
//   {"updateFirmware": {"identity", "image", "signature", "certificate", "requestId"?}}
// answered with one JSON line {"ok": true, "result"} or {"ok": false, "error"}.
'use strict';

const fs = require('fs');
const net = require('net');
const path = require('path');

const MAX_REQUEST = 65536;

// Listens on `file` (replacing a stale socket); handlers: { call(req), updateFirmware(req) } → Promise.
async function startConsole(file, handlers) {
  try {
    fs.unlinkSync(file);
  } catch {
    /* not there */
  }
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => {});
    sock.on('data', async (d) => {
      buf += d;
      if (buf.length > MAX_REQUEST) return sock.destroy();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      sock.pause();
      let answer;
      try {
        const req = JSON.parse(buf.slice(0, nl));
        if (req.call) answer = { ok: true, result: await handlers.call(req.call) };
        else if (req.updateFirmware) answer = { ok: true, result: await handlers.updateFirmware(req.updateFirmware) };
        else throw new Error('unknown request (call or updateFirmware)');
      } catch (err) {
        answer = { ok: false, error: err.message };
      }
      sock.end(JSON.stringify(answer) + '\n');
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(file, () => {
      fs.chmodSync(file, 0o600);
      resolve();
    });
  });
  return server;
}

// `node csms.js call|update-firmware --control SOCKET …`: one request, the result printed as JSON.
async function consoleClient(argv, usage) {
  const [cmd, ...rest] = argv;
  const o = {};
  const pos = [];
  for (let i = 0; i < rest.length; i++) {
    const m = /^--(control|station|image|signature|cert|request-id)$/.exec(rest[i]);
    if (m && i + 1 < rest.length) o[m[1]] = rest[++i];
    else pos.push(rest[i]);
  }
  if (!o.control) return usage();
  let req;
  if (cmd === 'call') {
    if (pos.length < 2) return usage();
    req = { call: { identity: pos[0], action: pos[1], payload: pos[2] ? JSON.parse(pos[2]) : {} } };
  } else {
    for (const k of ['station', 'image', 'signature', 'cert']) if (!o[k]) return usage();
    req = {
      updateFirmware: {
        identity: o.station,
        image: path.resolve(o.image),
        signature: path.resolve(o.signature),
        certificate: path.resolve(o.cert),
        requestId: o['request-id'] ? Number(o['request-id']) : undefined,
      },
    };
  }
  const answer = await new Promise((resolve, reject) => {
    const sock = net.connect(o.control);
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => (buf += d));
    sock.on('end', () => resolve(buf));
    sock.on('error', reject);
    sock.write(JSON.stringify(req) + '\n');
  });
  const r = JSON.parse(answer);
  if (!r.ok) {
    process.stderr.write(`error: ${r.error}\n`);
    process.exit(1);
  }
  console.log(JSON.stringify(r.result, null, 2));
}

module.exports = { startConsole, consoleClient };
