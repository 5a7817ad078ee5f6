// End-to-end test of the credgate operator portal, in Debian's Chromium through playwright-core.
//
// Run by the Rust e2e suite against a real gateway:
//   CREDGATE_URL              the gateway, e.g. http://127.0.0.1:41234 (portal at /portal/)
//   CREDGATE_ADMIN_TOKEN      its admin token
//   CREDGATE_PROVIDER_WASM    a valid provider component to upload; CREDGATE_PROVIDER_ID its id
//   CREDGATE_BAD_WASM         a file that is not a valid component
//   SCREENSHOT_DIR            where one PNG per page is saved
//   CHROMIUM                  the browser (default /usr/bin/chromium)
//
// It starts its own upstream (a Node http server on 127.0.0.1 that records every request and
// answers 200 {"ok":true}), drives the portal through sign-in, secrets, principals, grants,
// the data plane, audit, rotation, revocation and providers, and checks that the credential
// values never come back to the browser. Exits 0 when every check passes, 1 otherwise.

import { chromium } from 'playwright-core';
import http from 'node:http';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';

// ---- configuration ---------------------------------------------------------------------------

function requireEnv(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`FAIL: the environment variable ${name} is not set`);
    process.exit(1);
  }
  return value;
}

const BASE = requireEnv('CREDGATE_URL').replace(/\/+$/, '');
const ADMIN_TOKEN = requireEnv('CREDGATE_ADMIN_TOKEN');
const PROVIDER_WASM = requireEnv('CREDGATE_PROVIDER_WASM');
const PROVIDER_ID = requireEnv('CREDGATE_PROVIDER_ID');
const BAD_WASM = requireEnv('CREDGATE_BAD_WASM');
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR || path.join(os.tmpdir(), 'credgate-portal-screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const OVERALL_TIMEOUT_MS = Number(process.env.PORTAL_TEST_TIMEOUT_MS || 240_000);

const rand = () => crypto.randomBytes(6).toString('hex');
const RUN = rand();
const CANARY_1 = `sk-canary-${rand()}${rand()}`;
const CANARY_2 = `sk-canary-${rand()}${rand()}`;
const CANARIES = [CANARY_1, CANARY_2];

// ---- checks ----------------------------------------------------------------------------------

class CheckFailed extends Error {}

let currentStep = 'starting';
let checks = 0;

function step(name) {
  currentStep = name;
  console.log(`\n== ${name}`);
}

function check(condition, message) {
  checks += 1;
  if (!condition) throw new CheckFailed(message);
  console.log(`  ok  ${message}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `fn` until it answers something truthy; fails with `what` on timeout. */
async function waitFor(fn, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new CheckFailed(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError.message})` : ''}`);
    }
    await sleep(100);
  }
}

// ---- the upstream ----------------------------------------------------------------------------

const upstreamSeen = [];
const upstream = http.createServer((req, res) => {
  upstreamSeen.push({ method: req.method, url: req.url, headers: { ...req.headers } });
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
});

// ---- state recorded from the browser ----------------------------------------------------------

const sentRequests = []; // { method, url, body: Buffer | null }
const responseBodies = []; // { url, status, body: Buffer | null }
const pendingBodies = [];
const pageContents = []; // { where, html }
const consoleLines = [];
const cspViolations = [];
const pageErrors = [];

let browser;
let page;
let context;

// ---- helpers on the page -----------------------------------------------------------------------

const tid = (id) => page.locator(`[data-testid="${id}"]`);

async function statusText() {
  const el = tid('status');
  if (!(await el.isVisible())) return '';
  return (await el.textContent()) || '';
}

/** Waits for the status line to show `kind` (ok or error) with `includes` in it. */
async function expectStatus(kind, includes, what) {
  const text = await waitFor(async () => {
    const el = tid('status');
    if (!(await el.isVisible())) return false;
    const k = await el.getAttribute('data-kind');
    const t = (await el.textContent()) || '';
    return k === kind && t.includes(includes) ? t : false;
  }, `${what}: a status line (${kind}) containing “${includes}” (now: “${await statusText()}”)`);
  check(true, `${what}: “${text.trim()}”`);
  return text;
}

/** Waits for the portal to draw the current page, and keeps its content for the leak check. */
async function waitReady() {
  await waitFor(async () => (await page.locator('#view').getAttribute('data-ready')) === 'true', 'the page to finish loading');
  await snapshot(`page ${page.url().replace(BASE, '')}`);
}

/** Clicks something that re-renders the page, and waits for that render (not the last one). */
async function clickAndRender(testId) {
  const view = page.locator('#view');
  const before = await view.getAttribute('data-render');
  await tid(testId).click();
  await waitFor(async () => (await view.getAttribute('data-render')) !== before
    && (await view.getAttribute('data-ready')) === 'true', `the page to render after ${testId}`);
  await snapshot(`page ${page.url().replace(BASE, '')}`);
}

async function go(navTestId) {
  // Moving to another page: wait for its render, not the ready mark the last page left.
  const href = await tid(navTestId).getAttribute('href');
  const view = page.locator('#view');
  const before = await view.getAttribute('data-render');
  const moving = Boolean(href) && !page.url().endsWith(href);
  await tid(navTestId).click();
  if (moving) await waitFor(async () => (await view.getAttribute('data-render')) !== before, `the page behind ${navTestId} to render`);
  await waitReady();
}

async function snapshot(where) {
  pageContents.push({ where, html: await page.content() });
}

async function screenshot(name) {
  await snapshot(`screenshot ${name}`);
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`  saved ${file}`);
}

async function storageDump() {
  const inPage = await page.evaluate(() => {
    const dump = (s) => {
      const out = {};
      for (let i = 0; i < s.length; i += 1) out[s.key(i)] = s.getItem(s.key(i));
      return out;
    };
    return { session: dump(sessionStorage), local: dump(localStorage), cookie: document.cookie };
  });
  const cookies = await context.cookies();
  return { ...inPage, cookies };
}

async function checkStorageClean(where) {
  const dump = JSON.stringify(await storageDump());
  check(!CANARIES.some((canary) => dump.includes(canary)), `${where}: no credential value in sessionStorage, localStorage or cookies`);
}

async function clipboardText() {
  return page.evaluate(() => navigator.clipboard.readText());
}

async function dataPlane(grantId, appKey, { method = 'GET', pathAndQuery = '/v1/models', headers = {}, body } = {}) {
  const response = await fetch(`${BASE}/v1/grants/${grantId}${pathAndQuery}`, {
    method,
    headers: { 'Proxy-Authorization': `Bearer ${appKey}`, ...headers },
    body,
  });
  const text = await response.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.status, headers: response.headers, text, json };
}

// ---- the test ---------------------------------------------------------------------------------

async function run() {
  await fs.mkdir(SCREENSHOT_DIR, { recursive: true });
  await new Promise((resolve, reject) => {
    upstream.once('error', reject);
    upstream.listen(0, '127.0.0.1', resolve);
  });
  const upstreamUrl = `http://127.0.0.1:${upstream.address().port}`;
  console.log(`upstream on ${upstreamUrl}; gateway at ${BASE}; screenshots in ${SCREENSHOT_DIR}`);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--no-first-run'],
  });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);

  page.on('request', (req) => {
    sentRequests.push({ method: req.method(), url: req.url(), body: req.postDataBuffer() });
  });
  page.on('response', (res) => {
    const entry = { url: res.url(), status: res.status(), body: null };
    responseBodies.push(entry);
    pendingBodies.push(res.body().then((b) => { entry.body = b; }, () => {}));
  });
  page.on('console', (msg) => {
    const text = msg.text();
    consoleLines.push(`${msg.type()}: ${text}`);
    if (/Content Security Policy|Refused to (load|execute|apply|connect|frame)/i.test(text)) cspViolations.push(text);
  });
  page.on('pageerror', (err) => pageErrors.push(err.message));

  // 1. Sign in ---------------------------------------------------------------------------------
  step('1. sign in: a wrong token is refused, the right one is kept in sessionStorage only');
  const first = await page.goto(`${BASE}/portal/`);
  check(first.status() === 200, 'the portal answers 200 at /portal/');
  const csp = first.headers()['content-security-policy'] || '';
  check(csp.includes("script-src 'self'") && csp.includes("default-src 'none'"), 'the portal is served with a strict Content-Security-Policy');
  await tid('signin-token').waitFor();
  check((await tid('signin-token').getAttribute('type')) === 'password', 'the admin token field is a password field');
  check((await page.getByLabel('Admin token').count()) === 1, 'the admin token field has a label');
  check(await tid('nav-secrets').isHidden(), 'the navigation is hidden before signing in');
  await screenshot('signin');

  await tid('signin-token').fill(`wrong-token-${rand()}`);
  await tid('signin-submit').click();
  await expectStatus('error', 'That admin token was not accepted', 'a wrong token is refused');
  let dump = await storageDump();
  check(Object.keys(dump.session).length === 0 && Object.keys(dump.local).length === 0 && dump.cookies.length === 0,
    'nothing is stored after a refused token');
  check(await tid('signin-token').isVisible(), 'the page stays on sign-in');
  check((await tid('signin-token').inputValue()) === '', 'the refused token is cleared from the field');

  await tid('signin-token').fill(ADMIN_TOKEN);
  await tid('signin-submit').click();
  await tid('nav-secrets').waitFor({ state: 'visible' });
  await waitReady();
  check(page.url().endsWith('#/overview'), 'signing in leads to the overview');
  check(((await tid('overview-summary').textContent()) || '').includes('No calls in the last day'), 'which has no calls yet');
  dump = await storageDump();
  check(Object.values(dump.session).includes(ADMIN_TOKEN), 'the admin token is kept in sessionStorage');
  check(!JSON.stringify(dump.local).includes(ADMIN_TOKEN) && !JSON.stringify(dump.cookies).includes(ADMIN_TOKEN) && !dump.cookie.includes(ADMIN_TOKEN),
    'the admin token is not in localStorage or cookies');

  // 2. Add a template secret --------------------------------------------------------------------
  step('2. add an openai template secret pointing at the test upstream');
  await go('nav-secrets');
  const secretName = `portal-openai-${RUN}`;
  await clickAndRender('add-secret');
  await waitFor(async () => (await page.locator('[data-testid="secret-type"] option[value="openai"]').count()) === 1, 'the openai template in the type list');
  await tid('secret-name').fill(secretName);
  await tid('secret-type').selectOption('openai');
  await tid('cred-token').waitFor();
  const tokenInput = tid('cred-token');
  check((await tokenInput.getAttribute('type')) === 'password', 'the credential field is a password field');
  check((await tokenInput.getAttribute('autocomplete')) === 'off', 'the credential field has autocomplete=off');
  const tokenLabel = await page.locator(`label[for="${await tokenInput.getAttribute('id')}"]`).textContent();
  check(/API key/.test(tokenLabel) && /required/.test(tokenLabel), `the template's credential field is labelled with its name and required marker (“${tokenLabel.trim()}”)`);
  check((await tid('config-base_url').count()) === 1, 'the template form offers a base URL');
  await tokenInput.fill(CANARY_1);
  await tid('config-base_url').fill(upstreamUrl);
  await tid('allow-private').check();
  await tid('allow-http').check();
  await screenshot('add-secret');
  await tid('create-secret').click();
  const leftover = await page.evaluate(() => Array.from(document.querySelectorAll('input[type="password"]')).map((i) => i.value).join(''));
  check(leftover === '', 'credential fields are cleared right after submitting');
  await expectStatus('ok', `Secret “${secretName}” created`, 'the secret is created');
  await waitReady();
  const secretRow = page.locator('[data-testid="secret-row"]', { hasText: secretName });
  await secretRow.waitFor();
  const secretId = await secretRow.getAttribute('data-secret-id');
  check(/^[0-9a-f-]{36}$/.test(secretId || ''), `the new secret is listed (id ${secretId})`);
  const cell = async (row, col) => ((await row.locator(`[data-col="${col}"]`).textContent()) || '').trim();
  check((await cell(secretRow, 'type')) === 'openai', 'its type is openai');
  check((await cell(secretRow, 'provider')).includes('OpenAI'), `its provider is the OpenAI template (“${await cell(secretRow, 'provider')}”)`);
  check((await cell(secretRow, 'version')) === '1', 'it is at version 1');
  check((await cell(secretRow, 'hosts')).includes(`127.0.0.1:${upstream.address().port}`), 'its allowed host is the upstream');
  check((await cell(secretRow, 'grants')) === '0', 'it has no active grants');
  check((await cell(secretRow, 'last-used')) === 'never', 'it was never used');
  const creates = sentRequests.filter((r) => r.method === 'POST' && r.url.endsWith('/admin/v1/secrets'));
  check(creates.length === 1 && creates[0].body && creates[0].body.includes(CANARY_1),
    'the value was sent once, in the create call (the request recording works)');
  await checkStorageClean('after creating the secret');
  await screenshot('secrets');

  // 3. Principals, a group and an API key ----------------------------------------------------------
  step('3. create an agent, a group membership and an API key in the Principals page');
  const agentName = `portal-agent-${RUN}`;
  await go('nav-principals');
  await tid('principal-name').fill(agentName);
  await tid('principal-kind').selectOption('agent');
  await tid('create-principal').click();
  await expectStatus('ok', `Principal “${agentName}” (agent) created`, 'the agent is created');
  await waitReady();
  const agentId = decodeURIComponent(page.url().split('#/principals/')[1] || '');
  check(/^[0-9a-f-]{36}$/.test(agentId), `the agent's page opens (id ${agentId})`);

  await tid('key-name').fill('portal test');
  await tid('issue-key').click();
  await tid('issued-key-value').waitFor();
  const appKey = ((await tid('issued-key-value').textContent()) || '').trim();
  check(/^cg_app_[A-Za-z0-9]+_[A-Za-z0-9_-]+$/.test(appKey), 'the new API key is shown once');
  check(/shown only this once/.test((await tid('issued-key-warning').textContent()) || ''), 'with a warning that it is shown only once');
  await expectStatus('ok', 'issued to', 'the key is issued');
  const keyRow = page.locator('[data-testid="key-row"]').first();
  await keyRow.waitFor();
  const prefix = await keyRow.getAttribute('data-prefix');
  check(appKey.startsWith(`cg_app_${prefix}_`), 'the key list shows its prefix (metadata only)');
  check(!((await tid('keys-table').textContent()) || '').includes(appKey), 'the key list does not show the key');
  await tid('copy-key').click();
  await expectStatus('ok', 'copied to the clipboard', 'the Copy button reports');
  check((await clipboardText()) === appKey, 'the Copy button put the key on the clipboard');
  await screenshot('principals');

  // A group: add the agent, then remove it again.
  const groupName = `portal-group-${RUN}`;
  await go('nav-principals');
  await tid('principal-name').fill(groupName);
  await tid('principal-kind').selectOption('group');
  await tid('create-principal').click();
  await expectStatus('ok', `Principal “${groupName}” (group) created`, 'the group is created');
  await waitReady();
  await tid('member-select').selectOption(agentId);
  await tid('add-member').click();
  await expectStatus('ok', `“${agentName}” added to “${groupName}”`, 'the agent joins the group');
  await waitReady();
  await page.locator(`[data-testid="member-row"][data-principal-id="${agentId}"]`).waitFor();
  check(true, 'the group lists the agent as a member');
  await page.locator(`[data-testid="member-row"][data-principal-id="${agentId}"] [data-testid="remove-member"]`).click();
  await tid('confirm-dialog').waitFor({ state: 'visible' });
  await tid('confirm-yes').click();
  await expectStatus('ok', `“${agentName}” removed from “${groupName}”`, 'the agent leaves the group');
  await waitReady();
  check((await page.locator(`[data-testid="member-row"][data-principal-id="${agentId}"]`).count()) === 0, 'the member is gone from the list');

  // A hostile name is shown as text, never as markup.
  const hostile = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> ${RUN}`;
  await go('nav-principals');
  await tid('principal-name').fill(hostile);
  await tid('principal-kind').selectOption('user');
  await tid('create-principal').click();
  await expectStatus('ok', 'created', 'a principal with a hostile name is created');
  await waitReady();
  await go('nav-principals');
  const hostileRow = page.locator('[data-testid="principal-row"]', { hasText: hostile });
  await hostileRow.waitFor();
  check((await page.locator('main img, main script').count()) === 0 && !(await page.evaluate(() => window.__pwned)),
    'a hostile principal name is shown as text and never runs');

  // 4. Grant -------------------------------------------------------------------------------------
  step('4. issue a grant of the secret to the agent in the Grants page');
  await go('nav-grants');
  await tid('grant-secret').selectOption(secretId);
  await waitFor(async () => page.url().includes(`#/grants/${secretId}`), 'the grants page of the secret');
  await waitReady();
  await tid('grant-principal').selectOption(agentId);
  await tid('grant-ttl').fill('1');
  await tid('grant-ttl-unit').selectOption('86400');
  await tid('grant-method-GET').check();
  await tid('grant-paths').fill('/v1');
  await tid('grant-rate-requests').fill('5');
  await tid('grant-rate-per').selectOption('60');
  await tid('grant-quota-calls').fill('100');
  await tid('grant-quota-period').selectOption('day');
  await tid('issue-grant').click();
  await tid('issued-grant-id').waitFor();
  const grantId = ((await tid('issued-grant-id').textContent()) || '').trim();
  check(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(grantId), `the new grant id is shown (${grantId})`);
  const snippet = (await tid('python-snippet').textContent()) || '';
  check(snippet.includes(grantId) && snippet.includes('credgate.SyncApp(') && snippet.includes(`base_url="${BASE}"`) && snippet.includes('grant_id=GRANT_ID'),
    'the Python snippet uses the SDK with this grant id and gateway');
  check(snippet.includes(`"GET", "${upstreamUrl}/v1"`), 'the snippet calls the secret’s base URL within the grant’s limits');
  check(!snippet.includes('cg_app_'), 'the snippet does not embed an API key');
  const grantRow = page.locator(`[data-testid="grant-row"][data-grant-id="${grantId}"]`);
  await grantRow.waitFor();
  check((await grantRow.getAttribute('data-status')) === 'active', 'the grant is listed as active');
  const grantRowText = (await grantRow.textContent()) || '';
  check(grantRowText.includes(agentName) && grantRowText.includes('GET') && grantRowText.includes('/v1'), 'the list shows its principal and limits');
  check(grantRowText.includes('5 calls per minute') && grantRowText.includes('100 calls a day'), 'the list shows its rate limit and quota');
  await waitFor(async () => /5 of 5 calls available now; 0 of 100 used, resets/.test((await grantRow.locator('[data-testid="grant-usage"]').textContent()) || ''),
    'the grant’s usage (nothing used yet)');
  await tid('copy-grant-id').click();
  await expectStatus('ok', 'Grant id copied', 'the Copy button reports');
  check((await clipboardText()) === grantId, 'the Copy button put the grant id on the clipboard');
  await screenshot('grants');

  // 5. Data plane -----------------------------------------------------------------------------------
  step('5. call the data plane with the app key and the grant');
  let before = upstreamSeen.length;
  let call = await dataPlane(grantId, appKey, { headers: { 'X-Credgate-Reason': 'list the models for the weekly report', 'X-Credgate-Context': '{"run":"r-17"}' } });
  check(call.status === 200 && call.json && call.json.ok === true, `GET /v1/grants/<grant>/v1/models answers 200 from the upstream (got ${call.status} ${call.text.slice(0, 200)})`);
  check(upstreamSeen.length === before + 1, 'the upstream saw one request');
  let seen = upstreamSeen[upstreamSeen.length - 1];
  check(seen.url === '/v1/models' && seen.method === 'GET', 'at /v1/models');
  check(seen.headers.authorization === `Bearer ${CANARY_1}`, 'carrying authorization: Bearer <the first value>');
  check(!('proxy-authorization' in seen.headers), 'without the app key');
  const refused = await dataPlane(grantId, appKey, { method: 'POST' });
  check(refused.status === 403 && refused.json && refused.json.error.code === 'policy_violation', 'a POST outside the grant’s methods is refused (policy_violation)');

  // 6. Audit ----------------------------------------------------------------------------------------
  step('6. the call is in the Audit page, and the chain verifies');
  await go('nav-audit');
  await tid('audit-grant').fill(grantId);
  await tid('audit-action').fill('proxy.response');
  await clickAndRender('audit-apply');
  const auditRow = page.locator(`[data-testid="audit-row"][data-action="proxy.response"][data-grant-id="${grantId}"][data-outcome="ok"]`);
  await waitFor(async () => {
    if ((await auditRow.count()) > 0) return true;
    await clickAndRender('audit-apply'); // indexing may take a moment: reload
    return false;
  }, 'the proxy.response record of the call');
  check(true, 'the call’s record (proxy.response, ok) is listed');
  check(((await auditRow.first().textContent()) || '').includes('list the models for the weekly report') && ((await auditRow.first().textContent()) || '').includes('"run":"r-17"'),
    'the record shows the app’s reason and context');
  check(page.url().includes(`grant_id=${grantId}`), 'the filters are in the page address (shareable)');
  const verifyEl = tid('audit-verify');
  await waitFor(async () => (await verifyEl.getAttribute('data-ok')) !== null, 'the chain verification');
  check((await verifyEl.getAttribute('data-ok')) === 'true' && /verified/.test((await verifyEl.textContent()) || ''),
    `the chain verifies (“${((await verifyEl.textContent()) || '').trim()}”)`);
  await screenshot('audit');

  // Paging with before/next_before.
  await clickAndRender('audit-clear');
  await tid('audit-limit').selectOption('10');
  await clickAndRender('audit-apply');
  const seqs = async () => page.locator('[data-testid="audit-row"]').evaluateAll((rows) => rows.map((r) => Number(r.dataset.seq)));
  const page1 = await seqs();
  check(page1.length === 10 && page1.every((s, i) => i === 0 || s < page1[i - 1]), 'a page of 10 records, newest first');
  check(await tid('audit-older').isEnabled(), 'there is an older page');
  check(await tid('audit-newer').isDisabled(), 'there is no newer page');
  await tid('audit-older').click();
  await waitFor(async () => /Page 2/.test((await tid('audit-page-info').textContent()) || ''), 'page 2');
  const page2 = await seqs();
  check(page2.length > 0 && Math.max(...page2) < Math.min(...page1), 'the older page holds older records');
  await tid('audit-newer').click();
  await waitFor(async () => /Page 1/.test((await tid('audit-page-info').textContent()) || ''), 'page 1 again');
  check((await seqs())[0] === page1[0], 'Newer returns to the first page');

  // Export as JSON lines.
  const [download] = await Promise.all([page.waitForEvent('download'), tid('audit-export').click()]);
  const exported = await fs.readFile(await download.path(), 'utf8');
  const lines = exported.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  check(/\.jsonl$/.test(download.suggestedFilename()), `the export downloads ${download.suggestedFilename()}`);
  check(lines.some((r) => r.action === 'proxy.response' && r.grant_id === grantId), `the export holds the call (${lines.length} JSON lines)`);
  check(!CANARIES.some((c) => exported.includes(c)), 'the export holds no credential value');
  await expectStatus('ok', 'Exported', 'the export reports');

  // 7. Rotate -----------------------------------------------------------------------------------------
  step('7. rotate the secret; the next call carries the new value');
  await go('nav-secrets');
  const row2 = page.locator(`[data-testid="secret-row"][data-secret-id="${secretId}"]`);
  await row2.waitFor();
  check((await cell(row2, 'last-used')).includes('UTC'), `the secret shows when it was last used (“${await cell(row2, 'last-used')}”)`);
  check((await cell(row2, 'grants')) === '1', 'it has one active grant');
  await row2.locator('[data-testid="rotate-secret"]').click();
  await tid('rotate-token').waitFor();
  check((await tid('rotate-token').getAttribute('type')) === 'password', 'the new value goes in a password field');
  await tid('rotate-token').fill(CANARY_2);
  await tid('rotate-submit').click();
  const leftover2 = await page.evaluate(() => Array.from(document.querySelectorAll('input[type="password"]')).map((i) => i.value).join(''));
  check(leftover2 === '', 'the rotation field is cleared right after submitting');
  await expectStatus('ok', 'rotated to version 2', 'the secret is rotated');
  await waitReady();
  check((await cell(page.locator(`[data-testid="secret-row"][data-secret-id="${secretId}"]`), 'version')) === '2', 'the list shows version 2');
  await checkStorageClean('after rotating');
  before = upstreamSeen.length;
  call = await dataPlane(grantId, appKey);
  check(call.status === 200, `the next call answers 200 (got ${call.status})`);
  seen = upstreamSeen[upstreamSeen.length - 1];
  check(upstreamSeen.length === before + 1 && seen.headers.authorization === `Bearer ${CANARY_2}`, 'and carries the new value');

  // 7b. Approvals -------------------------------------------------------------------------------------
  step('7b. a call that needs approval waits; approved in the Approvals page, the app’s long-poll gets the answer; another is denied');
  await go('nav-grants');
  await tid('grant-secret').selectOption(secretId);
  await waitFor(async () => page.url().includes(`#/grants/${secretId}`), 'the grants page of the secret');
  await waitReady();
  await tid('grant-principal').selectOption(agentId);
  await tid('grant-approval-method-POST').check();
  await tid('grant-approval-ttl').fill('30');
  await tid('issue-grant').click();
  await tid('issued-grant-id').waitFor();
  const approvalGrant = ((await tid('issued-grant-id').textContent()) || '').trim();
  check(((await page.locator(`[data-testid="grant-row"][data-grant-id="${approvalGrant}"]`).textContent()) || '').includes('approval for POST'),
    'the list shows the grant’s approval rule');
  before = upstreamSeen.length;
  const heldCall = await dataPlane(approvalGrant, appKey, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Credgate-Reason': 'send the monthly report' },
    body: '{"report": "november"}',
  });
  check(heldCall.status === 202 && heldCall.json && heldCall.json.approval.status === 'pending', `the POST is held: 202 pending (got ${heldCall.status})`);
  check(upstreamSeen.length === before, 'and not made');
  const approvalId = heldCall.json.approval.id;
  check(heldCall.json.approval.approval_url === `${BASE}/portal/#/approvals/${approvalId}`, 'approval_url opens the approval in the portal');
  const longPoll = fetch(`${BASE}/v1/approvals/${approvalId}?wait=30`, { headers: { Authorization: `Bearer ${appKey}` } }).then((r) => r.json());
  await go('nav-approvals');
  await waitFor(async () => ((await tid('nav-approvals-count').textContent()) || '').trim() === '1', 'the navigation counts one pending approval');
  const approvalRow = page.locator(`[data-testid="approval-row"][data-approval-id="${approvalId}"]`);
  await approvalRow.waitFor();
  const approvalText = (await approvalRow.textContent()) || '';
  check(approvalText.includes('POST') && approvalText.includes('send the monthly report') && approvalText.includes('"report": "november"') && approvalText.includes(agentName),
    'the row shows the call, who asked, why, and the body');
  await approvalRow.locator('[data-testid="approve"]').click();
  await tid('confirm-dialog').waitFor({ state: 'visible' });
  await tid('confirm-yes').click();
  await expectStatus('ok', `Approval ${approvalId}: executed`, 'the call is approved and made');
  const polled = await longPoll;
  check(polled.approval.status === 'executed' && polled.approval.response.status === 200, 'the app’s long-poll returns: executed, the upstream answered 200');
  const answer = await fetch(`${BASE}/v1/approvals/${approvalId}/response`, { headers: { Authorization: `Bearer ${appKey}` } });
  check(answer.status === 200, `the app reads the upstream’s answer (got ${answer.status})`);
  check(upstreamSeen.length === before + 1, 'the upstream got the call once');
  seen = upstreamSeen[upstreamSeen.length - 1];
  check(seen.method === 'POST' && seen.headers.authorization === `Bearer ${CANARY_2}`, 'as a POST with the credential');
  await waitFor(async () => (await tid('nav-approvals-count').isHidden()), 'no approval is pending any more');
  const deniedCall = await dataPlane(approvalGrant, appKey, { method: 'POST', body: '{}' });
  const deniedId = deniedCall.json.approval.id;
  await page.evaluate((id) => { window.location.hash = `#/approvals/${id}`; }, deniedId);
  await tid('approval').waitFor();
  await waitFor(async () => (await tid('approval').getAttribute('data-status')) === 'pending', 'the approval’s own page');
  await tid('approval-note').fill('not this month');
  await tid('deny').click();
  await tid('confirm-dialog').waitFor({ state: 'visible' });
  await tid('confirm-yes').click();
  await waitFor(async () => (await tid('approval').getAttribute('data-status')) === 'denied', 'the page shows it denied');
  check(((await tid('approval').textContent()) || '').includes('not this month'), 'with the note');
  const deniedView = await (await fetch(`${BASE}/v1/approvals/${deniedId}`, { headers: { Authorization: `Bearer ${appKey}` } })).json();
  check(deniedView.approval.status === 'denied' && deniedView.approval.note === 'not this month', 'the app sees it denied, with the note');
  check(upstreamSeen.length === before + 1, 'the denied call was never made');
  await screenshot('approvals');

  // 7c. Overview ---------------------------------------------------------------------------------------
  step('7c. the overview counts the calls so far by outcome and provider, as the audit trail has them');
  const trail = await (await fetch(`${BASE}/admin/v1/audit?kind=proxy&limit=10000`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
  const expected = {};
  for (const r of trail.data) {
    if (r.action === 'proxy.request' || r.action === 'proxy.response') expected[r.outcome] = (expected[r.outcome] || 0) + 1;
  }
  check(expected.ok >= 3 && expected.policy_violation === 1 && expected.approval_pending === 2, `the calls so far: ${JSON.stringify(expected)}`);
  await go('nav-overview');
  const shown = {};
  for (const row of await page.locator('[data-testid="outcome-row"]').all()) {
    shown[await row.getAttribute('data-outcome')] = Number(await row.locator('[data-col="calls"]').textContent());
  }
  check(JSON.stringify(Object.keys(shown).sort().map((k) => [k, shown[k]])) === JSON.stringify(Object.keys(expected).sort().map((k) => [k, expected[k]])),
    `the outcome totals match the trail (${JSON.stringify(shown)})`);
  const total = Object.values(expected).reduce((a, b) => a + b, 0);
  check(((await tid('overview-summary').textContent()) || '').startsWith(`${total} calls in the last day`), 'the summary gives the total');
  const openaiRow = page.locator('[data-testid="provider-row"][data-provider="openai"]');
  check(Number(await openaiRow.locator('[data-col="calls"]').textContent()) === expected.ok + expected.approval_pending,
    'the calls that reached the secret are counted under its provider (openai); the one refused before is under none');
  check((await page.locator('[data-testid="chart-calls"] rect.bar').count()) >= 3, 'the time chart has a bar part per outcome');
  check((await page.locator('[data-testid="chart-grants"] rect.bar').count()) >= 2, 'the busiest grants are charted');
  await screenshot('overview');
  await page.locator('[data-testid="chart-calls"] rect.bar[data-outcome="policy_violation"]').first().click();
  await waitFor(async () => page.url().includes('#/audit?') && page.url().includes('outcome=policy_violation'), 'a click on a bar opens the audit view filtered to it');
  await waitReady();
  const filteredRows = page.locator('[data-testid="audit-row"]');
  await waitFor(async () => (await filteredRows.count()) === 1, 'the one policy_violation record');
  check((await filteredRows.first().getAttribute('data-outcome')) === 'policy_violation', 'listed in the audit view');

  // 8. Revoke -----------------------------------------------------------------------------------------
  step('8. revoke the grant in the page; the next call is refused');
  await go('nav-grants');
  await tid('grant-secret').selectOption(secretId);
  await waitFor(async () => page.url().includes(`#/grants/${secretId}`), 'the grants page of the secret');
  await waitReady();
  const grantRow2 = page.locator(`[data-testid="grant-row"][data-grant-id="${grantId}"]`);
  const grantTrail = await (await fetch(`${BASE}/admin/v1/audit?grant_id=${grantId}&kind=proxy&limit=1000`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
  const grantCalls = grantTrail.data.filter((r) => r.action === 'proxy.request' || r.action === 'proxy.response').length;
  check(grantCalls >= 3 && Number(await grantRow2.locator('[data-testid="grant-calls"]').getAttribute('data-total')) === grantCalls,
    `the grant's row charts its ${grantCalls} calls of the last day`);
  check(Number(await tid('secret-calls').getAttribute('data-total')) >= grantCalls, 'the secret’s page charts its calls');
  const usage = (await (await fetch(`${BASE}/admin/v1/grants/${grantId}`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } })).json()).usage;
  const quotaMeter = grantRow2.locator('[data-testid="quota-meter"]');
  await quotaMeter.waitFor();
  check(usage.quota.used >= 1 && Number(await quotaMeter.getAttribute('data-used')) === usage.quota.used && Number(await quotaMeter.getAttribute('data-max')) === 100,
    `the grant's quota is charted against its limit (${usage.quota.used} of 100 used)`);
  const rateMeter = grantRow2.locator('[data-testid="rate-meter"]');
  check(Number(await rateMeter.getAttribute('data-max')) === 5 && ((await rateMeter.getAttribute('aria-label')) || '').includes('of 5 calls available now'),
    'and its rate limit, with its numbers in the chart’s accessible name');
  await screenshot('grant-usage');
  await grantRow2.locator('[data-testid="revoke-grant"]').click();
  await tid('confirm-dialog').waitFor({ state: 'visible' });
  check(((await tid('confirm-dialog').textContent()) || '').includes(grantId), 'a confirmation names the grant');
  await tid('confirm-no').click();
  await tid('confirm-dialog').waitFor({ state: 'hidden' });
  check((await grantRow2.getAttribute('data-status')) === 'active', 'cancelling leaves the grant active');
  await grantRow2.locator('[data-testid="revoke-grant"]').click();
  await tid('confirm-dialog').waitFor({ state: 'visible' });
  await tid('confirm-yes').click();
  await expectStatus('ok', `Grant ${grantId} revoked`, 'the grant is revoked');
  await waitFor(async () => (await page.locator(`[data-testid="grant-row"][data-grant-id="${grantId}"]`).getAttribute('data-status')) === 'revoked', 'the grant listed as revoked');
  check(true, 'the list shows it revoked');
  before = upstreamSeen.length;
  call = await dataPlane(grantId, appKey);
  check(call.status === 403, `the next call is refused with 403 (got ${call.status})`);
  check(call.json && call.json.error && call.json.error.code === 'grant_revoked' && call.headers.get('x-credgate-error') === 'grant_revoked',
    'with error code grant_revoked');
  check(upstreamSeen.length === before, 'and never reaches the upstream');

  // 9. Providers ---------------------------------------------------------------------------------------
  step('9. upload a provider; a bad file is refused with the API’s message');
  await go('nav-providers');
  await tid('provider-file').setInputFiles(PROVIDER_WASM);
  let uploadResponse = page.waitForResponse((r) => r.url().endsWith('/admin/v1/providers') && r.request().method() === 'POST');
  await tid('upload-provider').click();
  let res = await uploadResponse;
  check(res.status() === 201 || res.status() === 200, `the upload is accepted (HTTP ${res.status()})`);
  await expectStatus('ok', `(${PROVIDER_ID})`, 'the upload reports the provider');
  await waitReady();
  const providerRow = page.locator(`[data-testid="provider-row"][data-provider-id="${PROVIDER_ID}"]`);
  await providerRow.waitFor();
  check((await providerRow.getAttribute('data-source')) === 'uploaded', `${PROVIDER_ID} is listed as uploaded`);
  const uploaded = await res.json();
  check(((await providerRow.textContent()) || '').includes(uploaded.version), `with its version ${uploaded.version}`);
  await providerRow.locator('[data-testid="provider-details"]').click();
  await tid('provider-detail-row').waitFor();
  check(/Credential fields/.test((await tid('provider-detail-row').textContent()) || '') && ((await tid('provider-detail-row').textContent()) || '').includes(uploaded.digest),
    'its details show the description and the full digest');
  await screenshot('providers');

  await tid('provider-file').setInputFiles(BAD_WASM);
  uploadResponse = page.waitForResponse((r) => r.url().endsWith('/admin/v1/providers') && r.request().method() === 'POST');
  await tid('upload-provider').click();
  res = await uploadResponse;
  check(res.status() === 400, `the bad file is refused (HTTP ${res.status()})`);
  const refusal = (await res.json()).error;
  await expectStatus('error', refusal.message, 'the page shows the API’s message');
  check((await statusText()).includes(refusal.code), `and its code (${refusal.code})`);

  // Disable, enable, remove the upload.
  await providerRow.locator('[data-testid="disable-provider"]').click();
  await tid('confirm-dialog').waitFor({ state: 'visible' });
  await tid('confirm-yes').click();
  await expectStatus('ok', `Provider ${PROVIDER_ID} disabled`, 'the provider is disabled');
  await waitReady();
  check((await providerRow.getAttribute('data-disabled')) === 'true', 'the list shows it disabled');
  await providerRow.locator('[data-testid="enable-provider"]').click();
  await expectStatus('ok', `Provider ${PROVIDER_ID} enabled`, 'the provider is enabled');
  await waitReady();
  check((await providerRow.getAttribute('data-disabled')) === 'false', 'the list shows it enabled');
  await providerRow.locator('[data-testid="remove-provider"]').click();
  await tid('confirm-dialog').waitFor({ state: 'visible' });
  await tid('confirm-yes').click();
  await expectStatus('ok', `Uploaded provider ${PROVIDER_ID} removed`, 'the upload is removed');
  await waitReady();
  check((await page.locator(`[data-testid="provider-row"][data-provider-id="${PROVIDER_ID}"][data-source="uploaded"]`).count()) === 0,
    'it is no longer listed as uploaded');

  // Delete the secret, then sign out.
  step('delete the secret with a confirmation, then sign out');
  await go('nav-secrets');
  await page.locator(`[data-testid="secret-row"][data-secret-id="${secretId}"] [data-testid="delete-secret"]`).click();
  await tid('confirm-dialog').waitFor({ state: 'visible' });
  await tid('confirm-yes').click();
  await expectStatus('ok', `Secret “${secretName}” deleted`, 'the secret is deleted');
  await waitReady();
  check((await page.locator(`[data-testid="secret-row"][data-secret-id="${secretId}"]`).count()) === 0, 'it is gone from the list');
  await checkStorageClean('before signing out');
  await tid('sign-out').click();
  await tid('signin-token').waitFor();
  dump = await storageDump();
  check(Object.keys(dump.session).length === 0 && Object.keys(dump.local).length === 0, 'signing out clears session storage');
  await snapshot('after sign-out');

  // 9b. A scoped admin token ------------------------------------------------------------------------
  step('9b. a token scoped to audit:read sees only the pages its scope opens');
  const scoped = await (await fetch(`${BASE}/admin/v1/admin-tokens`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'portal-auditor', scopes: ['audit:read'] }),
  })).json();
  check(typeof scoped.token === 'string' && scoped.token.startsWith('cg_adm_'), 'an audit:read token is created');
  await waitFor(async () => (await page.locator('#view').getAttribute('data-page')) === 'signin', 'the sign-in page');
  await waitReady();
  await tid('signin-token').fill(scoped.token);
  await tid('signin-submit').click();
  await waitFor(async () => page.url().endsWith('#/overview'), 'it lands on the overview, which its scope opens');
  await waitReady();
  check(await tid('nav-audit').isVisible() && await tid('nav-overview').isVisible(), 'the overview and the audit are in the navigation');
  check(!(await tid('nav-secrets').isVisible()) && !(await tid('nav-providers').isVisible()) && !(await tid('nav-approvals').isVisible()),
    'the secrets, providers and approvals are not');
  await page.evaluate(() => { location.hash = '#/secrets'; });
  await tid('no-access').waitFor();
  check(((await tid('no-access').textContent()) || '').includes('secrets:read'), 'a page outside its scope says which scope it needs');
  await screenshot('scoped-token');
  await tid('sign-out').click();
  await tid('signin-token').waitFor();

  // A read-only token sees the lists, without the buttons that would change them.
  const reader = await (await fetch(`${BASE}/admin/v1/admin-tokens`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'portal-reader', scopes: ['secrets:read'] }),
  })).json();
  await waitFor(async () => (await page.locator('#view').getAttribute('data-page')) === 'signin', 'the sign-in page');
  await waitReady();
  await tid('signin-token').fill(reader.token);
  await tid('signin-submit').click();
  await waitFor(async () => page.url().endsWith('#/secrets'), 'a secrets:read token lands on the secrets, the first page it opens');
  await waitReady();
  check(!(await tid('add-secret').isVisible()), 'it is not offered Add secret');
  await go('nav-providers');
  check((await page.locator('[data-testid="provider-row"]').count()) > 0, 'it sees the providers');
  check(!(await tid('upload-provider').isVisible()) && (await page.locator('[data-testid="disable-provider"]:visible').count()) === 0,
    'without the upload form or the disable buttons');
  await tid('sign-out').click();
  await tid('signin-token').waitFor();

  // 10. Nothing leaked ---------------------------------------------------------------------------------
  step('10. the credential values never came back to the browser');
  await Promise.allSettled(pendingBodies);
  const carriers = (canary) => sentRequests.filter((r) => (r.body && r.body.includes(canary)) || r.url.includes(canary));
  const c1 = carriers(CANARY_1);
  const c2 = carriers(CANARY_2);
  check(c1.length === 1 && c1[0].method === 'POST' && c1[0].url === `${BASE}/admin/v1/secrets`,
    `the first value left the page exactly once, in POST /admin/v1/secrets (of ${sentRequests.length} requests)`);
  check(c2.length === 1 && c2[0].method === 'POST' && c2[0].url === `${BASE}/admin/v1/secrets/${secretId}/rotate`,
    'the second value left the page exactly once, in POST /admin/v1/secrets/<id>/rotate');
  check(!sentRequests.some((r) => r.url.includes(ADMIN_TOKEN)), 'the admin token never appears in a URL');
  const withBody = responseBodies.filter((r) => r.body);
  const leaking = withBody.filter((r) => CANARIES.some((c) => r.body.includes(c)));
  check(leaking.length === 0, `no response body holds a value (${withBody.length} bodies checked)${leaking.length ? `: ${leaking.map((r) => r.url).join(', ')}` : ''}`);
  const leakingPages = pageContents.filter((p) => CANARIES.some((c) => p.html.includes(c)));
  check(leakingPages.length === 0, `no page's content holds a value (${pageContents.length} snapshots)${leakingPages.length ? `: ${leakingPages.map((p) => p.where).join(', ')}` : ''}`);
  check(!consoleLines.some((l) => CANARIES.some((c) => l.includes(c)) || l.includes(ADMIN_TOKEN)), 'the console never shows a value or the admin token');
  await checkStorageClean('at the end');
  check(cspViolations.length === 0, `no Content-Security-Policy violations${cspViolations.length ? `: ${cspViolations.join(' | ')}` : ''}`);
  check(pageErrors.length === 0, `no uncaught errors in the page${pageErrors.length ? `: ${pageErrors.join(' | ')}` : ''}`);
}

// ---- main ---------------------------------------------------------------------------------------

async function cleanup() {
  try {
    if (browser) await browser.close();
  } catch {
    // already gone
  }
  await new Promise((resolve) => {
    upstream.close(() => resolve());
    upstream.closeAllConnections?.();
  });
}

const watchdog = setTimeout(async () => {
  console.error(`\nFAIL: the portal test did not finish within ${OVERALL_TIMEOUT_MS} ms (step: ${currentStep})`);
  await cleanup();
  process.exit(1);
}, OVERALL_TIMEOUT_MS);

let failed = false;
try {
  await run();
} catch (err) {
  failed = true;
  console.error(`\nFAIL in step “${currentStep}”: ${err.message}`);
  if (!(err instanceof CheckFailed) && err.stack) console.error(err.stack);
  if (page) {
    try {
      console.error(`  page: ${page.url()}`);
      console.error(`  status line: ${(await statusText()).trim() || '(empty)'}`);
      const file = path.join(SCREENSHOT_DIR, 'failure.png');
      await page.screenshot({ path: file, fullPage: true });
      console.error(`  screenshot: ${file}`);
    } catch {
      // the page is gone
    }
  }
  if (pageErrors.length) console.error(`  page errors: ${pageErrors.join(' | ')}`);
  const recentConsole = consoleLines.slice(-10);
  if (recentConsole.length) console.error(`  last console lines:\n    ${recentConsole.join('\n    ')}`);
} finally {
  await cleanup();
  clearTimeout(watchdog);
}

if (failed) {
  process.exit(1);
}
console.log(`\nPASS: the portal test passed (${checks} checks)`);
process.exit(0);
