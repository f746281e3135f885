// The configuration page: the engineer changes configuration, the admin
// security settings, each through the settings service with the same checks
// and records as SetVariables; the others are refused (AUTH-2, AUTHZ-1).
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

// Sets one variable through its row's form; returns the page's notice.
async function setVar(page, ctx, label, value) {
  await page.goto(`${ctx.webUrl}/configuration`);
  const input = page.locator(`input[aria-label="${label}"]`);
  await input.fill(value);
  await Promise.all([page.waitForNavigation(), input.locator('xpath=..').locator('button').click()]);
  return page.textContent('.notice');
}

// A running station, its admin (own password) and an engineer 'ella', each in a browser context of their own.
async function stationWithAdminAndEngineer(ctx) {
  const b = await browser();
  const { p, admin } = await web.stationWithAdmin(ctx, b);
  const eng = await web.addAccount(admin.page, b, ctx, 'ella', 'engineer', 'Eq7v-mT3x.Lp9');
  return { p, b, admin, eng };
}

itest('configuration in the browser: engineer configures, admin sets security settings, each audited; wrong values named',
  { timeout: 60000 }, async (ctx) => {
    const { b, admin, eng } = await stationWithAdminAndEngineer(ctx);
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

itest('certificates in the browser: the admin installs and removes a root, the last CSMS root stays, an engineer is refused',
  { timeout: 60000 }, async (ctx) => {
    const { p, admin, eng } = await stationWithAdminAndEngineer(ctx);
    assert.equal((await eng.page.goto(`${ctx.webUrl}/certificates`)).status(), 403);

    await admin.page.goto(`${ctx.webUrl}/certificates`);
    assert.match(await admin.page.textContent('main'), /CSMSRootCertificate/);
    // Security profile 2: no station certificate, and the page says so.
    assert.match(await admin.page.textContent('main'), /Station certificate\s*None: the station uses security profile 2/);
    const rowsBefore = await admin.page.locator('tbody tr').count();
    // Install a root of the test PKI as a mobility-operator root.
    await admin.page.selectOption('#type', 'MORootCertificate');
    await admin.page.fill('#pem', fs.readFileSync(path.join(p.dir, 'operator-root-ca.pem'), 'utf8'));
    await Promise.all([admin.page.waitForNavigation(), admin.page.click('form textarea ~ p button')]);
    assert.match(await admin.page.textContent('.notice'), /Installed/);
    assert.equal(await admin.page.locator('tbody tr').count(), rowsBefore + 1);
    await web.shot(admin.page, 'certificates');
    // Not a certificate: refused with the reason.
    await admin.page.selectOption('#type', 'V2GRootCertificate');
    await admin.page.fill('#pem', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    await Promise.all([admin.page.waitForNavigation(), admin.page.click('form textarea ~ p button')]);
    assert.match(await admin.page.textContent('.notice'), /Not installed/);
    // The last CSMS root cannot go; the mobility-operator root can.
    const csmsRow = admin.page.locator('tbody tr', { hasText: 'CSMSRootCertificate' });
    await Promise.all([admin.page.waitForNavigation(), csmsRow.locator('button').click()]);
    assert.match(await admin.page.textContent('.notice'), /Not removed/);
    const mfrRow = admin.page.locator('tbody tr', { hasText: 'MORootCertificate' });
    await Promise.all([admin.page.waitForNavigation(), mfrRow.locator('button').click()]);
    assert.match(await admin.page.textContent('.notice'), /Removed/);
    assert.equal(await admin.page.locator('tbody tr').count(), rowsBefore);
    const audit = await ctx.auditExport();
    assert.ok(audit.records.filter((r) => r.source.principal === 'admin' && /Certificate|Reconfiguration/.test(r.type)).length >= 2,
      'installs and removals recorded with the admin');
    await Promise.all([admin.context.close(), eng.context.close()]);
  });
