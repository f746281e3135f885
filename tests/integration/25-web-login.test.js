// The maintenance web UI in a real browser (Debian's Chromium via npm
// playwright-core) over real HTTPS: the device's initial password and the
// forced change, the password rules, the lockout, the bookmark check, idle
// logout, the address binding, admin and viewer (AUTH-1…AUTH-7, AUTHZ-1, CR 2.6).
'use strict';

const assert = require('node:assert/strict');
const { after } = require('node:test');
const { itest, isCall, sleep, run, CG_BIN } = require('./lib/harness');
const web = require('./lib/web');

let browserPromise = null;
const browser = () => (browserPromise ??= web.launch());
after(async () => {
  if (browserPromise) await (await browserPromise).close();
});

const SEN = 'SecurityEventNotification';
const GOOD = 'Kq7v-mT3x.Lp9';

async function station(ctx, opts = {}) {
  await web.prepare(ctx, opts);
  const initial = await web.accountsInit(ctx);
  await ctx.startStation();
  return initial;
}

async function adminSession(ctx, initial) {
  const { context, page } = await web.newPage(await browser());
  await web.login(page, ctx, 'admin', initial);
  await web.changePassword(page, initial, GOOD);
  return { context, page };
}

itest('first login with the initial password from accounts init: forced change, every rule named, then the dashboard',
  { timeout: 60000 }, async (ctx) => {
    await web.prepare(ctx);
    const initial = await web.accountsInit(ctx);
    assert.match(initial, /^[A-Za-z0-9]{4}(-[A-Za-z0-9]{4}){3}$/);
    // A second init refuses (exit 3) and prints no password.
    const again = await ctx.cli(['accounts', 'init', '--config', ctx.configFile]);
    assert.equal(again.code, 3);
    assert.equal(again.stdout, '');
    assert.match(again.stderr, /already exist/);
    await ctx.startStation();
    // Beside a running station it refuses too (the station owns the state).
    assert.notEqual((await ctx.cli(['accounts', 'init', '--config', ctx.configFile])).code, 0);
    const { context, page } = await web.newPage(await browser());
    await page.goto(`${ctx.webUrl}/`);
    assert.ok(page.url().endsWith('/login'), `no session: the login page (${page.url()})`);
    await web.shot(page, 'login');
    await web.login(page, ctx, 'admin', initial);
    assert.ok(page.url().endsWith('/password'), `forced change first: ${page.url()}`);
    assert.match(await page.textContent('main'), /initial password/);
    // Nothing else is reachable until the change.
    for (const p of ['/', '/accounts', '/sessions']) {
      await page.goto(`${ctx.webUrl}${p}`);
      assert.ok(page.url().endsWith('/password'), `${p} leads to the change: ${page.url()}`);
    }
    // Each rule, named.
    await web.changePassword(page, initial, 'abc');
    await web.shot(page, 'password-rules');
    const rules = await page.$$eval('ul.rules li', (li) => li.map((x) => x.textContent));
    for (const want of [/8 to 31 characters/, /digit/, /upper-case/, /special character/])
      assert.ok(rules.some((r) => want.test(r)), `${want} in ${JSON.stringify(rules)}`);
    await web.changePassword(page, initial, 'Admin-pass1');
    assert.match(await page.textContent('ul.rules'), /user name/);
    await web.changePassword(page, initial, 'P@ssw0rd-2024');
    assert.match(await page.textContent('ul.rules'), /too common/);
    await web.changePassword(page, initial, GOOD, GOOD + 'x');
    assert.match(await page.textContent('main'), /The two new passwords differ/);
    // CVE-2021-22773: the current password is checked.
    await web.changePassword(page, 'not-the-password', GOOD);
    assert.match(await page.textContent('main'), /current password is wrong/);
    await web.changePassword(page, initial, GOOD);
    assert.match(await page.textContent('main'), /Your password was changed/);
    await page.goto(`${ctx.webUrl}/`);
    assert.ok(page.url().endsWith('/'), page.url());
    await web.shot(page, 'dashboard');
    const main = await page.textContent('main');
    assert.match(main, /Previous login/);
    assert.match(main, new RegExp(ctx.identity));
    // The headers of an authenticated page.
    const res = await web.request(ctx, '/', { headers: { Cookie: await web.cookieHeader(context) } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers['x-frame-options'], 'DENY');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.match(res.headers['content-security-policy'], /default-src 'self'/);
    assert.doesNotMatch(res.headers['content-security-policy'], /unsafe-inline/);
    assert.match(res.headers['strict-transport-security'], /max-age=\d+/);
    const cookie = (await context.cookies()).find((c) => c.name === '__Host-cg_session');
    assert.ok(cookie.secure && cookie.httpOnly && cookie.sameSite === 'Strict', JSON.stringify(cookie));
    // Logins reach the CSMS as security events and the audit log; no password in either.
    await ctx.waitFor(isCall(SEN, (p) => p.type === 'MaintenanceLoginAccepted'), { timeoutMs: 5000 });
    const audit = await ctx.auditExport();
    assert.ok(audit.records.some((r) => r.type === 'MaintenanceLoginAccepted'));
    assert.ok(audit.records.some((r) => r.type === 'AccountChanged' && /change password/.test(JSON.stringify(r.details))));
    for (const secret of [initial, GOOD]) {
      assert.ok(!audit.raw.includes(secret), 'a password is in the audit log');
      assert.ok(!ctx.stationLog().includes(secret), 'a password is in the diagnostics log');
    }
    await ctx.assertAuditOk();
    await context.close();
  });

itest('6 wrong passwords lock the account: the right one is refused until the lock ends, then it works again',
  { timeout: 60000 }, async (ctx) => {
    const initial = await station(ctx, { accounts: 'lockout = "6:4s"' });
    const admin = await adminSession(ctx, initial);
    await admin.context.close();
    const { context, page } = await web.newPage(await browser());
    for (let i = 1; i <= 6; i++) {
      await web.login(page, ctx, 'admin', `Wrong-pass${i}!`);
      assert.match(await page.textContent('main'), /Wrong user name or password/);
    }
    assert.match(await page.textContent('main'), /locked until/);
    await web.login(page, ctx, 'admin', GOOD);
    assert.ok(page.url().includes('/login'), 'the right password is refused while locked');
    assert.match(await page.textContent('main'), /locked until \d{4}-\d\d-\d\dT/);
    // The lock survives a restart of the daemon.
    await ctx.restartStation();
    await web.login(page, ctx, 'admin', GOOD);
    assert.match(await page.textContent('main'), /locked until/);
    await sleep(4500);
    await web.login(page, ctx, 'admin', GOOD);
    assert.ok(page.url().endsWith('/'), `unlocked after the configured time: ${page.url()}`);
    // AUTH-7: the failures since the previous login are shown.
    assert.match(await page.textContent('main'), /Failed attempts since\s*6/);
    await ctx.waitFor(isCall(SEN, (p) => p.type === 'MaintenanceLoginFailed'), { timeoutMs: 5000 });
    await context.close();
  });

itest('bookmark check: every route of the table without a session, with a viewer and with a stale CSRF token',
  { timeout: 90000 }, async (ctx) => {
    const initial = await station(ctx);
    const routes = (await run(CG_BIN, ['web', 'routes'])).stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(routes.length >= 10);
    const b = await browser();
    // 1. A fresh browser (a private window): the login page or 401, never data.
    for (const r of routes.filter((x) => x.access !== 'public')) {
      if (r.method === 'GET') {
        const { context, page } = await web.newPage(b);
        const resp = await page.goto(`${ctx.webUrl}${r.path}`);
        if (r.path.startsWith('/api/')) {
          assert.equal(resp.status(), 401, r.path);
        } else {
          assert.ok(page.url().endsWith('/login'), `${r.path} -> ${page.url()}`);
          assert.match(await page.textContent('h1'), /Log in/);
        }
        await context.close();
      } else {
        const res = await web.request(ctx, r.path, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'csrf=x' });
        assert.ok(res.status === 303 && /\/login/.test(res.headers.location), `${r.method} ${r.path}: ${res.status}`);
      }
    }
    // 2. A viewer: every admin page refused with 403 and an AccessDenied record.
    const admin = await adminSession(ctx, initial);
    const viewer = await web.addAccount(admin.page, b, ctx, 'vera', 'viewer', 'Vq7v-mT3x.Lp9');
    const vcookie = await web.cookieHeader(viewer.context);
    for (const p of ['/accounts', '/sessions']) {
      const resp = await viewer.page.goto(`${ctx.webUrl}${p}`);
      assert.equal(resp.status(), 403, p);
      assert.match(await viewer.page.textContent('main'), /Not permitted|does not allow/);
    }
    const audit = await ctx.auditExport();
    assert.ok(audit.records.some((r) => r.type === 'AccessDenied' && r.source.principal === 'vera'),
      'the viewer\'s attempts are audited');
    // 3. A stale CSRF token: every state-changing route refuses (403) and changes nothing.
    for (const r of routes.filter((x) => x.method === 'POST' && x.access !== 'public')) {
      const res = await web.request(ctx, r.path, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: vcookie },
        body: 'csrf=0000&action=add&name=mallory&role=admin',
      });
      assert.equal(res.status, 403, `${r.path} with a stale CSRF token`);
      assert.match(res.body, /CSRF/);
    }
    // A form sent from another site is refused even with the right token.
    const csrf = await viewer.page.goto(`${ctx.webUrl}/`).then(() => viewer.page.inputValue('form.logout input[name=csrf]'));
    const cross = await web.request(ctx, '/logout', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: vcookie, 'Sec-Fetch-Site': 'cross-site' },
      body: `csrf=${csrf}`,
    });
    assert.equal(cross.status, 403);
    // Limits before parsing: a header block over 8 KiB, a long address, another method.
    assert.equal((await web.request(ctx, '/', { headers: { 'X-Big': 'a'.repeat(9000) } })).status, 431);
    assert.equal((await web.request(ctx, '/' + 'a'.repeat(2100))).status, 414);
    assert.equal((await web.request(ctx, '/', { method: 'PUT' })).status, 405);
    await admin.context.close();
    await viewer.context.close();
  });

itest('idle logout after web.idle_timeout; background polling does not keep the session alive',
  { timeout: 60000 }, async (ctx) => {
    const initial = await station(ctx, { web: 'idle_timeout = "10s"' });
    const { context, page } = await adminSession(ctx, initial);
    for (let i = 0; i < 3; i++) {  // polls at 2.5, 5 and 7.5 s
      await sleep(2500);
      const status = await page.evaluate(() => fetch('/api/status').then(async (r) => `${r.status} ${await r.text()}`));
      assert.match(status, /^200 /, 'polling is served while the session lives');
    }
    await sleep(3500); // 11 s after the last user action, 3.5 s after the last poll
    await page.goto(`${ctx.webUrl}/`);
    assert.ok(page.url().includes('/login'), `ended: ${page.url()}`);
    assert.match(await page.textContent('main'), /without activity/);
    const audit = await ctx.auditExport();
    assert.ok(audit.records.some((r) => r.type === 'SessionEnded' && /idle/.test(JSON.stringify(r.details))));
    await context.close();
  });

itest('a session used from another address is ended; an admin ends an engineer\'s session',
  { timeout: 60000 }, async (ctx) => {
    const initial = await station(ctx);
    const b = await browser();
    const admin = await adminSession(ctx, initial);
    const eng = await web.addAccount(admin.page, b, ctx, 'eric', 'engineer', 'Eq7v-mT3x.Lp9');
    // The engineer's cookie, replayed from 127.0.0.2: the session ends for everyone.
    const stolen = await web.cookieHeader(eng.context);
    const res = await web.request(ctx, '/', { headers: { Cookie: stolen }, localAddress: '127.0.0.2' });
    assert.equal(res.status, 303);
    assert.match(res.headers.location, /ended=address/);
    await eng.page.goto(`${ctx.webUrl}/`);
    assert.ok(eng.page.url().includes('/login'), 'the rightful user logs in again');
    assert.match(await eng.page.textContent('main'), /another network address/);
    // CR 2.6: the admin ends the engineer's new session from the sessions page.
    await web.login(eng.page, ctx, 'eric', 'Eq7v-mT3x.Lp9');
    assert.ok(eng.page.url().endsWith('/'));
    await admin.page.goto(`${ctx.webUrl}/sessions`);
    await web.shot(admin.page, 'sessions');
    await admin.page.goto(`${ctx.webUrl}/accounts`);
    await web.shot(admin.page, 'accounts');
    await admin.page.goto(`${ctx.webUrl}/sessions`);
    const row = admin.page.locator('tr', { hasText: 'eric' });
    await Promise.all([admin.page.waitForNavigation(), row.locator('button', { hasText: 'End session' }).click()]);
    assert.equal(await admin.page.locator('tr', { hasText: 'eric' }).count(), 0);
    await eng.page.goto(`${ctx.webUrl}/`);
    assert.ok(eng.page.url().includes('/login'), `ended by the admin: ${eng.page.url()}`);
    const audit = await ctx.auditExport();
    const ended = audit.records.filter((r) => r.type === 'SessionEnded').map((r) => JSON.stringify(r.details));
    assert.ok(ended.some((d) => /another address/.test(d)), ended.join('\n'));
    assert.ok(ended.some((d) => /administrator/.test(d)), ended.join('\n'));
    await admin.context.close();
    await eng.context.close();
  });

itest('security log: admins only; the download verifies with `audit verify --file` and is recorded (AUTHZ-3, LOG-4)',
  { timeout: 60000 }, async (ctx) => {
    const initial = await station(ctx);
    const b = await browser();
    const admin = await adminSession(ctx, initial);
    await admin.page.goto(`${ctx.webUrl}/log`);
    assert.match(await admin.page.textContent('main'), /Hash chain and MACs verified/);
    await web.shot(admin.page, 'security-log');
    assert.match(await admin.page.textContent('main'), /MaintenanceLoginAccepted/);
    const [download] = await Promise.all([
      admin.page.waitForEvent('download'),
      admin.page.click('form[action="/log"] button[type="submit"]'),
    ]);
    const file = require('node:path').join(ctx.dir, 'downloaded.log');
    await download.saveAs(file);
    const v = await ctx.cli(['audit', 'verify', '--file', file, '--config', ctx.configFile]);
    assert.equal(v.code, 0, `${v.stdout}${v.stderr}`);
    // An engineer is refused the page and the download, and the attempts are audited.
    const eng = await web.addAccount(admin.page, b, ctx, 'erin', 'engineer', 'Eq7v-mT3x.Lp9');
    const resp = await eng.page.goto(`${ctx.webUrl}/log`);
    assert.equal(resp.status(), 403);
    const csrf = await eng.page.inputValue('form.logout input[name=csrf]');
    const dl = await web.request(ctx, '/log', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: await web.cookieHeader(eng.context) },
      body: `csrf=${csrf}`,
    });
    assert.equal(dl.status, 403);
    assert.doesNotMatch(dl.body, /"type"/, 'no record in the refusal');
    const audit = await ctx.auditExport();
    assert.ok(audit.records.some((r) => r.type === 'SecurityLogExported' && /web download/.test(JSON.stringify(r.details))));
    assert.ok(audit.records.filter((r) => r.type === 'AccessDenied' && r.source.principal === 'erin').length >= 2);
    await admin.context.close();
    await eng.context.close();
  });

// NET-4: one client address cannot take every connection of the maintenance
// interface (16 per address, 64 in all): the 17th TLS connection from one
// address is closed at once, while another address still gets in and logs in.
itest('connection limits: one address holding 16 connections cannot lock the others out', { timeout: 60000 }, async (ctx) => {
  const tls = require('node:tls');
  const initial = await station(ctx);
  const open = (localAddress) => new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', family: 4, port: ctx.webPort, localAddress, rejectUnauthorized: false },
      () => resolve({ ok: true, s }));
    s.on('error', () => resolve({ ok: false, s }));
    s.on('close', () => resolve({ ok: false, s }));
  });
  const held = [];
  for (let i = 0; i < 16; i++) {
    const c = await open('127.0.0.3');
    assert.ok(c.ok, `connection ${i + 1} of 16 from one address is accepted`);
    held.push(c.s);
  }
  const extra = await open('127.0.0.3');
  assert.equal(extra.ok, false, 'the 17th connection from the same address is closed');
  const { context, page } = await web.newPage(await browser());
  await web.login(page, ctx, 'admin', initial);
  assert.ok(page.url().endsWith('/password'), `another address logs in meanwhile: ${page.url()}`);
  for (const s of held) s.destroy();
  await new Promise((r) => setTimeout(r, 300));
  assert.ok((await open('127.0.0.3')).ok, 'the address connects again once its connections are closed');
  await context.close();
});
