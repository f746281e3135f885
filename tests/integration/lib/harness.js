// Integration-test harness: a real station process (CG_BIN) against the real
// dev CSMS (tools/dev-csms, ocpp-rpc in strict mode, security profile 2).
//
//   const { itest } = require('./lib/harness');
//   itest('name', { csms: { heartbeatInterval: 1 } }, async (ctx) => { ... });
//
// Every itest gets its own temp dir, password, state dir, TOML config, CSMS on
// a free port and station process; all are cleaned up whatever happens. After
// the body ran, the test FAILS when
//   - the CSMS answered a station CALL with a CALLERROR (schema violation etc.),
//   - the CSMS recorded an INVALID frame from the station,
//   - the CSMS logged a schema validation failure of a station message,
//   - the station logged a "BUG:" line (it refused to send a schema-invalid message),
// unless the test declared that it expects it (ctx.expectCsmsErrors = true).
// On failure the station log and the CSMS log are printed to stderr.
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const test = require('node:test');

const REPO = path.resolve(__dirname, '..', '..', '..');
const CG_BIN = process.env.CG_BIN ? path.resolve(process.env.CG_BIN) : path.join(REPO, 'build', 'chargeguard');
const { startCsms } = require(path.join(REPO, 'tools', 'dev-csms', 'csms'));
const { runProgram, runFile, spawnFile, spawnProgram, runProgramSync, program } = require('./programs');

const LOG_LEVEL = process.env.CG_IT_LOG_LEVEL || 'info';
const KEEP = process.env.CG_IT_KEEP === '1'; // keep temp dirs for debugging

// Timer settings that make the station fast enough to test (docs: [device_model]).
const DEFAULT_DEVICE_MODEL = {
  'OCPPCommCtrlr.RetryBackOffWaitMinimum': 1,
  'OCPPCommCtrlr.RetryBackOffRandomRange': 0,
  'OCPPCommCtrlr.RetryBackOffRepeatTimes': 0, // always 1 s between connection attempts
  'OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent]': 1,
  'SampledDataCtrlr.TxUpdatedInterval': 2,
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

if (!fs.existsSync(CG_BIN)) {
  throw new Error(`station binary not found: ${CG_BIN} (build it, or set CG_BIN)`);
}

// ---- per-file resources ---------------------------------------------------

const fileTmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-it-file-'));
const liveChildren = new Set();
process.on('exit', () => {
  for (const c of liveChildren) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  if (!KEEP) fs.rmSync(fileTmp, { recursive: true, force: true });
});

// Runs the station binary (CG_BIN) or a program of scripts/programs.tsv;
// any other program fails the test (./programs.js).
function run(file, args, opts = {}) {
  return file === CG_BIN ? runFile(file, args, opts) : runProgram(file, args, opts);
}

const pkis = new Map();
// A development PKI (CG_BIN pki dev-init [extraArgs]), created once per test file and name.
function pki(name = 'main', extraArgs = []) {
  if (!pkis.has(name)) {
    pkis.set(
      name,
      (async () => {
        const dir = path.join(fileTmp, `pki-${name}`);
        const r = await run(CG_BIN, ['pki', 'dev-init', '--out', dir, ...extraArgs]);
        if (r.code !== 0) throw new Error(`pki dev-init failed (${r.code}): ${r.stderr}`);
        return {
          dir,
          rootCa: path.join(dir, 'csms-root-ca.pem'),
          cert: path.join(dir, 'csms-server.pem'),
          key: path.join(dir, 'csms-server.key'),
        };
      })(),
    );
  }
  return pkis.get(name);
}

function tomlConfig(deviceModel) {
  const lines = ['[device_model]'];
  for (const [k, v] of Object.entries(deviceModel)) {
    const val = typeof v === 'string' ? JSON.stringify(v) : String(v);
    lines.push(`${JSON.stringify(k)} = ${val}`);
  }
  return lines.join('\n') + '\n';
}

// ---- message helpers -----------------------------------------------------

// Inbound CALLs (station -> CSMS) of an action, optionally filtered.
const isCall = (action, pred = () => true) => (m) =>
  m.direction === 'in' && m.type === 'CALL' && m.action === action && pred(m.payload, m);

// The Energy.Active.Import.Register value (Wh) of a meterValue array, or undefined.
function energyWh(meterValue) {
  for (const mv of meterValue ?? []) {
    for (const sv of mv.sampledValue ?? []) {
      const measurand = sv.measurand ?? 'Energy.Active.Import.Register';
      if (measurand !== 'Energy.Active.Import.Register') continue;
      const unit = sv.unitOfMeasure?.unit ?? 'Wh';
      const mult = 10 ** (sv.unitOfMeasure?.multiplier ?? 0);
      return unit === 'kWh' ? sv.value * 1000 * mult : sv.value * mult;
    }
  }
  return undefined;
}

function sampled(meterValue, measurand) {
  for (const mv of meterValue ?? []) for (const sv of mv.sampledValue ?? []) if (sv.measurand === measurand) return sv;
  return undefined;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
function assertTimestamp(s, what = 'timestamp') {
  assert.match(String(s), RFC3339, `${what} is not RFC 3339: ${s}`);
  const t = Date.parse(s);
  assert.ok(Math.abs(t - Date.now()) < 120000, `${what} ${s} is not close to now`);
  return t;
}

// ---- the per-test context ------------------------------------------------

class Ctx {
  constructor(name, opts) {
    this.name = name;
    this.opts = opts;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-it-'));
    this.identity = opts.identity ?? `CS-${crypto.randomBytes(4).toString('hex')}`;
    this.serial = opts.serial ?? `SN-${crypto.randomBytes(4).toString('hex').toUpperCase()}`;
    this.password = crypto.randomBytes(18).toString('base64url'); // 24 characters
    this.pwFile = path.join(this.dir, 'password');
    fs.writeFileSync(this.pwFile, this.password + '\n', { mode: 0o600 });
    this.stateDir = path.join(this.dir, 'state');
    this.configFile = path.join(this.dir, 'station.toml');
    this.writeConfig(opts.extraToml ?? '');
    this.env = {}; // extra environment of the station and of CLI runs (e.g. SOFTHSM2_CONF)
    this.logFile = path.join(this.dir, 'station.log');
    this.csmsLog = [];
    this.allCsms = [];
    this.csms = null;
    this.child = null;
    this.expectCsmsErrors = false;
    this.waiters = new Set();
    this.cleanedUp = false;
  }

  // The station's TOML file: the device model of the test plus `extraToml`
  // (other sections, e.g. [key_store]); the command line adds the rest.
  // Unless it says otherwise, the web UI listens on this test's own port (tests run in parallel).
  writeConfig(extraToml) {
    const web = this.webPort && !/^\[web\]/m.test(extraToml ?? '') ? `\n[web]\nlisten = "127.0.0.1:${this.webPort}"\n` : '';
    fs.writeFileSync(
      this.configFile,
      tomlConfig({ ...DEFAULT_DEVICE_MODEL, ...(this.opts.deviceModel ?? {}) }) + (extraToml ? '\n' + extraToml : '') + web,
    );
  }

  // Runs `chargeguard ARGS` with this test's environment.
  cli(args, opts = {}) {
    return run(CG_BIN, args, { env: { ...process.env, ...this.env }, ...opts });
  }

  // ---- CSMS

  // Starts a dev CSMS (strict mode, TLS with the test PKI, this station's password).
  async startCsms(extra = {}) {
    const p = await pki(extra.pki ?? 'main');
    const label = `csms#${this.allCsms.length + 1}`;
    const csms = await startCsms({
      tls: { cert: p.cert, key: p.key },
      strict: true, // ocpp-rpc validates every station message against the official schemas
      passwords: { [this.identity]: extra.password ?? this.password },
      heartbeatInterval: 60,
      port: 0,
      log: (line) => this.csmsLog.push(`${new Date().toISOString()} ${label} ${line}`),
      ...this.opts.csms,
      ...extra,
    });
    this.allCsms.push(csms);
    this.csms = csms;
    return csms;
  }

  call(action, payload, options) {
    return this.csms.call(this.identity, action, payload, options);
  }

  sendRaw(frame) {
    this.csms.sendRaw(this.identity, frame);
  }

  // Index into csms.messages; pass it as `from` to wait only for later messages.
  mark() {
    return this.csms.messages.length;
  }

  // Resolves with the first message at index >= from that matches. `pred` may be
  // an action name (inbound CALL of that action). Fails early if the station died.
  waitFor(pred, { from = 0, timeoutMs = 8000, csms = this.csms } = {}) {
    const match = typeof pred === 'string' ? isCall(pred) : pred;
    return new Promise((resolve, reject) => {
      let timer;
      const waiter = { reject: (err) => done(err) };
      const onMessage = (m) => {
        // 'message' fires right after the record was pushed
        if (csms.messages.length - 1 >= from && match(m)) done(null, m);
      };
      const done = (err, m) => {
        clearTimeout(timer);
        csms.events.off('message', onMessage);
        this.waiters.delete(waiter);
        if (err) reject(err);
        else resolve(m);
      };
      for (let i = from; i < csms.messages.length; i++) {
        if (match(csms.messages[i])) return resolve(csms.messages[i]);
      }
      this.waiters.add(waiter);
      csms.events.on('message', onMessage);
      const what = typeof pred === 'string' ? pred : 'matching message';
      timer = setTimeout(() => done(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
    });
  }

  // Waits until `count` messages (index >= from) match.
  async waitForCount(pred, count, opts = {}) {
    const match = typeof pred === 'string' ? isCall(pred) : pred;
    const csms = opts.csms ?? this.csms;
    const from = opts.from ?? 0;
    const found = () => csms.messages.slice(from).filter(match);
    const deadline = Date.now() + (opts.timeoutMs ?? 8000);
    while (found().length < count) {
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${count} messages, got ${found().length}`);
      }
      await this.waitFor(match, { from: csms.messages.length, csms, timeoutMs: Math.max(50, deadline - Date.now()) }).catch(
        (err) => {
          if (err.stationExited) throw err;
        },
      );
    }
    return found().slice(0, count);
  }

  // Asserts that no matching message arrives within ms (index >= from).
  async expectNone(pred, ms, { from = this.mark(), csms = this.csms } = {}) {
    const match = typeof pred === 'string' ? isCall(pred) : pred;
    await sleep(ms);
    const hits = csms.messages.slice(from).filter(match);
    assert.equal(hits.length, 0, `unexpected message(s): ${hits.map((m) => m.raw).join('\n')}`);
  }

  // The CSMS's answer (RESULT or ERROR) to an inbound CALL.
  replyTo(callMsg, csms = this.csms) {
    return this.waitFor((m) => m.direction === 'out' && (m.type === 'RESULT' || m.type === 'ERROR') && m.id === callMsg.id, {
      csms,
    });
  }

  // The station's answer to a CALL the CSMS sent with this id.
  stationReply(id, { from = 0, timeoutMs = 8000 } = {}) {
    return this.waitFor((m) => m.direction === 'in' && (m.type === 'RESULT' || m.type === 'ERROR') && m.id === id, {
      from,
      timeoutMs,
    });
  }

  // Inbound CALLs of an action (payloads), in arrival order, from all CSMS instances or one.
  calls(action, pred = () => true, csms = null) {
    const list = csms ? [csms] : this.allCsms;
    return list.flatMap((c) => c.messages.filter(isCall(action, pred)));
  }

  // ---- station

  stationArgs() {
    return [
      this.viaBoot ? 'boot' : 'run',
      '--state-dir', this.stateDir,
      '--csms-url', this.csmsUrl ?? this.csms.url,
      '--identity', this.identity,
      '--security-profile', String(this.securityProfile ?? 2),
      '--ca-file', this.caFile,
      '--password-file', this.pwFile,
      ...(this.clientCaFile ? ['--client-ca-file', this.clientCaFile] : []),
      '--serial', this.serial,
      '--organization', 'Test CPO',
      '--evse-count', '2',
      '--config', this.configFile,
      '--log-level', this.opts.logLevel ?? LOG_LEVEL,
      // The maintenance web UI of each station on a port of its own (tests run in parallel).
      '--web-listen', `127.0.0.1:${this.webPort}`,
    ];
  }

  // csmsUrl: connect there instead of this.csms.url (e.g. a rogue TLS server);
  // it sticks for later starts until another csmsUrl is given (null: this.csms.url again).
  // boot: start through `chargeguard boot` (the simulated bootloader runs the
  // firmware slot's payload); it sticks for later starts like csmsUrl.
  async startStation({ caPki = 'main', csmsUrl, securityProfile, boot } = {}) {
    assert.ok(!this.child, 'station already running');
    if (boot !== undefined) this.viaBoot = boot;
    if (csmsUrl !== undefined) this.csmsUrl = csmsUrl;
    if (securityProfile !== undefined) this.securityProfile = securityProfile;
    this.caFile = (await pki(caPki)).rootCa;
    if (!this.webPort) this.webPort = await freePort();
    const fd = fs.openSync(this.logFile, 'a');
    fs.writeSync(fd, `==== ${new Date().toISOString()} harness: starting station\n`);
    const child = spawnFile(CG_BIN, this.stationArgs(), { stdio: ['ignore', fd, fd], env: { ...process.env, ...this.env } });
    fs.closeSync(fd);
    liveChildren.add(child);
    this.child = child;
    child.exitInfo = null;
    child.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        liveChildren.delete(child);
        child.exitInfo = { code, signal };
        if (this.child === child) {
          this.child = null;
          if (!child.expectedExit) {
            const err = new Error(`station exited unexpectedly (code ${code}, signal ${signal})`);
            err.stationExited = true;
            for (const w of [...this.waiters]) w.reject(err);
          }
        }
        resolve(child.exitInfo);
      });
    });
    await this.waitForSocket();
    return child;
  }

  // Waits until the station's simulator socket answers.
  async waitForSocket(timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.child) throw new Error(`station is not running:\n${this.stationLog().slice(-2000)}`);
      const r = await this.sim('status');
      if (r.code === 0) return;
      if (Date.now() > deadline) throw new Error(`simulator socket did not come up: ${r.stderr}`);
      await sleep(50);
    }
  }

  // Graceful stop (SIGTERM), SIGKILL after timeoutMs.
  async stopStation(timeoutMs = 5000) {
    const child = this.child;
    if (!child) return null;
    child.expectedExit = true;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const info = await child.exited;
    clearTimeout(t);
    return info;
  }

  async kill9() {
    const child = this.child;
    assert.ok(child, 'no station to kill');
    child.expectedExit = true;
    child.kill('SIGKILL');
    return child.exited;
  }

  async restartStation(opts) {
    await this.stopStation();
    return this.startStation(opts);
  }

  // Runs `CG_BIN sim --state-dir S ...args` -> {code, stdout, stderr}.
  sim(...args) {
    return run(CG_BIN, ['sim', '--state-dir', this.stateDir, ...args.map(String)], { timeoutMs: 10000 });
  }

  // sim that must succeed.
  async simOk(...args) {
    const r = await this.sim(...args);
    assert.equal(r.code, 0, `sim ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
    return r;
  }

  async status() {
    const r = await this.simOk('status');
    const m = /^ok (.*)$/m.exec(r.stdout);
    assert.ok(m, `unexpected sim status output: ${r.stdout}`);
    return JSON.parse(m[1]);
  }

  // Polls sim status until pred(status) holds.
  async waitStatus(pred, timeoutMs = 8000, what = 'station status') {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
      last = await this.status();
      if (pred(last)) return last;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
      await sleep(100);
    }
  }

  // ---- security audit log (chargeguard audit export / verify)

  // Parsed records of `audit export`: [{seq, time, type, critical, outcome, source,
  // details, prev, hash, mac, line}]; raw is the whole export (stdout).
  // The configuration file goes along: the log's key is sealed by the station's
  // key store, which it names (a PKCS#11 token needs it).
  async auditExport() {
    const r = await this.cli(['audit', 'export', '--state-dir', this.stateDir, '--config', this.configFile]);
    const records = [];
    for (const line of r.stdout.split('\n')) {
      if (!line || line.startsWith('#continues ')) continue; // the signed continuation line
      const [body, hash, mac] = line.split('\t');
      records.push({ ...JSON.parse(body), hash, mac, line });
    }
    return { code: r.code, stderr: r.stderr, raw: r.stdout, records };
  }

  // `audit verify` -> {code, stdout, stderr} (code 0 = chain OK).
  auditVerify() {
    return this.cli(['audit', 'verify', '--state-dir', this.stateDir, '--config', this.configFile]);
  }

  async assertAuditOk(what = 'audit verify') {
    const r = await this.auditVerify();
    assert.equal(r.code, 0, `${what}: ${r.stderr}${r.stdout}`);
    return r;
  }

  stationLog() {
    try {
      return fs.readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  async waitForLog(re, timeoutMs = 8000, from = 0) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = this.stationLog().slice(from);
      const m = re.exec(text);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`timed out waiting for station log ${re}`);
      await sleep(100);
    }
  }

  // Starts a CSMS and the station, waits for the boot and its StatusNotifications.
  async boot({ csms = {}, station = {} } = {}) {
    await this.startCsms(csms);
    await this.startStation(station);
    return this.waitBooted();
  }

  // Waits for a BootNotification (index >= from) that was Accepted and the
  // StatusNotification of every connector after it; returns the boot CALL.
  async waitBooted({ from = 0, timeoutMs = 10000, evses = 2 } = {}) {
    const boot = await this.waitFor('BootNotification', { from, timeoutMs });
    const reply = await this.replyTo(boot);
    assert.equal(reply.type, 'RESULT');
    assert.equal(reply.payload.status, 'Accepted');
    const idx = this.csms.messages.indexOf(boot);
    await this.waitForCount(isCall('StatusNotification'), evses, { from: idx, timeoutMs });
    return boot;
  }

  // ---- checks and cleanup

  protocolProblems() {
    const problems = [];
    for (const [i, c] of this.allCsms.entries()) {
      const stationCallIds = new Set(c.messages.filter((m) => m.direction === 'in' && m.type === 'CALL').map((m) => m.id));
      for (const m of c.messages) {
        if (m.direction === 'out' && m.type === 'ERROR' && stationCallIds.has(m.id) && !this.expectCsmsErrors) {
          problems.push(`csms#${i + 1} answered station CALL ${m.action ?? '?'} (${m.id}) with CALLERROR: ${m.raw}`);
        }
        if (m.direction === 'in' && m.type === 'INVALID' && !this.expectCsmsErrors) {
          problems.push(`csms#${i + 1} recorded an INVALID frame from the station: ${m.raw.slice(0, 300)}`);
        }
      }
    }
    if (!this.expectCsmsErrors) {
      for (const line of this.csmsLog) {
        if (/schema validation failed for inbound/.test(line)) problems.push(line);
      }
    }
    for (const line of this.stationLog().split('\n')) {
      if (/\bBUG:/.test(line)) problems.push(`station: ${line}`);
    }
    return problems;
  }

  async cleanup() {
    if (this.cleanedUp) return;
    this.cleanedUp = true;
    try {
      await this.stopStation(3000);
    } catch {
      /* ignore */
    }
    // Bounded: a CSMS close waits for its connections, which a test may have wedged.
    const limit = new Promise((r) => setTimeout(r, 5000).unref());
    await Promise.race([Promise.allSettled(this.allCsms.map((c) => c.close())), limit]);
  }

  dump() {
    const tail = (s, n) => s.split('\n').slice(-n).join('\n');
    process.stderr.write(
      `\n======== ${this.name}: station log (${this.logFile}) ========\n${tail(this.stationLog(), 200)}\n` +
        `======== ${this.name}: CSMS log ========\n${tail(this.csmsLog.join('\n'), 200)}\n========\n`,
    );
  }

  removeDir() {
    if (!KEEP) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// A TCP port that was free a moment ago (127.0.0.1), for a listener started
// later (a station's web UI, a rogue server). Drawn below the kernel's
// ephemeral range: a port the kernel hands out for "listen on port 0" or for
// an outgoing connection (every other server and client of the tests) can then
// never take it between this check and the listener's bind.
function ephemeralLow() {
  try {
    return Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
}
function freePort() {
  const low = 10000;
  const high = Math.max(low + 1000, ephemeralLow());
  const tryPort = (attempt) => new Promise((resolve, reject) => {
    const port = low + require('node:crypto').randomInt(high - low);
    const srv = require('node:net').createServer();
    srv.once('error', (e) => {
      if (e.code === 'EADDRINUSE' && attempt < 50) resolve(tryPort(attempt + 1));
      else reject(e);
    });
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(port)));
  });
  return tryPort(0);
}

// The parts of a multipart/form-data body (RFC 7578), parsed strictly: the
// boundary from the Content-Type, the first line the first delimiter, CRLF
// before every further delimiter, a close delimiter at the end. Throws on any
// deviation. -> {boundary, parts: [{headers, name, filename, contentType, body: Buffer}], epilogue}
function parseMultipart(contentType, body) {
  const m = /^multipart\/form-data;\s*boundary=(?:"([^"]{1,70})"|([0-9A-Za-z'()+_,\-./:=?]{1,70}))\s*$/i.exec(
    contentType ?? '',
  );
  if (!m) throw new Error(`not multipart/form-data with a boundary: ${contentType}`);
  const boundary = m[1] ?? m[2];
  const delim = Buffer.from(`--${boundary}`);
  const nextDelim = Buffer.from(`\r\n--${boundary}`);
  if (!body.subarray(0, delim.length).equals(delim)) throw new Error('the body does not begin with the delimiter');
  const parts = [];
  let pos = delim.length;
  for (;;) {
    const after = body.subarray(pos, pos + 2).toString('latin1');
    if (after === '--') {
      pos += 2;
      break;
    }
    if (after !== '\r\n') throw new Error(`no CRLF after the delimiter at ${pos}`);
    pos += 2;
    const end = body.indexOf(nextDelim, pos);
    if (end < 0) throw new Error('no closing delimiter');
    const part = body.subarray(pos, end);
    const hdrEnd = part.indexOf('\r\n\r\n');
    if (hdrEnd < 0) throw new Error('a part without a header section');
    const headers = {};
    for (const line of part.subarray(0, hdrEnd).toString('utf8').split('\r\n')) {
      const hm = /^([A-Za-z0-9-]+):[ \t]*(.*)$/.exec(line);
      if (!hm) throw new Error(`bad part header line: ${JSON.stringify(line)}`);
      headers[hm[1].toLowerCase()] = hm[2];
    }
    const cd = /^form-data((?:;\s*[A-Za-z*]+="(?:[^"\\]|\\.)*")*)\s*$/i.exec(headers['content-disposition'] ?? '');
    if (!cd) throw new Error(`bad Content-Disposition: ${headers['content-disposition']}`);
    const params = {};
    for (const pm of cd[1].matchAll(/;\s*([A-Za-z*]+)="((?:[^"\\]|\\.)*)"/g)) params[pm[1].toLowerCase()] = pm[2];
    parts.push({
      headers,
      name: params.name,
      filename: params.filename,
      contentType: headers['content-type'],
      body: part.subarray(hdrEnd + 4),
    });
    pos = end + nextDelim.length;
  }
  const epilogue = body.subarray(pos);
  if (epilogue.length && !epilogue.subarray(0, 2).equals(Buffer.from('\r\n'))) throw new Error('junk after the close delimiter');
  return { boundary, parts, epilogue };
}

// A test HTTPS upload server (GetLog, N01) with the test PKI's server
// certificate for localhost (pki name: a different PKI = a CA the station does
// not trust). Takes the HTTP methods in `methods` and answers others with
// `refuse` (405, with Allow, or e.g. 501). Answers each taken request with
// `status` (a number, or a function of the attempt number; 'hang' = never
// answer). Every POST is parsed as multipart/form-data (`multipart`, or
// `multipartError`; a taken POST that does not parse is answered 400).
// Keeps every request (events: 'request', 'socketClose'):
// [{method, url, headers, body: Buffer, status, multipart?: {boundary, parts:
// [{headers, name, filename, contentType, body}]}, multipartError?}].
// url(): https://localhost:PORT/path.
async function startUploadServer({
  pki: pkiName = 'main',
  status = 200,
  maxBytes = 64 * 1024 * 1024,
  methods = ['PUT', 'POST'],
  refuse = 405,
} = {}) {
  const https = require('node:https');
  const p = await pki(pkiName);
  const requests = [];
  const events = new (require('node:events'))();
  const sockets = new Set();
  const server = https.createServer({ cert: fs.readFileSync(p.cert), key: fs.readFileSync(p.key) }, (req, res) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size <= maxBytes) chunks.push(c);
    });
    req.on('end', () => {
      const rec = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks) };
      if (req.method === 'POST') {
        try {
          rec.multipart = parseMultipart(req.headers['content-type'], rec.body);
        } catch (err) {
          rec.multipartError = err.message;
        }
      }
      let st;
      if (!methods.includes(req.method)) st = refuse;
      else if (rec.multipartError) st = 400;
      else st = typeof status === 'function' ? status(requests.length + 1) : status;
      rec.status = st;
      requests.push(rec);
      events.emit('request', rec);
      if (st === 'hang') return;
      const headers = { 'content-type': 'text/plain' };
      if (st === 405) headers.allow = methods.join(', ');
      res.writeHead(st, headers);
      res.end(st < 300 ? 'ok\n' : 'error\n');
    });
  });
  server.on('secureConnection', (s) => {
    sockets.add(s);
    s.on('close', () => {
      sockets.delete(s);
      events.emit('socketClose', s);
    });
  });
  const tlsErrors = [];
  server.on('tlsClientError', (err) => tlsErrors.push(err));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    port,
    requests,
    events,
    tlsErrors,
    url: (p2 = '/upload') => `https://localhost:${port}${p2}`,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// An HTTPS download server on loopback with the test PKI's server certificate
// (the CSMS roots the station trusts). files: { '/path': fileName }.
// behave(n, path) for the n-th request (from 1) returns 'ok', an HTTP status
// number, 'truncate' (half the file, then the connection drops) or 'stall'
// (half the file, then nothing).
// requests: [{path, status}]. url(path): https://localhost:PORT/path.
async function startDownloadServer({ pki: pkiName = 'main', files = {}, behave = () => 'ok' } = {}) {
  const https = require('node:https');
  const p = await pki(pkiName);
  const requests = [];
  const sockets = new Set();
  const server = https.createServer({ cert: fs.readFileSync(p.cert), key: fs.readFileSync(p.key) }, (req, res) => {
    const what = behave(requests.length + 1, req.url);
    const file = files[req.url];
    requests.push({ path: req.url, status: what });
    if (!file) {
      res.writeHead(404).end('not found\n');
      return;
    }
    if (typeof what === 'number') {
      res.writeHead(what).end('error\n');
      return;
    }
    const size = fs.statSync(file).size;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    if (what === 'stall') {
      res.write(fs.readFileSync(file).subarray(0, Math.floor(size / 2)));
      return; // never ends (until the server closes)
    }
    if (what === 'truncate') {
      const half = fs.readFileSync(file).subarray(0, Math.floor(size / 2));
      res.write(half, () => setTimeout(() => req.socket.destroy(), 50));
      return;
    }
    fs.createReadStream(file).pipe(res);
  });
  server.on('secureConnection', (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    port,
    requests,
    url: (p2) => `https://localhost:${port}${p2}`,
    close: () =>
      new Promise((resolve) => {
        for (const x of sockets) x.destroy();
        server.close(() => resolve());
      }),
  };
}

// Declares one integration test: itest(name, [opts], async (ctx, t) => {...}).
// opts: { timeout (ms, default 30000), csms: {startCsms options}, deviceModel: {...} }
function itest(name, opts, fn) {
  if (typeof opts === 'function') {
    fn = opts;
    opts = {};
  }
  const timeout = opts.timeout ?? 30000;
  return test(name, { timeout: timeout + 5000 }, async (t) => {
    const ctx = new Ctx(name, opts);
    ctx.webPort = await freePort(); // the station's web UI port, also for tests that spawn it themselves
    ctx.writeConfig(opts.extraToml ?? '');
    t.after(() => ctx.cleanup());
    let failed = true;
    let timer;
    try {
      const timedOut = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`test body exceeded ${timeout} ms`)), timeout);
      });
      await Promise.race([fn(ctx, t), timedOut]);
      const problems = ctx.protocolProblems();
      assert.deepEqual(problems, [], 'protocol problems:\n' + problems.join('\n'));
      failed = false;
    } finally {
      clearTimeout(timer);
      await ctx.cleanup();
      if (failed) ctx.dump();
      else ctx.removeDir();
    }
  });
}

module.exports = {
  CG_BIN,
  REPO,
  itest,
  pki,
  run,
  program,
  spawnProgram,
  runProgramSync,
  sleep,
  isCall,
  energyWh,
  sampled,
  assertTimestamp,
  RFC3339,
  freePort,
  startUploadServer,
  startDownloadServer,
  parseMultipart,
};
