// The commissioning PIN (AUTH-9) and the renaming of accounts (AUTH-10) in a
// real browser: `pin init` gives each station its own default PIN, once; the
// admin's dashboard asks to replace it; the PIN page enforces the rules, needs
// the current PIN and locks after wrong ones (also across a restart); a lost
// PIN is reset to a new default. An admin renames accounts (its sessions end,
// the old name no longer logs in) and their own 'admin' into a person's name.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { after } = require('node:test');
const { itest } = require('./lib/harness');
const web = require('./lib/web');

let browserPromise = null;
const browser = () => (browserPromise ??= web.launch());
after(async () => {
  if (browserPromise) await (await browserPromise).close();
});

async function pinInit(ctx) {
  const r = await ctx.cli(['pin', 'init', '--config', ctx.configFile], { timeoutMs: 30000 });
  return { code: r.code, stderr: r.stderr, lines: r.stdout.split('\n').filter(Boolean) };
}

// Submits the PIN change form; returns the HTTP status and the page's notice.
async function changePin(page, ctx, current, next, confirm = next) {
  await page.goto(`${ctx.webUrl}/pin`);
  if (current !== null) await page.fill('#current', current);
  await page.fill('#pin', next);
  await page.fill('#confirm', confirm);
  // The server's rules, not the browser's: the form's own pattern check is switched off.
  await page.evaluate(() => { document.querySelector('form input[value="change"]').form.noValidate = true; });
  const [resp] = await Promise.all([page.waitForNavigation(), page.click('form input[value="change"] ~ p button')]);
  return { status: resp.status(), notice: await page.textContent('.notice') };
}

itest('commissioning PIN: a default of its own per station, replaced under the rules; wrong PINs lock, also after a restart',
  { timeout: 120000 }, async (ctx) => {
    let label = null;
    const b = await browser();
    const { admin } = await web.stationWithAdmin(ctx, b, {
      setup: { accounts: 'lockout = "6:20s"' },
      beforeStart: async () => {
        const first = await pinInit(ctx);
        assert.equal(first.code, 0, first.stderr);
        assert.equal(first.lines.length, 1, 'stdout holds the PIN alone');
        label = first.lines[0];
        assert.match(label, /^[0-9]{10}$/);
        assert.match(first.stderr, /must be replaced/);
        assert.equal((await pinInit(ctx)).code, 3, 'once only');
      },
    });
    await admin.page.goto(`${ctx.webUrl}/`);
    assert.match(await admin.page.textContent('main'), /commissioning PIN is still the default/);
    await admin.page.goto(`${ctx.webUrl}/pin`);
    assert.match(await admin.page.textContent('#pin-state'), /default from the label/);
    await web.shot(admin.page, 'commissioning-pin');

    // Each rule is named; the two entries must agree; the current PIN is needed.
    let r = await changePin(admin.page, ctx, label, '12345678');
    assert.equal(r.status, 400);
    assert.match(r.notice, /ascending or descending sequence/);
    r = await changePin(admin.page, ctx, label, '55555555');
    assert.match(r.notice, /not one digit repeated/);
    r = await changePin(admin.page, ctx, label, '4711');
    assert.match(r.notice, /8 to 16 digits/);
    r = await changePin(admin.page, ctx, label, '47110815', '47110816');
    assert.match(r.notice, /two new PINs differ/);
    // Wrong current PINs lock the PIN (6 → 20 s here), the right one is then refused, even after a restart.
    for (let i = 1; i <= 6; i++) {
      r = await changePin(admin.page, ctx, '00000000', '47110815');
      assert.match(r.notice, /current PIN is wrong/);
    }
    assert.match(r.notice, /locked until/);
    await ctx.stopStation();
    await ctx.startStation();
    await ctx.waitFor('BootNotification');
    await web.login(admin.page, ctx, 'admin', web.ADMIN_PASSWORD);
    r = await changePin(admin.page, ctx, label, '47110815');
    assert.equal(r.status, 409);
    assert.match(r.notice, /locked until/);
    await new Promise((res) => setTimeout(res, 21000));
    r = await changePin(admin.page, ctx, label, '47110815');
    assert.equal(r.status, 200, r.notice);
    assert.match(r.notice, /PIN was changed/);
    await admin.page.goto(`${ctx.webUrl}/`);
    assert.doesNotMatch(await admin.page.textContent('main'), /commissioning PIN/);

    // A lost PIN: a new default, shown once, which the dashboard asks to replace again;
    // the admin's own password first (an open session alone does not get a working PIN).
    const resetPin = async (password) => {
      await admin.page.goto(`${ctx.webUrl}/pin`);
      await admin.page.fill('form input[value="reset"] ~ input[autocomplete="current-password"]', password);
      const [resp] = await Promise.all([admin.page.waitForNavigation(), admin.page.click('form input[value="reset"] ~ p button')]);
      return resp.status();
    };
    assert.equal(await resetPin('Wrong-pass1'), 400);
    assert.match(await admin.page.textContent('.notice'), /Your password is wrong/);
    assert.equal(await admin.page.locator('#new-pin').count(), 0);
    assert.equal(await resetPin(web.ADMIN_PASSWORD), 200);
    const fresh = (await admin.page.textContent('#new-pin')).trim();
    assert.match(fresh, /^[0-9]{10}$/);
    assert.notEqual(fresh, label);
    await admin.page.goto(`${ctx.webUrl}/`);
    assert.match(await admin.page.textContent('main'), /commissioning PIN is still the default/);
    assert.equal((await changePin(admin.page, ctx, fresh, '90817263')).status, 200);

    // An engineer has no business here; no PIN reaches the audit log.
    const eng = await web.addAccount(admin.page, b, ctx, 'ella', 'engineer', 'Eq7v-mT3x.Lp9');
    assert.equal((await eng.page.goto(`${ctx.webUrl}/pin`)).status(), 403);
    const audit = await ctx.auditExport();
    const pinRecords = audit.records.filter((x) => x.type === 'AccountChanged' && x.details.account === 'commissioning');
    assert.ok(pinRecords.filter((x) => x.outcome === 'failure').length >= 6,
      `every wrong PIN is recorded: ${JSON.stringify(audit.records.filter((x) => x.type === 'AccountChanged'))}`);
    assert.deepEqual(pinRecords.filter((x) => x.outcome === 'success').map((x) => x.details.action),
      ['init PIN', 'change PIN', 'reset PIN', 'change PIN']);
    const raw = fs.readFileSync(path.join(ctx.stateDir, 'audit', 'security.log'));
    for (const secret of [label, fresh, '47110815', '90817263']) assert.equal(raw.indexOf(secret), -1, 'no PIN in the log');
    await Promise.all([admin.context.close(), eng.context.close()]);
  });

itest('renaming accounts: the engineer\'s session ends and the old name no longer logs in; the admin becomes a person',
  { timeout: 90000 }, async (ctx) => {
    const b = await browser();
    const { admin } = await web.stationWithAdmin(ctx, b);
    const eng = await web.addAccount(admin.page, b, ctx, 'ella', 'engineer', 'Eq7v-mT3x.Lp9');

    const rename = async (from, to) => {
      await admin.page.goto(`${ctx.webUrl}/accounts`);
      await admin.page.fill(`input[aria-label="New user name for ${from}"]`, to);
      const [resp] = await Promise.all([admin.page.waitForNavigation(),
        admin.page.locator(`input[aria-label="New user name for ${from}"] ~ button`).click()]);
      return { status: resp.status(), notice: await admin.page.textContent('.notice') };
    };
    let r = await rename('ella', 'admin');
    assert.equal(r.status, 409);
    assert.match(r.notice, /exists already/);
    r = await rename('ella', 'ella.smith');
    assert.equal(r.status, 200, r.notice);
    assert.match(r.notice, /ella is now ella\.smith/);
    await eng.page.goto(`${ctx.webUrl}/`);
    assert.match(eng.page.url(), /\/login\?ended=ended$/, 'the renamed account\'s session ended');
    await web.login(eng.page, ctx, 'ella', 'Eq7v-mT3x.Lp9');
    assert.match(await eng.page.textContent('main'), /Wrong user name or password/);
    await web.login(eng.page, ctx, 'ella.smith', 'Eq7v-mT3x.Lp9');
    assert.ok(eng.page.url().endsWith('/'), `same password, same role: ${eng.page.url()}`);
    assert.match(await eng.page.textContent('header'), /ella\.smith \(engineer\)/);

    // No default account name stays: the admin renames their own 'admin' and logs in as the person.
    r = await rename('admin', 'ada');
    assert.match(r.notice, /yours too/);
    await admin.page.goto(`${ctx.webUrl}/`);
    assert.match(admin.page.url(), /\/login/);
    await web.login(admin.page, ctx, 'ada', web.ADMIN_PASSWORD);
    assert.match(await admin.page.textContent('header'), /ada \(admin\)/);

    const audit = await ctx.auditExport();
    const renames = audit.records.filter((x) => x.type === 'AccountChanged' && x.details.action === 'rename');
    assert.deepEqual(renames.map((x) => [x.details.account, x.details.newName]), [['ella', 'ella.smith'], ['admin', 'ada']]);
    await Promise.all([admin.context.close(), eng.context.close()]);
  });
