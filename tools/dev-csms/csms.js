#!/usr/bin/env node
// Development CSMS for chargeguard: OCPP 2.0.1 over WebSocket (npm ocpp-rpc,
// strict schema validation), security profile 2 (TLS + HTTP Basic auth), optional
// profile 3 (client certificates, when tls.ca is given) and, only on request,
// profile 1 (plain ws + Basic auth). Used by the demo and by integration tests.
// FOR DEVELOPMENT AND TESTING ONLY.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const https = require('https');
const { EventEmitter } = require('events');
const { RPCServer } = require('ocpp-rpc');

const PROTOCOL = 'ocpp2.0.1';
const MSG_TYPES = { 2: 'CALL', 3: 'RESULT', 4: 'ERROR' };

// ---- helpers -------------------------------------------------------------

const now = () => new Date().toISOString();

// Keyed hash so that password comparison is constant-time and independent of
// the lengths involved (timingSafeEqual needs equal-length buffers).
const HMAC_KEY = crypto.randomBytes(32);
const digest = (buf) => crypto.createHmac('sha256', HMAC_KEY).update(buf).digest();
function passwordMatches(expected, given) {
  // Always do the same work, whether or not an expected password exists.
  const exp = digest(expected ?? crypto.randomBytes(32));
  const got = digest(Buffer.isBuffer(given) ? given : Buffer.alloc(0));
  return crypto.timingSafeEqual(exp, got) && expected !== undefined && given !== undefined;
}

function readPasswordFile(file) {
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split(/\r?\n/);
  if (lines.length > 2 || (lines.length === 2 && lines[1] !== '')) {
    throw new Error(`password file ${file}: expected exactly one line`);
  }
  if (!lines[0]) throw new Error(`password file ${file}: empty password`);
  return Buffer.from(lines[0], 'utf8');
}

// Redacts secrets (passwords, keys) from payloads before they are printed.
const SECRET_KEY = /pass(word)?|secret|private|^key$/i;
function redact(value, parentIsPasswordVariable = false) {
  if (Array.isArray(value)) return value.map((v) => redact(v));
  if (!value || typeof value !== 'object') return value;
  // SetVariables / GetVariables / NotifyReport items about e.g. BasicAuthPassword
  const isPasswordVariable =
    parentIsPasswordVariable || (value.variable && SECRET_KEY.test(String(value.variable.name ?? '')));
  const out = {};
  for (const [k, v] of Object.entries(value)) {
    if (SECRET_KEY.test(k)) out[k] = '***';
    else if (isPasswordVariable && (k === 'attributeValue' || k === 'value')) out[k] = '***';
    else if (isPasswordVariable && k === 'variableAttribute' && Array.isArray(v)) {
      out[k] = v.map((a) => (a && typeof a === 'object' && 'value' in a ? { ...a, value: '***' } : a));
    } else out[k] = redact(v, false);
  }
  return out;
}

function summarize(value, max = 160) {
  let s;
  try {
    s = JSON.stringify(redact(value));
  } catch {
    s = String(value);
  }
  if (s === undefined) s = '';
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

// Identities are printed; keep the log one line per message whatever they contain.
const printable = (s) => JSON.stringify(String(s)).slice(1, -1);

function formatRecord(r) {
  const arrow = r.direction === 'in' ? '<-' : '->';
  const who = printable(r.identity);
  switch (r.type) {
    case 'CALL':
      return `${arrow} ${who} ${r.action} ${summarize(r.payload)}`;
    case 'RESULT':
      return `${arrow} ${who} ${r.action ?? '?'} result ${summarize(r.payload)}`;
    case 'ERROR':
      return `${arrow} ${who} ${r.action ?? '?'} ERROR ${r.payload?.errorCode} ${summarize(r.payload?.errorDescription ?? '')}`;
    default:
      return `${arrow} ${who} INVALID FRAME ${summarize(r.raw, 120)}`;
  }
}

// Schema-valid default responses for every message a station sends in OCPP 2.0.1.
function makeDefaultHandlers(cfg) {
  const tokenStatus = (idToken) =>
    idToken && cfg.blockedTokens.has(String(idToken.idToken)) ? 'Blocked' : 'Accepted';
  const empty = async () => ({});
  return {
    BootNotification: async () => ({
      currentTime: now(),
      interval: cfg.heartbeatInterval,
      status: cfg.bootStatus,
    }),
    Heartbeat: async () => ({ currentTime: now() }),
    StatusNotification: empty,
    Authorize: async (client, params) => ({ idTokenInfo: { status: tokenStatus(params.idToken) } }),
    TransactionEvent: async (client, params) =>
      params.idToken ? { idTokenInfo: { status: tokenStatus(params.idToken) } } : {},
    MeterValues: empty,
    NotifyReport: empty,
    SecurityEventNotification: empty,
    NotifyEvent: empty,
    LogStatusNotification: empty,
    FirmwareStatusNotification: empty,
    SignCertificate: async () => ({ status: 'Rejected' }),
    DataTransfer: async () => ({ status: 'UnknownVendorId' }),
    // The remaining station-initiated messages of OCPP 2.0.1:
    ClearedChargingLimit: empty,
    NotifyChargingLimit: empty,
    NotifyCustomerInformation: empty,
    NotifyDisplayMessages: empty,
    NotifyMonitoringReport: empty,
    PublishFirmwareStatusNotification: empty,
    ReportChargingProfiles: empty,
    ReservationStatusUpdate: empty,
    NotifyEVChargingNeeds: async () => ({ status: 'Rejected' }),
    NotifyEVChargingSchedule: async () => ({ status: 'Rejected' }),
    GetCertificateStatus: async () => ({ status: 'Failed' }),
    Get15118EVCertificate: async () => ({ status: 'Failed', exiResponse: '' }),
  };
}

// ---- the CSMS ------------------------------------------------------------

/**
 * Starts a development CSMS. See README.md.
 * @returns {Promise<object>} { port, host, url, server, rpcServer, clients, messages, events,
 *          waitFor, call, sendRaw, close }
 */
async function startCsms(opts = {}) {
  const {
    host = '127.0.0.1',
    port = 0,
    tls,
    insecure = false,
    passwords,
    passwordFile,
    strict = true,
    log = null,
    handlers = {},
    bootStatus = 'Accepted',
    heartbeatInterval = 300,
    blockedTokens = [],
    callTimeoutMs = 30000,
  } = opts;

  if (!tls && insecure !== true) {
    throw new Error('startCsms: tls {cert, key} required (plain ws only with insecure: true, profile 1)');
  }
  if (tls && (!tls.cert || !tls.key)) throw new Error('startCsms: tls needs cert and key file paths');
  if (passwords && passwordFile) throw new Error('startCsms: give passwords or passwordFile, not both');
  if (log !== null && typeof log !== 'function') throw new Error('startCsms: log must be a function or null');

  // identity -> Buffer; or one password for every identity
  const passwordMap = new Map();
  const anyIdentityPassword = passwordFile ? readPasswordFile(passwordFile) : null;
  const entries = passwords instanceof Map ? passwords.entries() : Object.entries(passwords ?? {});
  for (const [identity, pw] of entries) {
    passwordMap.set(String(identity), Buffer.isBuffer(pw) ? pw : Buffer.from(String(pw), 'utf8'));
  }

  const cfg = {
    bootStatus,
    heartbeatInterval,
    blockedTokens: new Set(Array.from(blockedTokens, String)),
  };
  const defaults = makeDefaultHandlers(cfg);
  const allHandlers = { ...defaults, ...handlers };

  const say = (line) => {
    if (log) {
      try {
        log(line);
      } catch {
        /* a broken logger must not break the CSMS */
      }
    }
  };

  const events = new EventEmitter();
  events.setMaxListeners(0);
  const messages = [];
  const clients = new Map();

  function record(client, corr, raw, direction) {
    const rec = {
      time: now(),
      identity: client.identity,
      direction,
      type: 'INVALID',
      action: null,
      id: null,
      payload: null,
      raw: String(raw),
    };
    try {
      const frame = JSON.parse(rec.raw);
      if (Array.isArray(frame) && MSG_TYPES[frame[0]] && typeof frame[1] === 'string') {
        rec.type = MSG_TYPES[frame[0]];
        rec.id = frame[1];
        // CALLs register their action under their id, replies look it up.
        const mine = direction === 'in' ? corr.inbound : corr.outbound; // calls originated by this side
        const theirs = direction === 'in' ? corr.outbound : corr.inbound;
        if (rec.type === 'CALL') {
          rec.action = typeof frame[2] === 'string' ? frame[2] : null;
          rec.payload = frame[3] ?? null;
          mine.set(rec.id, rec.action);
        } else {
          rec.action = theirs.get(rec.id) ?? null;
          theirs.delete(rec.id);
          rec.payload =
            rec.type === 'RESULT'
              ? frame[2] ?? null
              : { errorCode: frame[2], errorDescription: frame[3], errorDetails: frame[4] };
        }
      }
    } catch {
      /* keep type INVALID */
    }
    messages.push(rec);
    say(formatRecord(rec));
    try {
      events.emit('message', rec);
    } catch (err) {
      say(`!! a 'message' listener threw: ${err.message}`);
    }
  }

  const rpcServer = new RPCServer({
    protocols: [PROTOCOL],
    strictMode: strict,
    callTimeoutMs,
  });
  rpcServer.on('error', (err) => say(`!! server error: ${err.message}`));

  rpcServer.auth((accept, reject, hs) => {
    const id = hs.identity;
    const deny = (code, why) => {
      say(`!! ${printable(id)} from ${hs.remoteAddress} refused (${code}): ${why}`);
      events.emit('authRejected', { identity: id, remoteAddress: hs.remoteAddress, code, reason: why });
      reject(code, http.STATUS_CODES[code]);
    };
    // OCPP 2.0.1: identity is an identifierString of at most 48 characters.
    if (!id || id.length > 48) return deny(400, 'missing or invalid identity in the URL');

    let profile = 0;
    const sock = hs.request.socket;
    if (tls && tls.ca && typeof sock.getPeerCertificate === 'function') {
      const peer = sock.getPeerCertificate();
      if (peer && Object.keys(peer).length > 0) {
        if (!sock.authorized) return deny(401, `client certificate not trusted (${sock.authorizationError})`);
        if (peer.subject?.CN !== id) return deny(401, 'client certificate CN does not match the identity');
        profile = 3;
      }
    }
    if (!profile) {
      const expected = anyIdentityPassword ?? passwordMap.get(id);
      if (!passwordMatches(expected, hs.password)) {
        let why = 'wrong password';
        if (expected === undefined) why = 'unknown identity';
        else if (hs.password === undefined) why = 'no Basic auth credentials for this identity';
        return deny(401, why);
      }
      profile = tls ? 2 : 1;
    }
    // OCPP-J: without an agreeable subprotocol, complete the handshake without
    // one and close the connection right away (done in the 'client' handler).
    const offered = hs.protocols.has(PROTOCOL);
    accept({ profile, subprotocolOk: offered }, offered ? PROTOCOL : false);
  });

  rpcServer.on('client', (client) => {
    const id = client.identity;
    const corr = { inbound: new Map(), outbound: new Map() };
    client.on('message', ({ message, outbound }) => record(client, corr, message, outbound ? 'out' : 'in'));
    client.on('strictValidationFailure', ({ method, outbound, isCall, error }) => {
      const what = `${outbound ? 'outbound' : 'inbound'} ${method} ${isCall ? 'request' : 'response'}`;
      say(`!! ${printable(id)} schema validation failed for ${what}: ${error.message}`);
    });
    client.on('close', ({ code, reason }) => {
      if (clients.get(id) === client) clients.delete(id);
      say(`== ${printable(id)} disconnected (${code}${reason ? ' ' + reason : ''})`);
      events.emit('disconnect', id);
    });

    if (!client.session.subprotocolOk) {
      say(`!! ${printable(id)} did not offer ${PROTOCOL}; closing`);
      client.close({ code: 1002, reason: `subprotocol ${PROTOCOL} required` }).catch(() => {});
      return;
    }

    for (const [action, handler] of Object.entries(allHandlers)) {
      client.handle(action, ({ params, messageId }) =>
        handler(client, params, {
          messageId,
          identity: id,
          callDefault: () => (defaults[action] ? defaults[action](client, params) : {}),
        }),
      );
    }

    const previous = clients.get(id);
    clients.set(id, client);
    if (previous) {
      say(`== ${printable(id)} reconnected; closing the previous connection`);
      previous.close({ code: 1000, reason: 'replaced by a new connection' }).catch(() => {});
    }
    say(`== ${printable(id)} connected (profile ${client.session.profile}, ${client.handshake.remoteAddress})`);
    events.emit('client', client);
  });

  // ---- transport
  let server;
  if (tls) {
    const tlsOpts = {
      cert: fs.readFileSync(tls.cert),
      key: fs.readFileSync(tls.key),
      minVersion: 'TLSv1.2',
    };
    if (tls.ca) {
      // Profile 3: ask for a client certificate; verified ones (CN = identity)
      // authenticate without a password. Stations without one use profile 2.
      tlsOpts.ca = fs.readFileSync(tls.ca);
      tlsOpts.requestCert = true;
      tlsOpts.rejectUnauthorized = false;
    }
    server = https.createServer(tlsOpts);
    server.on('tlsClientError', (err, sock) => {
      const why = String(err.code ?? err.message).split('\n')[0];
      say(`!! TLS handshake failed from ${sock?.remoteAddress ?? '?'}: ${why}`);
      events.emit('tlsClientError', { remoteAddress: sock?.remoteAddress, error: err });
    });
  } else {
    server = http.createServer();
    say('!! WARNING: plain ws (security profile 1) - passwords travel in clear text');
  }
  server.on('request', (req, res) => {
    res.statusCode = 404;
    res.end();
  });
  // ocpp-rpc 2.2.1 decodes the identity outside its try block: a malformed
  // %-escape in the path would reject this promise and crash the process.
  const handleUpgrade = rpcServer.handleUpgrade;
  server.on('upgrade', (req, socket, head) => {
    handleUpgrade(req, socket, head).catch((err) => {
      say(`!! bad upgrade request from ${socket.remoteAddress}: ${err.message}`);
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      socket.destroy();
    });
  });
  const sockets = new Set();
  server.on('connection', (sock) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => say(`!! listener error: ${err.message}`));
  const actualPort = server.address().port;
  const urlHost = ['127.0.0.1', '::1', '0.0.0.0', '::', 'localhost'].includes(host)
    ? 'localhost'
    : host.includes(':')
      ? `[${host}]`
      : host;
  const url = `${tls ? 'wss' : 'ws'}://${urlHost}:${actualPort}/ocpp`;

  // Resolves with the first recorded message (already recorded or future)
  // matching predicate; a string is shorthand for "inbound CALL of that action".
  function waitFor(predicate, timeoutMs = 5000) {
    const match =
      typeof predicate === 'string'
        ? (m) => m.direction === 'in' && m.type === 'CALL' && m.action === predicate
        : predicate;
    return new Promise((resolve, reject) => {
      let timer = null;
      const finish = (err, m) => {
        clearTimeout(timer);
        events.off('message', onMessage);
        if (err) reject(err);
        else resolve(m);
      };
      // true when settled (match found or predicate threw)
      const settled = (m) => {
        try {
          if (!match(m)) return false;
          finish(null, m);
        } catch (err) {
          finish(err);
        }
        return true;
      };
      const onMessage = (m) => settled(m);
      for (const m of messages) {
        if (settled(m)) return;
      }
      events.on('message', onMessage);
      timer = setTimeout(() => finish(new Error(`waitFor: no matching message within ${timeoutMs} ms`)), timeoutMs);
    });
  }

  function clientOf(identity) {
    const c = clients.get(identity);
    if (!c) throw new Error(`station ${identity} is not connected`);
    return c;
  }

  async function call(identity, action, params, options) {
    return clientOf(identity).call(action, params, options);
  }

  function sendRaw(identity, frame) {
    clientOf(identity).sendRaw(String(frame));
  }

  let closing = null;
  function close() {
    if (closing) return closing;
    closing = (async () => {
      const all = Array.from(rpcServer._clients ?? clients.values());
      const graceful = Promise.allSettled(
        all.map((c) => c.close({ code: 1001, reason: 'CSMS shutting down' })),
      );
      await Promise.race([graceful, new Promise((r) => setTimeout(r, 2000).unref())]);
      await rpcServer.close({ code: 1001, force: true }).catch(() => {});
      const closed = new Promise((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      server.closeAllConnections?.();
      await closed;
    })();
    return closing;
  }

  // A01 password rotation: the password this CSMS expects from now on for one
  // identity (existing connections stay; the next handshake is checked).
  function setPassword(identity, pw) {
    if (anyIdentityPassword) throw new Error('setPassword: this CSMS uses one passwordFile for every identity');
    passwordMap.set(String(identity), Buffer.isBuffer(pw) ? pw : Buffer.from(String(pw), 'utf8'));
  }

  say(`dev CSMS listening on ${url}`);
  return {
    port: actualPort,
    host,
    url,
    server,
    rpcServer,
    clients,
    messages,
    events,
    waitFor,
    call,
    sendRaw,
    setPassword,
    close,
  };
}

module.exports = { startCsms };

// ---- CLI -----------------------------------------------------------------

function usage(code) {
  const text =
    'usage: node csms.js [--host 127.0.0.1] [--port 9443] --cert FILE --key FILE [--ca FILE]\n' +
    '                    [--password-file FILE] [--insecure] [--quiet]\n' +
    '       [--boot-status Accepted|Pending|Rejected] [--heartbeat-interval SECONDS]\n';
  (code ? process.stderr : process.stdout).write(text);
  process.exit(code);
}

function parseArgs(argv) {
  const o = { port: 9443 };
  const valueFlags = {
    '--host': 'host',
    '--port': 'port',
    '--cert': 'cert',
    '--key': 'key',
    '--ca': 'ca',
    '--password-file': 'passwordFile',
    '--boot-status': 'bootStatus',
    '--heartbeat-interval': 'heartbeatInterval',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--insecure') o.insecure = true;
    else if (a === '--quiet') o.quiet = true;
    else if (a === '--help' || a === '-h') usage(0);
    else if (valueFlags[a] && i + 1 < argv.length) o[valueFlags[a]] = argv[++i];
    else {
      process.stderr.write(`unknown or incomplete option: ${a}\n`);
      usage(2);
    }
  }
  for (const k of ['port', 'heartbeatInterval']) {
    if (o[k] !== undefined) {
      const n = Number(o[k]);
      if (!Number.isInteger(n) || n < 0 || (k === 'port' && n > 65535)) {
        process.stderr.write(`invalid ${k}: ${o[k]}\n`);
        usage(2);
      }
      o[k] = n;
    }
  }
  return o;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  if ((a.cert || a.key) && !(a.cert && a.key)) {
    process.stderr.write('--cert and --key go together\n');
    usage(2);
  }
  if (!a.cert && !a.insecure) {
    process.stderr.write('--cert/--key required (or --insecure for plain ws, security profile 1)\n');
    usage(2);
  }
  if (!a.passwordFile && !a.ca) {
    process.stderr.write('warning: no --password-file (and no --ca): every station will be refused\n');
  }
  // Signal handlers first: the "listening" line is the cue for scripts to go on
  // (and possibly to stop us right away).
  let csms = null;
  let stopping = false;
  const stop = (sig) => {
    if (stopping) return;
    stopping = true;
    if (!a.quiet) console.log(`received ${sig}, shutting down`);
    setTimeout(() => process.exit(1), 5000).unref();
    if (!csms) process.exit(0);
    csms.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  csms = await startCsms({
    host: a.host,
    port: a.port,
    tls: a.cert ? { cert: a.cert, key: a.key, ca: a.ca } : undefined,
    insecure: a.insecure === true,
    passwordFile: a.passwordFile,
    bootStatus: a.bootStatus,
    heartbeatInterval: a.heartbeatInterval,
    log: a.quiet ? null : (line) => console.log(line),
  });
  if (a.quiet) console.log(`dev CSMS listening on ${csms.url}`);
  if (stopping) await csms.close(); // signal arrived while starting
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`dev CSMS: ${err.message}\n`);
    process.exit(1);
  });
}
