// Web UI test helpers: the station's whole configuration (the accounts CLI
// reads it), `accounts init`, a real Chromium (Debian's, driven by npm
// playwright-core), logins through the real forms, and raw HTTPS requests
// from a chosen source address.
'use strict';

const assert = require('node:assert/strict');
const https = require('node:https');
const path = require('node:path');
const { pki, program, REPO } = require('./harness');
const { writeConfig } = require('./firmware');

const { chromium } = require(path.join(REPO, 'tools', 'dev-csms', 'node_modules', 'playwright-core'));

// The station's configuration with [web] on a free port of its own.
// web / accounts: more lines of those sections (e.g. 'idle_timeout = "10s"').
async function prepare(ctx, { web = '', accounts = '', csms = {} } = {}) {
  const p = await pki();
  await ctx.startCsms(csms);
  // The whole configuration as the firmware tests write it, with this test's web port.
  writeConfig(ctx, p, [`[web]\nlisten = "127.0.0.1:${ctx.webPort}"`, web, accounts ? `[accounts]\n${accounts}` : ''].join('\n'));
  ctx.webUrl = `https://127.0.0.1:${ctx.webPort}`;
  return p;
}

// `chargeguard accounts init`: the initial admin password (stdout holds it alone).
async function accountsInit(ctx) {
  const r = await ctx.cli(['accounts', 'init', '--config', ctx.configFile], { timeoutMs: 30000 });
  assert.equal(r.code, 0, `accounts init failed (${r.code}): ${r.stderr}`);
  const lines = r.stdout.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `stdout must hold the password alone: ${JSON.stringify(r.stdout)}`);
  return lines[0];
}

// One Chromium per test file; contexts are the isolated "browsers".
async function launch() {
  return chromium.launch({
    executablePath: program('chromium'),
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// A fresh browser context (no cookies) that accepts the station's self-signed certificate.
async function newPage(browser) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  return { context, page };
}

// Logs in through the form; returns the page after the redirect.
async function login(page, ctx, user, password) {
  await page.goto(`${ctx.webUrl}/login`);
  await page.fill('input[autocomplete="username"]', user);
  await page.fill('input[autocomplete="current-password"]', password);
  await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
  return page;
}

// The forced first change through the form.
async function changePassword(page, current, next, confirm = next) {
  if (!page.url().endsWith('/password')) await page.goto(new URL('/password', page.url()).href);
  await page.fill('#current', current);
  await page.fill('#new', next);
  await page.fill('#confirm', confirm);
  await Promise.all([page.waitForNavigation(), page.click('form[action="/password"] button[type="submit"]')]);
}

// A raw HTTPS request: {status, headers, body}. opts: method, headers, body, localAddress.
function request(ctx, urlPath, { method = 'GET', headers = {}, body, localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', family: 4, port: ctx.webPort, path: urlPath, method, headers, localAddress,
        rejectUnauthorized: false },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

// The session cookie of a browser context, as a Cookie header.
async function cookieHeader(context) {
  const c = (await context.cookies()).find((x) => x.name === '__Host-cg_session');
  assert.ok(c, 'no session cookie');
  return `${c.name}=${c.value}`;
}

// An account of `role` with its own password, made by the admin page of `adminPage`.
async function addAccount(adminPage, browser, ctx, name, role, password) {
  await adminPage.goto(`${ctx.webUrl}/accounts`);
  await adminPage.fill('#name', name);
  await adminPage.selectOption('#role', role);
  await Promise.all([adminPage.waitForNavigation(), adminPage.click('form input[value="add"] ~ p button')]);
  // The page that came back says why when it carries no initial password.
  await adminPage.waitForSelector('#initial-password', { timeout: 15000 }).catch(async () => {
    throw new Error(`adding ${name}: no initial password shown (${adminPage.url()}): ${await adminPage.textContent('body')}`);
  });
  const initial = (await adminPage.textContent('#initial-password')).trim();
  const { context, page } = await newPage(browser);
  await login(page, ctx, name, initial);
  assert.ok(page.url().endsWith('/password'), `a new account starts with the forced change: ${page.url()}`);
  await changePassword(page, initial, password);
  assert.match(await page.textContent('main'), /Your password was changed/);
  return { context, page };
}

// A running station (set up by prepare(ctx, setup); `beforeStart` runs with the
// station stopped, e.g. more console commands) whose admin has logged in and
// chosen ADMIN_PASSWORD, in a browser context of its own: {p, admin: {context, page}}.
const ADMIN_PASSWORD = 'Kq7v-mT3x.Lp9';
async function stationWithAdmin(ctx, browser, { setup = {}, beforeStart } = {}) {
  const p = await prepare(ctx, setup);
  const initial = await accountsInit(ctx);
  if (beforeStart) await beforeStart();
  await ctx.startStation();
  await ctx.waitFor('BootNotification');
  const admin = await newPage(browser);
  await login(admin.page, ctx, 'admin', initial);
  await changePassword(admin.page, initial, ADMIN_PASSWORD);
  return { p, admin };
}

// Screenshots for docs/screenshots/ when CG_WEB_SCREENSHOTS names a directory
// (`CG_WEB_SCREENSHOTS=docs/screenshots ./scripts/test.sh` or one test file).
async function shot(page, name) {
  const dir = process.env.CG_WEB_SCREENSHOTS;
  if (!dir) return;
  await page.setViewportSize({ width: 1100, height: 800 });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}

module.exports = {
  ADMIN_PASSWORD, stationWithAdmin, shot, prepare, accountsInit, launch, newPage, login, changePassword, request, cookieHeader, addAccount };
