#!/usr/bin/env node
// Development CSMS for chargeguard: OCPP 2.0.1 over WebSocket (npm ocpp-rpc,
// strict schema validation), security profile 2 (TLS + HTTP Basic auth), optional
// profile 3 (client certificates, when tls.ca is given: O = operator, CN = station
// serial) and, only on request, profile 1 (plain ws + Basic auth). With a signer
// CA it also answers SignCertificate (A02/A03) and sends CertificateSigned, using
// the openssl command line. Used by the demo and by integration tests.
// FOR DEVELOPMENT AND TESTING ONLY.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const https = require('https');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { EventEmitter } = require('events');
const { RPCServer } = require('ocpp-rpc');
const { startConsole, consoleClient } = require('./console');

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

// ---- certificates (profile 3, SignCertificate) -----------------------------

const OPENSSL_TIMEOUT_MS = 15000;
const SIGN_MODES = ['sign', 'reject', 'accept-only', 'wrong-cn', 'expired'];
const MODES_NEEDING_SIGNER = new Set(['sign', 'wrong-cn', 'expired']);
const CSR_MAX_LENGTH = 5500; // SignCertificateRequest.csr, schema maxLength
const CHAIN_MAX_LENGTH = 10000; // CertificateSignedRequest.certificateChain
const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
// Keys of at least 112-bit security (OCPP security whitepaper §2.6).
const EC_CURVES_OK = new Set([
  'prime256v1', 'secp384r1', 'secp521r1', 'secp224r1', 'secp256k1',
  'brainpoolP256r1', 'brainpoolP384r1', 'brainpoolP512r1',
]);

// Runs the openssl CLI without a shell. spawnSync rather than execFileSync: some
// results (e.g. `req -verify` in OpenSSL 3.0) are only reported on stderr with exit status 0.
function openssl(args, { input, cwd } = {}) {
  const r = spawnSync('openssl', args, {
    input,
    cwd,
    encoding: 'utf8',
    timeout: OPENSSL_TIMEOUT_MS,
    maxBuffer: 1 << 20,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  if (r.error) throw new Error(`openssl ${args[0]}: ${r.error.message}`);
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

// First line of an openssl error output, for messages (never contains key material:
// we only ever pass file names of keys to openssl).
const firstLine = (text) => String(text).split('\n').map((l) => l.trim()).filter(Boolean)[0] ?? '';

// Parses the output of `-nameopt RFC2253,-esc_msb` ("CN=a\\, b,O=x+OU=y") into
// [{type, value, hex}] in the printed order (RFC 2253 prints the last RDN first).
function parseRfc2253(text) {
  const out = [];
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error('malformed distinguished name');
    const type = text.slice(i, eq).trim();
    i = eq + 1;
    const hex = text[i] === '#'; // DER dump of a non-string value
    const parts = [];
    while (i < text.length && text[i] !== ',' && text[i] !== '+') {
      if (text[i] === '\\') {
        const h = text.slice(i + 1, i + 3);
        if (/^[0-9A-Fa-f]{2}$/.test(h)) {
          parts.push(Buffer.from(h, 'hex'));
          i += 3;
        } else {
          const cp = String.fromCodePoint(text.codePointAt(i + 1) ?? 0);
          parts.push(Buffer.from(cp, 'utf8'));
          i += 1 + cp.length;
        }
      } else {
        const cp = String.fromCodePoint(text.codePointAt(i));
        parts.push(Buffer.from(cp, 'utf8'));
        i += cp.length;
      }
    }
    out.push({ type, value: Buffer.concat(parts).toString('utf8'), hex });
    i += 1; // the separator
  }
  return out;
}

// The single value of attribute `type` in a parsed name; undefined when absent,
// null when ambiguous (repeated, or not a string).
function singleAttr(rdns, type) {
  const all = rdns.filter((r) => r.type === type);
  if (all.length === 0) return undefined;
  if (all.length > 1 || all[0].hex) return null;
  return all[0].value;
}

class CsrError extends Error {}

// Checks a PKCS#10 PEM: parses it, verifies its self-signature, reads its subject
// and public key. Throws CsrError with a human-readable reason.
function inspectCsr(csrPem) {
  if (typeof csrPem !== 'string' || csrPem.length === 0) throw new CsrError('no CSR');
  if (csrPem.length > CSR_MAX_LENGTH) throw new CsrError(`CSR longer than ${CSR_MAX_LENGTH} characters`);
  if (!/-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(csrPem)) throw new CsrError('not a PEM certificate request');
  const r = openssl(['req', '-noout', '-verify', '-subject', '-nameopt', 'RFC2253,-esc_msb', '-pubkey'], { input: csrPem });
  if (r.status !== 0) throw new CsrError(`CSR cannot be parsed (${firstLine(r.stderr)})`);
  // OpenSSL 3.0 exits 0 even when the self-signature does not verify.
  if (!/verify OK/i.test(r.stderr) || /verify fail/i.test(r.stderr)) throw new CsrError('CSR signature does not verify');
  const subjectLine = r.stdout.split('\n').find((l) => l.startsWith('subject='));
  if (subjectLine === undefined) throw new CsrError('CSR has no subject');
  let rdns;
  try {
    rdns = parseRfc2253(subjectLine.slice('subject='.length));
  } catch {
    throw new CsrError('CSR subject cannot be parsed');
  }
  const pubPem = /-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/.exec(r.stdout)?.[0];
  let publicKey;
  try {
    publicKey = crypto.createPublicKey(pubPem);
  } catch {
    throw new CsrError('CSR public key cannot be read');
  }
  const type = publicKey.asymmetricKeyType;
  const d = publicKey.asymmetricKeyDetails ?? {};
  const strong =
    ((type === 'rsa' || type === 'rsa-pss') && d.modulusLength >= 2048) ||
    (type === 'ec' && EC_CURVES_OK.has(d.namedCurve)) ||
    type === 'ed25519' ||
    type === 'ed448';
  if (!strong) throw new CsrError(`CSR key too weak or unsupported (${type} ${d.modulusLength ?? d.namedCurve ?? ''})`.trim());
  return {
    CN: singleAttr(rdns, 'CN'),
    O: singleAttr(rdns, 'O'),
    subject: subjectLine.slice('subject='.length),
    publicKey,
  };
}

// Escapes a value for openssl's -subj syntax (/type=value/...).
const subjValue = (v) => String(v).replace(/[\\/+]/g, (c) => '\\' + c);

const pemBlocks = (text) => String(text).match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];

const isSelfSigned = (x) => {
  try {
    return x.checkIssued(x) && x.verify(x.publicKey);
  } catch {
    return false;
  }
};

// openssl ca dates: YYYYMMDDHHMMSSZ
const caDate = (ms) => new Date(ms).toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');

// Loads and checks a signer {caCert, caKey, days}; the key stays in its file
// (openssl reads it); it is only loaded here to check that it matches the certificate.
function loadSigner(signer) {
  if (!signer.caCert || !signer.caKey) throw new Error('startCsms: signer needs caCert and caKey file paths');
  const days = signer.days ?? 365;
  if (!Number.isInteger(days) || days < 1) throw new Error('startCsms: signer.days must be a positive integer');
  const caCert = path.resolve(signer.caCert);
  const caKey = path.resolve(signer.caKey);
  const blocks = pemBlocks(fs.readFileSync(caCert, 'utf8'));
  if (blocks.length === 0) throw new Error(`startCsms: signer.caCert ${caCert}: no PEM certificate`);
  const certs = blocks.map((b) => new crypto.X509Certificate(b));
  if (!certs[0].ca) throw new Error(`startCsms: signer.caCert ${caCert} is not a CA certificate`);
  let key;
  try {
    key = crypto.createPrivateKey(fs.readFileSync(caKey));
  } catch (err) {
    throw new Error(`startCsms: signer.caKey ${caKey}: ${err.code ?? 'cannot be read'} (an unencrypted PEM key is needed)`);
  }
  if (!certs[0].checkPrivateKey(key)) throw new Error('startCsms: signer.caKey does not match signer.caCert');
  // Certificates that go after the leaf in CertificateSigned: the signing CA and
  // the rest of the file, except self-signed roots (unless sendChain is set).
  const chainPems = certs.map((c, i) => ({ pem: blocks[i].trim() + '\n', root: isSelfSigned(c) }));
  return { caCert, caKey, days, ca: certs[0], chainPems };
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
    // A02/A03: with a signer (or a test mode) see startCsms; otherwise Rejected.
    SignCertificate: async (client, params, ctx) =>
      cfg.signCertificate ? cfg.signCertificate(client, params, ctx) : { status: 'Rejected' },
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
 *          issued, waitFor, call, sendRaw, setPassword, signCsr, setSignCertificateMode, close }
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
    // profile 3
    organization,
    stations,
    profile3Only = false,
    // A02/A03 SignCertificate
    signer,
    signCertificate,
    sendChain = false,
    // operator console: a UNIX socket taking one JSON request per connection (console.js)
    control,
  } = opts;

  if (!tls && insecure !== true) {
    throw new Error('startCsms: tls {cert, key} required (plain ws only with insecure: true, profile 1)');
  }
  if (tls && (!tls.cert || !tls.key)) throw new Error('startCsms: tls needs cert and key file paths');
  if (passwords && passwordFile) throw new Error('startCsms: give passwords or passwordFile, not both');
  if (log !== null && typeof log !== 'function') throw new Error('startCsms: log must be a function or null');
  if (organization !== undefined && (typeof organization !== 'string' || organization === '')) {
    throw new Error('startCsms: organization must be a non-empty string');
  }
  if (profile3Only && !(tls && tls.ca)) throw new Error('startCsms: profile3Only needs tls.ca (the client certificate CA)');

  // identity -> expected client certificate / CSR CN (the station serial number)
  const stationSerials = new Map();
  const stationEntries = stations instanceof Map ? stations.entries() : Object.entries(stations ?? {});
  for (const [identity, st] of stationEntries) {
    const serial = typeof st === 'string' ? st : st?.serial;
    if (typeof serial !== 'string' || serial === '') throw new Error(`startCsms: stations[${identity}] needs a serial`);
    stationSerials.set(String(identity), serial);
  }
  const expectedCn = (identity) => stationSerials.get(identity) ?? identity;

  const signerInfo = signer ? loadSigner(signer) : null;
  const checkSignMode = (mode) => {
    if (mode === null) return null;
    if (!SIGN_MODES.includes(mode)) throw new Error(`signCertificate mode must be one of ${SIGN_MODES.join(', ')}`);
    if (MODES_NEEDING_SIGNER.has(mode) && !signerInfo) throw new Error(`signCertificate '${mode}' needs a signer`);
    return mode;
  };
  // null: no signer and no test mode, SignCertificate is answered Rejected as before
  let signMode = checkSignMode(signCertificate ?? (signerInfo ? 'sign' : null));

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
    signCertificate: null, // set below
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
  const issued = [];
  // client -> Map(messageId -> function run once our RESULT to that CALL has been sent)
  const followUps = new WeakMap();

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
    return rec;
  }

  // ---- A02/A03: SignCertificate -> CertificateSigned

  // Throws CsrError when the CSR is not one this station may have signed.
  function checkCsr(identity, csrPem) {
    const info = inspectCsr(csrPem);
    const want = expectedCn(identity);
    if (info.CN === null) throw new CsrError('CSR subject has more than one CN (or a non-string CN)');
    if (info.CN !== want) {
      const what = stationSerials.has(identity) ? `the serial number of ${identity}` : 'the identity';
      throw new CsrError(`CSR CN "${info.CN ?? ''}" is not ${what} ("${want}")`);
    }
    if (organization !== undefined && info.O !== organization) {
      throw new CsrError(`CSR O "${info.O ?? ''}" is not the operator "${organization}"`);
    }
    return info;
  }

  function randomSerialHex() {
    const b = crypto.randomBytes(16);
    b[0] = 0x10 + (b[0] % 0x70); // positive, no leading zero byte: 128 bits as 32 hex digits
    return b.toString('hex').toUpperCase();
  }

  // Signs a CSR (already inspected: info) with the signer CA in a private temp
  // directory; records and announces the certificate. Returns the issued entry.
  function issue(identity, csrPem, info, { mode, days, withChain }) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dev-csms-sign-'));
    try {
      fs.chmodSync(dir, 0o700);
      const file = (name) => path.join(dir, name);
      fs.writeFileSync(file('req.csr'), csrPem, { mode: 0o600 });
      const ext = [
        '[ext]',
        'basicConstraints = critical,CA:FALSE',
        'keyUsage = critical,digitalSignature',
        'extendedKeyUsage = clientAuth',
        'subjectKeyIdentifier = hash',
        'authorityKeyIdentifier = keyid',
        '',
      ];
      const serial = randomSerialHex();
      let args;
      if (mode === 'sign') {
        fs.writeFileSync(file('ext.cnf'), ext.join('\n'), { mode: 0o600 });
        args = ['x509', '-req', '-in', 'req.csr', '-CA', signerInfo.caCert, '-CAkey', signerInfo.caKey,
          '-days', String(days), '-sha256', '-set_serial', '0x' + serial, '-extfile', 'ext.cnf', '-extensions', 'ext',
          '-out', 'cert.pem'];
      } else {
        // `openssl x509` (3.0) can neither back-date (-not_after came in 3.4) nor take a
        // UTF-8 -subj; `openssl ca` can, with a throw-away database in the temp directory.
        const cnf = ['[ca]', 'default_ca = dev', '[dev]', 'database = index.txt', 'serial = serial',
          'new_certs_dir = .', 'default_md = sha256', 'policy = pol', 'unique_subject = no',
          'copy_extensions = none', 'email_in_dn = no', '[pol]', 'commonName = optional', ...ext];
        fs.writeFileSync(file('ca.cnf'), cnf.join('\n'), { mode: 0o600 });
        fs.writeFileSync(file('index.txt'), '', { mode: 0o600 });
        fs.writeFileSync(file('serial'), serial + '\n', { mode: 0o600 });
        args = ['ca', '-config', 'ca.cnf', '-batch', '-notext', '-preserveDN', '-utf8', '-in', 'req.csr',
          '-cert', signerInfo.caCert, '-keyfile', signerInfo.caKey, '-extensions', 'ext', '-out', 'cert.pem'];
        if (mode === 'expired') {
          const DAY = 86400000;
          args.push('-startdate', caDate(Date.now() - 2 * DAY), '-enddate', caDate(Date.now() - DAY));
        } else {
          args.push('-days', String(days));
        }
        if (mode === 'wrong-cn') {
          const wrong = `NOT-${info.CN ?? ''}`.slice(0, 64);
          args.push('-subj', `/CN=${subjValue(wrong)}` + (typeof info.O === 'string' ? `/O=${subjValue(info.O)}` : ''));
        }
      }
      const r = openssl(args, { cwd: dir });
      if (r.status !== 0 || !fs.existsSync(file('cert.pem'))) {
        throw new Error(`openssl ${args[0]} failed: ${firstLine(r.stderr)}`);
      }
      const leafPem = pemBlocks(fs.readFileSync(file('cert.pem'), 'utf8'))[0];
      if (!leafPem) throw new Error(`openssl ${args[0]} wrote no certificate`);
      const x = new crypto.X509Certificate(leafPem);
      if (!x.checkIssued(signerInfo.ca) || !x.verify(signerInfo.ca.publicKey)) {
        throw new Error('the issued certificate does not chain to the signer CA');
      }
      const chain = [leafPem + '\n', ...signerInfo.chainPems.filter((c) => withChain || !c.root).map((c) => c.pem)].join('');
      if (chain.length > CHAIN_MAX_LENGTH) throw new Error(`certificate chain longer than ${CHAIN_MAX_LENGTH} characters`);
      const entry = {
        identity,
        serial: x.serialNumber,
        pem: leafPem + '\n',
        chain,
        mode,
        subject: x.subject,
        validFrom: x.validFrom,
        validTo: x.validTo,
        time: now(),
      };
      issued.push(entry);
      const subj = x.toLegacyObject().subject ?? {};
      say(`** ${printable(identity)} certificate issued (${mode}): serial ${entry.serial}, ` +
        `subject CN=${printable(subj.CN ?? '')} O=${printable(subj.O ?? '')}, valid to ${x.validTo}`);
      try {
        events.emit('certificateIssued', entry);
      } catch (err) {
        say(`!! a 'certificateIssued' listener threw: ${err.message}`);
      }
      return entry;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  // Programmatic signing for tests: returns the certificateChain PEM (the leaf,
  // plus CA certificates as for CertificateSigned). Throws on a bad CSR.
  function signCsr(identity, csrPem, o = {}) {
    if (!signerInfo) throw new Error('signCsr: no signer configured (startCsms option signer)');
    const mode = o.mode ?? 'sign';
    if (!MODES_NEEDING_SIGNER.has(mode)) throw new Error('signCsr: mode must be sign, wrong-cn or expired');
    const days = o.days ?? signerInfo.days;
    if (!Number.isInteger(days) || days < 1) throw new Error('signCsr: days must be a positive integer');
    const id = String(identity);
    const info = o.check === false ? inspectCsr(csrPem) : checkCsr(id, csrPem);
    return issue(id, csrPem, info, { mode, days, withChain: o.sendChain ?? sendChain }).chain;
  }

  function setSignCertificateMode(mode) {
    signMode = checkSignMode(mode);
  }

  function sendCertificateSigned(client, entry, certificateType) {
    const id = printable(client.identity);
    client.call('CertificateSigned', { certificateChain: entry.chain, certificateType }).then(
      (res) => {
        entry.response = res;
      },
      (err) => {
        entry.error = err.message;
        say(`!! ${id} CertificateSigned (serial ${entry.serial}) failed: ${err.message}`);
      },
    );
  }

  cfg.signCertificate = async (client, params, ctx = {}) => {
    const mode = signMode;
    const id = printable(client.identity);
    if (mode === null) return { status: 'Rejected' };
    if (mode === 'reject') {
      say(`** ${id} SignCertificate answered Rejected (test mode 'reject')`);
      return { status: 'Rejected' };
    }
    const refuse = (reasonCode, why) => {
      say(`!! ${id} SignCertificate rejected (${reasonCode}): ${printable(why)}`);
      events.emit('csrRejected', { identity: client.identity, reasonCode, reason: why });
      return { status: 'Rejected', statusInfo: { reasonCode, additionalInfo: why.slice(0, 512) } };
    };
    const certificateType = params.certificateType ?? 'ChargingStationCertificate';
    if (certificateType !== 'ChargingStationCertificate') {
      return refuse('UnsupportedCertType', `this CSMS signs only ChargingStationCertificate, not ${certificateType}`);
    }
    let info;
    try {
      info = checkCsr(client.identity, params.csr);
    } catch (err) {
      if (err instanceof CsrError) return refuse('InvalidCSR', err.message);
      say(`!! ${id} SignCertificate: cannot check the CSR: ${err.message}`);
      return { status: 'Rejected', statusInfo: { reasonCode: 'InternalError' } };
    }
    say(`** ${id} SignCertificate CSR CN=${printable(info.CN)} O=${printable(info.O ?? '')} is acceptable (mode '${mode}')`);
    if (mode === 'accept-only') return { status: 'Accepted' }; // and never send CertificateSigned
    let entry;
    try {
      entry = issue(client.identity, params.csr, info, { mode, days: signerInfo.days, withChain: sendChain });
    } catch (err) {
      say(`!! ${id} SignCertificate: signing failed: ${err.message}`);
      return { status: 'Rejected', statusInfo: { reasonCode: 'InternalError' } };
    }
    // The CertificateSigned CALL goes out after our Accepted RESULT has been sent.
    const send = () => sendCertificateSigned(client, entry, certificateType);
    const pending = followUps.get(client);
    if (pending && ctx.messageId !== undefined) pending.set(ctx.messageId, send);
    else setTimeout(send, 0);
    return { status: 'Accepted' };
  };

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
    let certificate = null;
    const sock = hs.request.socket;
    if (tls && tls.ca && typeof sock.getPeerCertificate === 'function') {
      const peer = sock.getPeerCertificate();
      if (peer && Object.keys(peer).length > 0) {
        // Profile 3: the certificate must chain to tls.ca (Node checked that,
        // including the validity period), O = organization, CN = station serial.
        const CN = peer.subject?.CN;
        const O = peer.subject?.O;
        certificate = {
          subject: { CN, O },
          serialNumber: peer.serialNumber,
          fingerprint256: peer.fingerprint256,
          validTo: peer.valid_to,
        };
        const desc = `CN=${printable(CN ?? '')} O=${printable(O ?? '')} serial=${peer.serialNumber}`;
        if (!sock.authorized) {
          return deny(401, `client certificate not trusted (${sock.authorizationError}): ${desc}`);
        }
        if (typeof CN !== 'string') return deny(401, `client certificate without a single CN: ${desc}`);
        const want = expectedCn(id);
        if (CN !== want) {
          const what = stationSerials.has(id) ? `the serial number of this station ("${printable(want)}")` : 'the identity';
          return deny(401, `client certificate CN does not match ${what}: ${desc}`);
        }
        if (organization !== undefined && O !== organization) {
          return deny(401, `client certificate O is not the operator ("${printable(organization)}"): ${desc}`);
        }
        profile = 3;
      } else if (profile3Only) {
        return deny(401, 'no client certificate (security profile 3 required)');
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
    accept({ profile, subprotocolOk: offered, certificate }, offered ? PROTOCOL : false);
  });

  rpcServer.on('client', (client) => {
    const id = client.identity;
    const corr = { inbound: new Map(), outbound: new Map() };
    const pending = new Map();
    followUps.set(client, pending);
    client.on('message', ({ message, outbound }) => {
      const rec = record(client, corr, message, outbound ? 'out' : 'in');
      const next = outbound && rec.id !== null ? pending.get(rec.id) : undefined;
      if (next && (rec.type === 'RESULT' || rec.type === 'ERROR')) {
        pending.delete(rec.id);
        // (a handler override may have changed the answer of the default handler)
        if (rec.type === 'RESULT' && rec.payload?.status === 'Accepted') setImmediate(next);
        else say(`!! ${printable(id)} ${rec.action} was not answered Accepted; not sending the follow-up`);
      }
    });
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
      client.handle(action, ({ params, messageId }) => {
        const ctx = { messageId, identity: id };
        ctx.callDefault = () => (defaults[action] ? defaults[action](client, params, ctx) : {});
        return handler(client, params, ctx);
      });
    }

    const previous = clients.get(id);
    clients.set(id, client);
    if (previous) {
      say(`== ${printable(id)} reconnected; closing the previous connection`);
      previous.close({ code: 1000, reason: 'replaced by a new connection' }).catch(() => {});
    }
    const cert = client.session.certificate;
    const certInfo = cert
      ? `, client certificate CN=${printable(cert.subject.CN)} O=${printable(cert.subject.O ?? '')} serial=${cert.serialNumber}`
      : '';
    say(`== ${printable(id)} connected (profile ${client.session.profile}, ${client.handshake.remoteAddress}${certInfo})`);
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
      // Profile 3: ask for a client certificate; verified ones (O = organization,
      // CN = station serial or identity) authenticate without a password. Stations
      // without one use profile 2, unless profile3Only. The checks are made in
      // auth() so that a refusal is an HTTP 401 with a logged reason.
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
  // Firmware images offered to stations (L01): GET /firmware/<token>/<name> of
  // a file registered by offerFirmware(); nothing else is served.
  const offered = new Map(); // token -> file path
  server.on('request', (req, res) => {
    const m = /^\/firmware\/([0-9a-f]{32})\/[^/]+$/.exec(req.url ?? '');
    const file = m && req.method === 'GET' ? offered.get(m[1]) : undefined;
    if (!file) {
      res.statusCode = 404;
      res.end();
      return;
    }
    let size;
    try {
      size = fs.statSync(file).size;
    } catch {
      res.statusCode = 404;
      res.end();
      return;
    }
    say(`== firmware download ${req.url} (${size} bytes) by ${req.socket.remoteAddress}`);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    fs.createReadStream(file).pipe(res);
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
      if (controlServer) controlServer.close();
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

  // The HTTPS location of `file` for a station (same server, same certificate as the CSMS).
  function offerFirmware(file) {
    if (!tls) throw new Error('offerFirmware: firmware is only offered over HTTPS');
    const token = crypto.randomBytes(16).toString('hex');
    offered.set(token, path.resolve(file));
    return `https://${urlHost}:${actualPort}/firmware/${token}/${encodeURIComponent(path.basename(file))}`;
  }

  // UpdateFirmware (L01) for a connected station: the image is offered for
  // download, the signature (base64 text file) and signing certificate go in the request.
  async function updateFirmware(identity, { image, signature, certificate, requestId, retries = 2, retryInterval = 10 }) {
    const payload = {
      requestId: requestId ?? crypto.randomInt(1, 2 ** 31 - 1),
      retries,
      retryInterval,
      firmware: {
        location: offerFirmware(image),
        retrieveDateTime: now(),
        signingCertificate: fs.readFileSync(certificate, 'utf8'),
        signature: fs.readFileSync(signature, 'utf8').replace(/\s+/g, ''),
      },
    };
    const result = await call(identity, 'UpdateFirmware', payload);
    return { requestId: payload.requestId, location: payload.firmware.location, result };
  }

  // Operator console (--control PATH): see console.js.
  const controlServer = control
    ? await startConsole(control, {
        call: (r) => call(r.identity, r.action, r.payload ?? {}),
        updateFirmware: (r) => updateFirmware(r.identity, r),
      })
    : null;
  if (control) say(`operator console on ${control}`);

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
    issued,
    waitFor,
    call,
    sendRaw,
    setPassword,
    signCsr,
    setSignCertificateMode,
    offerFirmware,
    updateFirmware,
    close,
  };
}

module.exports = { startCsms };

// ---- CLI -----------------------------------------------------------------

function usage(code) {
  const text =
    'usage: node csms.js [--host 127.0.0.1] [--port 9443] --cert FILE --key FILE [--ca FILE]\n' +
    '                    [--password-file FILE] [--insecure] [--quiet]\n' +
    '       [--boot-status Accepted|Pending|Rejected] [--heartbeat-interval SECONDS]\n' +
    '  profile 3:   [--organization NAME] [--station IDENTITY=SERIAL]... [--require-client-cert]\n' +
    '  signing:     [--sign-ca-cert FILE --sign-ca-key FILE [--sign-days N] [--send-chain]]\n' +
    '               [--sign-certificate sign|reject|accept-only|wrong-cn|expired]\n' +
    '  operator:    [--control SOCKET]  (then, from another shell:)\n' +
    '       node csms.js update-firmware --control SOCKET --station ID --image FILE --signature FILE --cert FILE\n' +
    '       node csms.js call --control SOCKET ID ACTION [JSON-PAYLOAD]\n';
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
    '--organization': 'organization',
    '--sign-ca-cert': 'signCaCert',
    '--sign-ca-key': 'signCaKey',
    '--sign-days': 'signDays',
    '--sign-certificate': 'signCertificate',
    '--control': 'control',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--insecure') o.insecure = true;
    else if (a === '--quiet') o.quiet = true;
    else if (a === '--require-client-cert') o.profile3Only = true;
    else if (a === '--send-chain') o.sendChain = true;
    else if (a === '--station' && i + 1 < argv.length) {
      const m = /^([^=]+)=(.+)$/.exec(argv[++i]);
      if (!m) {
        process.stderr.write(`--station needs IDENTITY=SERIAL, not ${argv[i]}\n`);
        usage(2);
      }
      o.stations = o.stations ?? {};
      o.stations[m[1]] = { serial: m[2] };
    }
    else if (a === '--help' || a === '-h') usage(0);
    else if (valueFlags[a] && i + 1 < argv.length) o[valueFlags[a]] = argv[++i];
    else {
      process.stderr.write(`unknown or incomplete option: ${a}\n`);
      usage(2);
    }
  }
  for (const k of ['port', 'heartbeatInterval', 'signDays']) {
    if (o[k] !== undefined) {
      const n = Number(o[k]);
      if (!Number.isInteger(n) || n < 0 || (k === 'port' && n > 65535) || (k === 'signDays' && n < 1)) {
        process.stderr.write(`invalid ${k}: ${o[k]}\n`);
        usage(2);
      }
      o[k] = n;
    }
  }
  return o;
}

async function main() {
  if (['call', 'update-firmware'].includes(process.argv[2])) {
    return consoleClient(process.argv.slice(2), () => usage(2));
  }
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
  if (a.profile3Only && !a.ca) {
    process.stderr.write('--require-client-cert needs --ca\n');
    usage(2);
  }
  if ((a.signCaCert || a.signCaKey) && !(a.signCaCert && a.signCaKey)) {
    process.stderr.write('--sign-ca-cert and --sign-ca-key go together\n');
    usage(2);
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
    organization: a.organization,
    stations: a.stations,
    profile3Only: a.profile3Only === true,
    signer: a.signCaCert ? { caCert: a.signCaCert, caKey: a.signCaKey, days: a.signDays } : undefined,
    signCertificate: a.signCertificate,
    sendChain: a.sendChain === true,
    control: a.control,
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
