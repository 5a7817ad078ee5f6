// Every credgate error code is its own class, from a real gateway; an upstream's own errors
// are responses.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';

import * as credgate from '../dist/index.js';
import { App } from '../dist/index.js';
import { Gateway, Upstream, world as makeWorld } from './servers.mjs';

let w;
before(async () => { w = await makeWorld('--upstream-first-byte-timeout', '2', '--max-body-bytes', String(8 << 20)); });
after(async () => { await w.close(); });

async function expect(promise, Class) {
  const error = await promise.then(() => assert.fail(`expected ${Class.name}`), (e) => e);
  assert.ok(error instanceof Class, `${error} is a ${Class.name}`);
  assert.ok(error instanceof credgate.CredgateError);
  assert.equal(error.code, Class.CODE);
  assert.ok(error.requestId && error.message && error.status >= 400, String(error));
  return error;
}

test('each code throws its class, and no refusal reaches the upstream', async () => {
  const up = w.upstream.url;
  const secret = await w.secret('errors', 'bearer', { token: 't' });
  const grant = await w.grant(secret);
  const other = await w.gateway.principal('someone-else');
  const others = await w.gateway.grant(secret, other);
  const expiring = await w.grant(secret, { ttl_seconds: 1 });
  const revoked = await w.grant(secret);
  await w.gateway.admin('DELETE', `/grants/${revoked}`);
  const narrow = await w.grant(secret, { allowed_methods: ['GET'] });
  const crlf = await w.grant(await w.secret('crlf', 'bearer', { token: 'a\r\nb' }));
  await new Promise((r) => setTimeout(r, 1100));
  const vault = new App(w.key, { baseUrl: w.gateway.url });
  const call = (grantId, options = {}, url = up, method = 'GET') => vault.request(method, url, { grantId, ...options });
  const before = w.upstream.seen.length;
  await expect(call(randomUUID()), credgate.GrantNotFound);
  const forbidden = await expect(call(others), credgate.Forbidden);
  assert.equal(forbidden.status, 403);
  await expect(call(expiring), credgate.GrantExpired);
  await expect(call(revoked), credgate.GrantRevoked);
  await expect(call(narrow, {}, up, 'POST'), credgate.PolicyViolation);
  await expect(call(grant, {}, 'https://not-allowed.example/x'), credgate.BlockedDestination);
  await expect(call(crlf), credgate.ProviderError);
  await expect(call(grant, { body: new Uint8Array(9 << 20) }, up, 'POST'), credgate.PayloadTooLarge);
  await expect(call(grant, { userToken: 'not.a.jwt' }), credgate.UserTokenInvalid);
  await expect(call(grant, { headers: { 'X-Credgate-Context': '[' } }), credgate.BadRequest);
  assert.equal(w.upstream.seen.length, before, 'refusals never reach the upstream');
  await expect(call(grant, {}, `${up}/slow`), credgate.UpstreamTimeout);
  const down = await w.grant(await w.secret('down', 'bearer', { token: 't' }, { base_url: 'http://127.0.0.1:9' }));
  await expect(call(down, {}, 'http://127.0.0.1:9/x'), credgate.UpstreamUnreachable);
  const stranger = new App(`cg_app_abcdefghijkm_${'A'.repeat(43)}`, { baseUrl: w.gateway.url });
  const unauthenticated = await expect(stranger.request('GET', up, { grantId: grant }), credgate.Unauthenticated);
  assert.equal(unauthenticated.status, 401);
  assert.match(String(unauthenticated), /^unauthenticated: .* \(request id \w+\)$/);
});

test('an upstream error is a response, not an exception', async () => {
  const grant = await w.grant(await w.secret('upstream-errors', 'bearer', { token: 't' }));
  const vault = new App(w.key, { baseUrl: w.gateway.url });
  for (const status of [400, 404, 500, 503]) {
    const r = await vault.request('GET', `${w.upstream.url}/status/${status}`, { grantId: grant });
    assert.equal(r.status, status);
    assert.equal(r.headers.get('x-credgate-error'), null);
  }
});

test('limits throw with retryAfter', async () => {
  const secret = await w.secret('limited', 'bearer', { token: 't' });
  const limited = await w.grant(secret, { rate_limit: { requests: 2, per_seconds: 3600 } });
  const quota = await w.grant(secret, { quota: { calls: 1, period: 'total' } });
  const vault = new App(w.key, { baseUrl: w.gateway.url });
  for (let i = 0; i < 2; i++) assert.equal((await vault.request('GET', w.upstream.url, { grantId: limited })).status, 200);
  const rate = await expect(vault.request('GET', w.upstream.url, { grantId: limited }), credgate.RateLimited);
  assert.ok(rate.status === 429 && rate.retryAfter >= 1700 && rate.retryAfter <= 1800, String(rate.retryAfter));
  assert.equal((await vault.request('GET', w.upstream.url, { grantId: quota })).status, 200);
  const spent = await expect(vault.request('GET', w.upstream.url, { grantId: quota }), credgate.QuotaExceeded);
  assert.equal(spent.retryAfter, null, 'a total quota never resets');
});

test('overloaded: past --max-in-flight, at once, with Retry-After', async () => {
  const gateway = await Gateway.start('--max-in-flight', '1');
  const upstream = await Upstream.start();
  try {
    const agent = await gateway.principal('busy');
    const key = await gateway.key(agent);
    const grant = await gateway.grant(await gateway.secret({
      name: 's', type: 'bearer', credential: { token: 't' }, config: { base_url: upstream.url },
      allow_private_destinations: true, allow_insecure_http: true,
    }), agent);
    const vault = new App(key, { baseUrl: gateway.url });
    const slow = vault.request('GET', `${upstream.url}/slow`, { grantId: grant });
    await new Promise((r) => setTimeout(r, 300));
    const busy = await expect(vault.request('GET', upstream.url, { grantId: grant }), credgate.Overloaded);
    assert.equal(busy.status, 503);
    assert.equal(busy.retryAfter, 1);
    assert.equal((await slow).status, 200);
  } finally {
    await upstream.close();
    await gateway.close();
  }
});

test('audit_unavailable: thrown, and nothing is sent (PostgreSQL)', async (t) => {
  if (process.env.CREDGATE_TEST_SKIP_POSTGRES === '1') {
    t.skip('PostgreSQL disabled explicitly by CREDGATE_TEST_SKIP_POSTGRES=1');
    return;
  }
  const base = process.env.CREDGATE_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `cgts_${randomUUID().replaceAll('-', '')}`;
  const psql = (sql) => execFileSync('psql', [base, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql]);
  psql(`CREATE SCHEMA ${schema}`);
  const gateway = await Gateway.start('--audit-queue', '2', '--database-url', `${base}?options=-c%20search_path%3D${schema}`);
  const upstream = await Upstream.start();
  try {
    const agent = await gateway.principal('pg-app');
    const key = await gateway.key(agent);
    const grant = await gateway.grant(await gateway.secret({
      name: 's', type: 'bearer', credential: { token: 't' }, config: { base_url: upstream.url },
      allow_private_destinations: true, allow_insecure_http: true,
    }), agent);
    psql(`ALTER TABLE ${schema}.audit_events ADD CONSTRAINT refused CHECK (false) NOT VALID`);
    const vault = new App(key, { baseUrl: gateway.url });
    let answered = 0;
    let refused;
    for (let i = 0; i < 5 && !refused; i++) {
      try {
        await vault.request('GET', upstream.url, { grantId: grant });
        answered += 1;
      } catch (e) {
        refused = e;
      }
    }
    assert.ok(refused instanceof credgate.AuditUnavailable, String(refused));
    assert.equal(refused.status, 503);
    assert.equal(refused.retryAfter, 1);
    assert.ok(answered >= 1 && answered <= 2, String(answered));
    assert.equal(upstream.seen.length, answered, 'the refused call was never sent');
  } finally {
    await upstream.close();
    await gateway.close();
    psql(`DROP SCHEMA ${schema} CASCADE`);
  }
});
