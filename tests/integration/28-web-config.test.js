// The configuration page: the engineer changes configuration, the admin
// security settings, each through the settings service with the same checks
// and records as SetVariables; the others are refused (AUTH-2, AUTHZ-1).
'use strict';

const assert = require('node:assert/strict');
const { after } = require('node:test');
const { itest } = require('./lib/harness');
const web = require('./lib/web');

let browserPromise = null;
const browser = () => (browserPromise ??= web.launch());
after(async () => {
  if (browserPromise) await (await browserPromise).close();
});

// Sets one variable through its row's form; returns the page's notice.
async function setVar(page, ctx, label, value) {
  await page.goto(`${ctx.webUrl}/configuration`);
  const input = page.locator(`input[aria-label="${label}"]`);
  await input.fill(value);
  await Promise.all([page.waitForLoadState('load'), input.locator('xpath=..').locator('button').click()]);
  return page.textContent('.notice');
}

itest('configuration in the browser: engineer configures, admin sets security settings, each audited; wrong values named',
  { timeout: 60000 }, async (ctx) => {
    await web.prepare(ctx);
    const initial = await web.accountsInit(ctx);
    await ctx.startStation();
    await ctx.waitFor('BootNotification');
    const b = await browser();
    const admin = await web.newPage(b);
    await web.login(admin.page, ctx, 'admin', initial);
    await web.changePassword(admin.page, initial, 'Kq7v-mT3x.Lp9');
    const eng = await web.addAccount(admin.page, b, ctx, 'ella', 'engineer', 'Eq7v-mT3x.Lp9');
    const viewer = await web.addAccount(admin.page, b, ctx, 'vic', 'viewer', 'Vq7v-mT3x.Lp9');

    let n = await setVar(eng.page, ctx, 'SampledDataCtrlr · TxUpdatedInterval', '30');
    assert.match(n, /Saved: SampledDataCtrlr\.TxUpdatedInterval = 30/);
    await web.shot(eng.page, 'configuration');
    const got = await ctx.call('GetVariables', { getVariableData: [{ component: { name: 'SampledDataCtrlr' }, variable: { name: 'TxUpdatedInterval' } }] });
    assert.equal(got.getVariableResult[0].attributeValue, '30', 'the CSMS sees the engineer\'s change');
    n = await setVar(eng.page, ctx, 'SampledDataCtrlr · TxUpdatedInterval', 'abc');
    assert.match(n, /Not saved: .*Rejected/);
    // Separation of duties: the engineer may not change a security setting, the admin may not configure.
    n = await setVar(eng.page, ctx, 'SecurityCtrlr · OrganizationName', 'Mallory CPO');
    assert.match(n, /Not saved: .*NoPermission.*administrators only/);
    n = await setVar(admin.page, ctx, 'SampledDataCtrlr · TxUpdatedInterval', '45');
    assert.match(n, /Not saved: .*NoPermission.*engineers only/);
    n = await setVar(admin.page, ctx, 'SecurityCtrlr · OrganizationName', 'Other CPO');
    assert.match(n, /Saved: SecurityCtrlr\.OrganizationName = Other CPO/);
    // A viewer does not even see the configuration.
    const resp = await viewer.page.goto(`${ctx.webUrl}/configuration`);
    assert.equal(resp.status(), 403);

    const audit = await ctx.auditExport();
    const by = (type, who) => audit.records.filter((r) => r.type === type && r.source.principal === who);
    assert.ok(by('ConfigurationChanged', 'ella').some((r) => /TxUpdatedInterval/.test(JSON.stringify(r.details))));
    assert.ok(by('ReconfigurationOfSecurityParameters', 'admin').length >= 1);
    assert.ok(by('AccessDenied', 'ella').length >= 1 && by('AccessDenied', 'admin').length >= 1 && by('AccessDenied', 'vic').length >= 1);
    await Promise.all([admin.context.close(), eng.context.close(), viewer.context.close()]);
  });
