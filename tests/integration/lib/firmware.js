// Firmware test helpers: the station's configuration for the firmware CLI,
// the pinned manufacturer root, images packed and signed (our tool or the
// openssl CLI), installs and `firmware status`.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { pki, run, CG_BIN, isCall } = require('./harness');

const MODEL = 'CG-IT';

// The station's whole configuration (the firmware CLI reads it; the station
// gets the same values on its command line).
function writeConfig(ctx, p, extra = '') {
  ctx.writeConfig(
    [
      '[station]',
      `identity = "${ctx.identity}"`,
      `state_dir = "${ctx.stateDir}"`,
      `model = "${MODEL}"`,
      '[csms]',
      `url = "${ctx.csms.url}"`,
      'security_profile = 2',
      `ca_file = "${p.rootCa}"`,
      `password_file = "${ctx.pwFile}"`,
      extra,
    ].join('\n') + '\n',
  );
}

async function cliOk(ctx, args) {
  const r = await ctx.cli(args, { timeoutMs: 60000 });
  assert.equal(r.code, 0, `chargeguard ${args.join(' ')} failed (${r.code}):\n${r.stderr}${r.stdout}`);
  return r;
}

// Sets up the CSMS, the configuration and the pinned manufacturer root.
// toml: more configuration (e.g. a [firmware] section); csms: options of the dev CSMS.
async function prepare(ctx, { toml = '', csms = {} } = {}) {
  const p = await pki();
  await ctx.startCsms(csms);
  writeConfig(ctx, p, toml);
  await cliOk(ctx, ['pki', 'install-root', '--config', ctx.configFile, '--type', 'ManufacturerRootCertificate',
    '--cert', path.join(p.dir, 'manufacturer-root-ca.pem')]);
  return {
    ...p,
    signerCert: path.join(p.dir, 'firmware-signer.pem'),
    signerKey: path.join(p.dir, 'firmware-signer.key'),
    mfrRoot: path.join(p.dir, 'manufacturer-root-ca.pem'),
    mfrKey: path.join(p.dir, 'manufacturer-root-ca.key'),
  };
}

// Packs `payload` as an image and signs it (with our tool, or with the openssl CLI).
async function image(ctx, p, { version, sv = 1, model = MODEL, payload = CG_BIN, openssl = false,
  cert = p.signerCert, key = p.signerKey }) {
  const img = path.join(ctx.dir, `fw-${version}.img`);
  const sig = `${img}.sig`;
  await cliOk(ctx, ['firmware', 'pack', '--payload', payload, '--model', model, '--version', version,
    '--security-version', String(sv), '--out', img]);
  if (openssl) {
    const bin = `${img}.sig.bin`;
    let r = await run('openssl', ['dgst', '-sha256', '-sign', key, '-out', bin, img]);
    assert.equal(r.code, 0, r.stderr);
    r = await run('openssl', ['base64', '-A', '-in', bin, '-out', sig]);
    assert.equal(r.code, 0, r.stderr);
  } else {
    const r = await cliOk(ctx, ['firmware', 'sign', '--key', key, '--cert', cert, img]);
    fs.writeFileSync(sig, r.stdout);
  }
  return { img, sig, cert, version, sv };
}

function install(ctx, im, { factory = false } = {}) {
  return ctx.cli(['firmware', factory ? 'install-factory' : 'install', '--config', ctx.configFile, '--image', im.img,
    '--cert', im.cert, '--signature', im.sig], { timeoutMs: 60000 });
}

async function status(ctx) {
  const r = await cliOk(ctx, ['firmware', 'status', '--config', ctx.configFile]);
  return JSON.parse(r.stdout);
}

const bootWith = (version, reason) =>
  isCall('BootNotification', (pl) => pl.chargingStation.firmwareVersion === version && (!reason || pl.reason === reason));

const securityEvent = (type) => isCall('SecurityEventNotification', (pl) => pl.type === type);

function flipByte(file, offset) {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, offset);
  b[0] ^= 0x01;
  fs.writeSync(fd, b, 0, 1, offset);
  fs.closeSync(fd);
}

const slotImage = (ctx, slot) => path.join(ctx.stateDir, 'firmware', `slot-${slot}`, 'image');

module.exports = { MODEL, writeConfig, cliOk, prepare, image, install, status, bootWith, securityEvent, flipByte, slotImage };
