// FW-3 in the browser: the engineer uploads a signed image through the web
// UI's form (multipart, streamed into the inactive slot through the firmware
// service: the same verifier as OCPP and the CLI). A random file is a wrong
// signature, refused and recorded; a signed image is installed for the next
// boot; a viewer and an admin are refused (only the engineer updates firmware).
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { after } = require('node:test');
const { itest } = require('./lib/harness');
const fw = require('./lib/firmware');
const web = require('./lib/web');

let browserPromise = null;
const browser = () => (browserPromise ??= web.launch());
after(async () => {
  if (browserPromise) await (await browserPromise).close();
});

async function upload(page, ctx, im) {
  await page.goto(`${ctx.webUrl}/firmware`);
  await page.setInputFiles('#certificate', im.cert);
  await page.setInputFiles('#signature', im.sig);
  await page.setInputFiles('#image', im.img);
  await Promise.all([page.waitForLoadState('load'), page.click('#upload button[type="submit"]')]);
  await page.waitForSelector('.notice');
  return page.textContent('main');
}

itest('firmware upload in the browser: a random file is a wrong signature (audited), a signed image is installed for the next boot',
  { timeout: 120000 }, async (ctx) => {
    const p = await fw.prepare(ctx);  // the harness gives the web UI this test's port
    ctx.webUrl = `https://127.0.0.1:${ctx.webPort}`;
    const v1 = await fw.image(ctx, p, { version: '1.0.0-web', sv: 1 });
    assert.equal((await fw.install(ctx, v1, { factory: true })).code, 0);
    const initial = await web.accountsInit(ctx);
    await ctx.startStation({ boot: true });
    await ctx.waitFor(fw.bootWith('1.0.0-web', 'PowerUp'), { timeoutMs: 15000 });

    const b = await browser();
    const admin = await web.newPage(b);
    await web.login(admin.page, ctx, 'admin', initial);
    await web.changePassword(admin.page, initial, 'Kq7v-mT3x.Lp9');
    const eng = await web.addAccount(admin.page, b, ctx, 'erik', 'engineer', 'Eq7v-mT3x.Lp9');

    // A random file with a real signer's certificate and some signature: wrong signature.
    const junk = path.join(ctx.dir, 'random.img');
    fs.writeFileSync(junk, crypto.randomBytes(3 * 1024 * 1024 + 17));
    let text = await upload(eng.page, ctx, { img: junk, sig: v1.sig, cert: v1.cert });
    assert.match(text, /Not installed: wrong signature/);
    await web.shot(eng.page, 'firmware-refused');
    let audit = await ctx.auditExport();
    assert.ok(audit.records.some((r) => r.type === 'InvalidFirmwareSignature' && r.source.principal === 'erik'),
      'the refusal is recorded with who uploaded');
    let st = await fw.status(ctx);
    assert.equal(st.slots.b.state, 'empty', 'nothing is left in the slot');

    // The admin and a viewer may look, not install (separation of duties: the engineer updates firmware).
    const v2 = await fw.image(ctx, p, { version: '2.0.0-web', sv: 2 });
    text = await upload(admin.page, ctx, v2);
    assert.match(text, /Not installed: UpdateFirmware is not permitted/);
    st = await fw.status(ctx);
    assert.equal(st.slots.b.state, 'empty');

    // Without JavaScript the same form works (multipart POST, the verdict page).
    const nojs = await b.newContext({ ignoreHTTPSErrors: true, javaScriptEnabled: false });
    const page = await nojs.newPage();
    await web.login(page, ctx, 'erik', 'Eq7v-mT3x.Lp9');
    text = await upload(page, ctx, { img: junk, sig: v1.sig, cert: v1.cert });
    assert.match(text, /Not installed: wrong signature/);
    await nojs.close();

    // The engineer's signed image: verified, installed into slot b, tried at the next boot.
    text = await upload(eng.page, ctx, v2);
    assert.match(text, /Signature verified\. Firmware 2\.0\.0-web/);
    await web.shot(eng.page, 'firmware-installed');
    st = await fw.status(ctx);
    assert.equal(st.slots.b.state, 'trying');
    assert.equal(st.slots.b.image.version, '2.0.0-web');
    // The installed bytes are exactly the uploaded image.
    assert.ok(fs.readFileSync(fw.slotImage(ctx, 'b')).equals(fs.readFileSync(v2.img)));
    audit = await ctx.auditExport();
    assert.ok(audit.records.some((r) => r.type === 'FirmwareUpdateProgress' && r.source.principal === 'erik'));
    assert.ok(audit.records.some((r) => r.type === 'AccessDenied' && r.source.principal === 'admin'),
      'the admin\'s attempt is recorded');
    await ctx.assertAuditOk();

    // The engineer restarts the station from the verdict page: the boot stage boots the new image.
    const from = ctx.mark();
    await Promise.all([eng.page.waitForNavigation(), eng.page.click('#restart')]);
    assert.match(await eng.page.textContent('.notice'), /restarts now/);
    await ctx.waitFor(fw.bootWith('2.0.0-web', 'FirmwareUpdate'), { from, timeoutMs: 20000 });
    audit = await ctx.auditExport();
    assert.ok(audit.records.some((r) => r.type === 'ResetOrReboot' && r.source.principal === 'erik'));

    await admin.context.close();
    await eng.context.close();
  });
