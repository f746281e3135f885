// Syslog forwarding of the security audit log (issue 3, "Syslog forwarding"):
// the station sends every audit record as an RFC 5424 message over mutual TLS
// (RFC 5425 octet-counted framing) to a real rsyslog collector, in order; when
// the collector is down the records are buffered (the log file is the buffer)
// and resent from the persisted cursor once it is back, across a station
// restart too — none lost, none duplicated, none reordered.
//
// The station is configured with a [syslog] section:
//
//   [syslog]
//   host = "localhost"            # verified against the collector certificate
//   port = 6514
//   ca_file = "…/csms-root-ca.pem" # CA(s) trusted for the collector
//   cert_file = "…/station.pem"   # station client certificate (PEM)
//   key_file = "…/station.key"    # its key (PEM)
//   facility = 10                 # optional, authpriv
//
// Needs rsyslog + rsyslog-openssl (scripts/test.sh installs them); without
// them the test fails, naming the package.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { itest, pki, sleep, freePort, spawnProgram, runProgramSync, program } = require('./lib/harness');

// rsyslogd (scripts/programs.tsv: rsyslog + rsyslog-openssl) and its ossl
// stream driver; a missing one fails the test, naming the package.
function requireRsyslog() {
  program('rsyslogd');
  const dirs = ['/usr/lib/x86_64-linux-gnu/rsyslog', '/usr/lib/aarch64-linux-gnu/rsyslog', '/usr/lib/rsyslog'];
  if (!dirs.some((d) => fs.existsSync(path.join(d, 'lmnsd_ossl.so'))))
    throw new Error("rsyslog's ossl stream driver (lmnsd_ossl.so) is not installed (Debian package rsyslog-openssl)");
}

const portOpen = (port) =>
  new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });

// A real rsyslogd with the ossl driver, mutual TLS, only `peer` permitted.
class Collector {
  constructor(dir, port, { ca, cert, key, peer }) {
    this.dir = dir;
    this.port = port;
    this.received = path.join(dir, 'received.log');
    this.conf = path.join(dir, 'rsyslog.conf');
    this.out = path.join(dir, 'rsyslogd.out');
    fs.mkdirSync(path.join(dir, 'work'), { recursive: true });
    fs.writeFileSync(
      this.conf,
      `global(workDirectory="${path.join(dir, 'work')}" DefaultNetstreamDriver="ossl"
  DefaultNetstreamDriverCAFile="${ca}" DefaultNetstreamDriverCertFile="${cert}"
  DefaultNetstreamDriverKeyFile="${key}")
module(load="imtcp" StreamDriver.Name="ossl" StreamDriver.Mode="1"
  StreamDriver.AuthMode="x509/name" PermittedPeer=["${peer}"])
input(type="imtcp" address="127.0.0.1" port="${port}")
action(type="omfile" file="${this.received}" template="RSYSLOG_SyslogProtocol23Format")
`,
    );
  }

  async start() {
    const fd = fs.openSync(this.out, 'a');
    this.child = spawnProgram('rsyslogd', ['-n', '-f', this.conf, '-i', path.join(this.dir, 'rsyslog.pid')], {
      stdio: ['ignore', fd, fd],
    });
    fs.closeSync(fd);
    this.exited = new Promise((r) => this.child.on('exit', r));
    const deadline = Date.now() + 10000;
    while (!(await portOpen(this.port))) {
      if (Date.now() > deadline) throw new Error(`rsyslogd did not listen:\n${this.output()}`);
      await sleep(50);
    }
  }

  async stop() {
    if (!this.child) return;
    const c = this.child;
    this.child = null;
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }

  output() {
    try {
      return fs.readFileSync(this.out, 'utf8');
    } catch {
      return '';
    }
  }

  // The messages received so far: {pri, host, app, msgid, seq, outcome, body}.
  messages() {
    let text = '';
    try {
      text = fs.readFileSync(this.received, 'utf8');
    } catch {
      return [];
    }
    const out = [];
    for (const line of text.split('\n')) {
      const m = /^<(\d+)>1 (\S+) (\S+) (\S+) (\S+) (\S+) \[cg@32473 seq="(\d+)" outcome="(\w+)"\] (.*)$/.exec(line);
      if (!m) continue;
      out.push({ pri: +m[1], time: m[2], host: m[3], app: m[4], msgid: m[6], seq: +m[7], outcome: m[8], body: m[9] });
    }
    return out;
  }
}

// Station client certificate (CN = identity) signed by the dev operator root.
function stationCert(pkiDir, dir, identity) {
  const key = path.join(dir, 'station.key');
  const cert = path.join(dir, 'station.pem');
  const csr = path.join(dir, 'station.csr');
  const ext = path.join(dir, 'ext.cnf');
  runProgramSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
  runProgramSync('openssl', ['req', '-new', '-key', key, '-subj', `/O=Test CPO/CN=${identity}`, '-out', csr]);
  fs.writeFileSync(ext, 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  runProgramSync('openssl', [
    'x509', '-req', '-in', csr, '-CA', path.join(pkiDir, 'operator-root-ca.pem'),
    '-CAkey', path.join(pkiDir, 'operator-root-ca.key'), '-CAcreateserial', '-days', '2', '-sha256',
    '-extfile', ext, '-out', cert,
  ], { stdio: 'ignore' });
  return { key, cert };
}

// Polls until every audit record is at the collector; returns the messages.
async function waitAllDelivered(ctx, col, { timeoutMs = 20000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ex = await ctx.auditExport();
    const want = ex.records.map((r) => r.seq);
    const got = col.messages();
    const have = new Set(got.map((m) => m.seq));
    if (want.length > 0 && want.every((s) => have.has(s))) return { records: ex.records, messages: got };
    if (Date.now() > deadline) {
      throw new Error(
        `collector has seqs [${got.map((m) => m.seq)}], audit log has [${want}]\nrsyslogd:\n${col.output().slice(-2000)}`,
      );
    }
    await sleep(200);
  }
}

function assertInOrderOnce(messages, records) {
  const seqs = messages.map((m) => m.seq);
  assert.deepEqual(seqs, records.map((r) => r.seq), 'every record once, in order');
  const bySeq = new Map(records.map((r) => [r.seq, r]));
  for (const m of messages) {
    const r = bySeq.get(m.seq);
    assert.equal(m.app, 'chargeguard');
    assert.equal(m.outcome, r.outcome);
    assert.equal(m.msgid, r.type.slice(0, 32));
    assert.equal(Math.floor(m.pri / 8), 10, 'facility authpriv');
    const sev = m.pri % 8;
    const want = r.critical ? (r.outcome === 'failure' ? 2 : 4) : r.outcome === 'failure' ? 5 : 6;
    assert.equal(sev, want, `severity of ${r.type}/${r.outcome}`);
    assert.equal(Date.parse(m.time), Date.parse(r.time), 'the record time is the message time');
    assert.deepEqual(JSON.parse(m.body), JSON.parse(r.line.split('\t')[0]), 'MSG is the record JSON');
  }
}

itest(
  'syslog: audit records reach rsyslog over mutual TLS in order, and are resent after the collector was down',
  { timeout: 90000 },
  async (ctx, t) => {
    requireRsyslog();
    const p = await pki('main');
    const sdir = path.join(ctx.dir, 'syslog');
    fs.mkdirSync(sdir, { recursive: true });
    const client = stationCert(p.dir, sdir, ctx.identity);
    const port = await freePort();
    const col = new Collector(sdir, port, {
      ca: path.join(p.dir, 'operator-root-ca.pem'),
      cert: p.cert,
      key: p.key,
      peer: ctx.identity,
    });
    t.after(() => col.stop());

    fs.appendFileSync(
      ctx.configFile,
      `\n[syslog]\nhost = "localhost"\nport = ${port}\nca_file = ${JSON.stringify(p.rootCa)}\n` +
        `cert_file = ${JSON.stringify(client.cert)}\nkey_file = ${JSON.stringify(client.key)}\nfacility = 10\n`,
    );

    await col.start();
    await ctx.startCsms();
    await ctx.startStation();

    // 1. Online: everything so far (StartupOfTheDevice, …) arrives in order.
    let { records, messages } = await waitAllDelivered(ctx, col);
    assertInOrderOnce(messages, records);
    assert.ok(messages.every((m) => m.host === ctx.identity), 'HOSTNAME is the station identity');
    const before = messages.length;

    // 2. Collector down: new records (tamper) are buffered …
    await col.stop();
    await sleep(1500);
    await ctx.simOk('case', 'open');
    await ctx.simOk('moved');
    await sleep(500);
    assert.equal(col.messages().length, before);

    // … and after a station restart while still down (Shutdown, Startup) too.
    await ctx.stopStation();
    await ctx.startStation();
    await sleep(500);

    // 3. Collector back: the missed records arrive, in order, exactly once.
    await col.start();
    ({ records, messages } = await waitAllDelivered(ctx, col, { timeoutMs: 90000 - 20000 }));
    assertInOrderOnce(messages, records);
    assert.ok(records.some((r) => r.type === 'TamperDetectionActivated'));
    await ctx.stopStation();
    await ctx.assertAuditOk();
  },
);
