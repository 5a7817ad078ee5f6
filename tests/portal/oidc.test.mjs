// The portal's sign-in through a real OpenID Provider (tests/peers/oidc), in Debian's
// Chromium through playwright-core: a person signs in on the provider's own page, sees what
// their group's role opens and nothing more, changes need the session's CSRF value, and
// signing out ends the session at the gateway.
//
// Run by the Rust e2e suite (tests/e2e/portal.rs) against a gateway started with the provider
// as its issuer, roles engineering=admin and finance=audit:read:
//   CREDGATE_URL      the gateway
//   OIDC_ISSUER       the provider
//   SCREENSHOT_DIR    where PNGs are saved
//   CHROMIUM          the browser (default /usr/bin/chromium)
// Exits 0 when every check passes (printing PASS), 1 otherwise.

import { chromium } from 'playwright-core';

import { login } from '../peers/oidc/login.mjs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const BASE = process.env.CREDGATE_URL.replace(/\/+$/, '');
const ISSUER = process.env.OIDC_ISSUER.replace(/\/+$/, '');
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR || path.join(os.tmpdir(), 'credgate-portal-screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

let checks = 0;
function check(condition, message) {
  checks += 1;
  if (!condition) throw new Error(`check failed: ${message}`);
  console.log(`  ok  ${message}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function waitFor(fn, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

let browser;

/** One person's browser: signs in at the provider with their password. */
async function signIn(user) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  const tid = (id) => page.locator(`[data-testid="${id}"]`);
  await page.goto(`${BASE}/portal/`);
  await tid('signin-oidc').waitFor();
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'signin-oidc.png'), fullPage: true });
  await tid('signin-oidc').click();
  // The provider's own sign-in page.
  await page.waitForURL((url) => url.toString().startsWith(ISSUER));
  await page.locator('input[name="login"]').fill(user);
  await page.locator('input[name="password"]').fill(`${user}-password`);
  await page.locator('button[type="submit"]').click();
  return { context, page, tid, errors };
}

async function waitSignedIn({ page, tid }) {
  await page.waitForURL((url) => url.toString().startsWith(`${BASE}/portal/`) && url.hash.length > 2);
  await waitFor(async () => (await page.locator('#view').getAttribute('data-ready')) === 'true', 'the portal to render');
  await tid('sign-out').waitFor({ state: 'visible' });
}

/** An admin API call from inside the page, with the session cookie (and `csrf` if given). */
function apiFromPage(page, method, apiPath, body, csrf) {
  return page.evaluate(async ({ method, apiPath, body, csrf }) => {
    const headers = { 'Content-Type': 'application/json' };
    if (csrf) headers['X-Credgate-CSRF'] = csrf;
    const r = await fetch(`/admin/v1${apiPath}`, {
      method, headers, body: body ? JSON.stringify(body) : undefined, credentials: 'same-origin',
    });
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: r.status, json };
  }, { method, apiPath, body, csrf });
}

async function run() {
  await fs.mkdir(SCREENSHOT_DIR, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });

  console.log('\n== bob (finance: audit:read) signs in at the provider and sees only the audit pages');
  const bob = await signIn('bob');
  await waitSignedIn(bob);
  check(bob.page.url().endsWith('#/overview'), 'he lands on the overview');
  check((await bob.tid('who').textContent()) === 'oidc:bob (bob@example.test)', 'the navigation says who is signed in');
  check(await bob.tid('nav-audit').isVisible(), 'the audit page is in his navigation');
  for (const hidden of ['nav-secrets', 'nav-principals', 'nav-approvals']) {
    check(await bob.tid(hidden).isHidden(), `${hidden} is not`);
  }
  await bob.page.screenshot({ path: path.join(SCREENSHOT_DIR, 'oidc-audit-reader.png'), fullPage: true });
  const cookies = await bob.context.cookies(BASE);
  const session = cookies.find((c) => c.name === '__Host-credgate_session');
  check(session && session.httpOnly && session.secure && session.sameSite === 'Strict',
    'the session is an HttpOnly, Secure, SameSite=Strict cookie');
  check(!(await bob.page.evaluate(() => document.cookie)).includes('credgate_session'), 'which the page script cannot read');
  const stored = await bob.page.evaluate(() => JSON.stringify(sessionStorage));
  check(!stored.includes(session.value), 'nor is it in session storage');
  check(!stored.includes('admin_token'), 'and no admin token is kept');
  await bob.page.goto(`${BASE}/portal/#/secrets`);
  await bob.tid('no-access').waitFor();
  check(true, 'the secrets page is closed to him');
  const who = await apiFromPage(bob.page, 'GET', '/whoami');
  check(who.status === 200 && who.json.actor === 'oidc:bob (bob@example.test)', `whoami names him (${who.json && who.json.actor})`);
  check(JSON.stringify(who.json.scopes) === '["audit:read"]', 'with his role\'s scopes');
  const audit = await apiFromPage(bob.page, 'GET', '/audit?limit=5');
  check(audit.status === 200, 'the API lets him read the audit trail');
  const noCsrf = await apiFromPage(bob.page, 'POST', '/principals', { kind: 'agent', name: 'by-bob' });
  check(noCsrf.status === 403 && noCsrf.json.error.code === 'forbidden', 'a change without the CSRF header is refused');
  const noScope = await apiFromPage(bob.page, 'POST', '/principals', { kind: 'agent', name: 'by-bob' }, who.json.csrf);
  check(noScope.status === 403 && noScope.json.error.code === 'forbidden_scope', 'with it, the API still refuses what his scopes do not open');

  console.log('\n== bob signs out: the session ends at the gateway');
  await bob.tid('sign-out').click();
  await bob.tid('signin-oidc').waitFor();
  const after = await fetch(`${BASE}/admin/v1/whoami`, { headers: { cookie: `__Host-credgate_session=${session.value}` } });
  check(after.status === 401, 'the old session cookie is refused from then on');
  check(!(await bob.context.cookies(BASE)).some((c) => c.name === '__Host-credgate_session'), 'and the browser no longer holds it');
  await bob.context.close();

  console.log('\n== alice (engineering: admin) signs in and may change things, in her own name');
  const alice = await signIn('alice');
  await waitSignedIn(alice);
  check(await alice.tid('nav-secrets').isVisible(), 'the secrets page is in her navigation');
  const aliceWho = await apiFromPage(alice.page, 'GET', '/whoami');
  const made = await apiFromPage(alice.page, 'POST', '/principals', { kind: 'agent', name: 'made-by-alice' }, aliceWho.json.csrf);
  check(made.status === 201, 'with the CSRF header, she creates a principal');
  const trail = await apiFromPage(alice.page, 'GET', `/audit?action=principal.create&limit=1`);
  check(trail.json.data[0].actor === 'oidc:alice (alice@example.test)', 'the audit record names her');

  // An app calls for her (her user token); the audit page filtered by her shows the call.
  const csrf = aliceWho.json.csrf;
  const key = (await apiFromPage(alice.page, 'POST', `/principals/${made.json.id}/keys`, {}, csrf)).json.key;
  const secret = (await apiFromPage(alice.page, 'POST', '/secrets', {
    name: 'for-a-person', type: 'bearer', credential: { token: 't' }, config: { base_url: 'http://127.0.0.1:9' },
    allow_private_destinations: true, allow_insecure_http: true,
  }, csrf)).json.id;
  const grant = (await apiFromPage(alice.page, 'POST', `/secrets/${secret}/grants`, { principal_id: made.json.id }, csrf)).json.grant_id;
  const { id_token: aliceToken } = await login({ issuer: ISSUER, user: 'alice' });
  const call = await fetch(`${BASE}/v1/grants/${grant}/x`, {
    headers: { 'proxy-authorization': `Bearer ${key}`, 'x-credgate-user-token': aliceToken },
  });
  check(call.headers.get('x-credgate-error') === 'upstream_unreachable', `the call went for her (${call.status})`);
  const users = await apiFromPage(alice.page, 'GET', '/principals?kind=user');
  const aliceId = users.json.data.find((p) => p.external_id === 'alice').id;
  await alice.page.goto(`${BASE}/portal/#/audit?user_principal_id=${aliceId}`);
  await waitFor(async () => (await alice.page.locator('#view').getAttribute('data-ready')) === 'true'
    && (await alice.tid('audit-row').count()) >= 1, 'the audit page filtered by her');
  check((await alice.tid('audit-user').inputValue()) === aliceId, 'the person filter shows her');
  const rows = await alice.tid('audit-row').allTextContents();
  check(rows.length === 1 && rows[0].includes('for alice@example.test'), `one call, made for her (${rows.length})`);
  await alice.page.screenshot({ path: path.join(SCREENSHOT_DIR, 'oidc-audit-for-person.png'), fullPage: true });
  await alice.page.screenshot({ path: path.join(SCREENSHOT_DIR, 'oidc-admin.png'), fullPage: true });
  check(alice.errors.length === 0, 'no script errors');
  // An operator sees the live sessions and can end one: hers, here, refused from its next call.
  const sessions = await apiFromPage(alice.page, 'GET', '/sessions');
  const mine = sessions.json.data.find((s) => s.actor === 'oidc:alice (alice@example.test)');
  check(sessions.status === 200 && mine && mine.id.length === 64, 'the sessions list shows hers');
  check(!sessions.json.data.some((s) => s.actor.startsWith('oidc:bob')), 'and not bob\'s, who signed out');
  const ended = await apiFromPage(alice.page, 'DELETE', `/sessions/${mine.id}`, undefined, aliceWho.json.csrf);
  check(ended.status === 204, 'she ends it');
  const after2 = await apiFromPage(alice.page, 'GET', '/whoami');
  check(after2.status === 401, 'the next call with it is refused');
  await alice.context.close();

  console.log('\n== a person whose groups have no role cannot sign in');
  await fetch(`${ISSUER}/__oidc/groups`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'bob', groups: ['sales'] }),
  });
  const refused = await signIn('bob');
  const message = await refused.page.locator('[data-testid="signin-message"]').textContent();
  check(/no role in credgate/.test(message), `the gateway says why (“${message}”)`);
  check(!(await refused.context.cookies(BASE)).some((c) => c.name === '__Host-credgate_session'), 'and no session is made');
  await refused.context.close();
}

const timer = setTimeout(() => {
  console.error('FAIL: timed out');
  process.exit(1);
}, 120_000);
try {
  await run();
  console.log(`\nPASS (${checks} checks)`);
  clearTimeout(timer);
  await browser.close();
  process.exit(0);
} catch (err) {
  console.error(`\nFAIL: ${err.stack || err}`);
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}
