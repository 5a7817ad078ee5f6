// request, stream and proxyRequest against a real gateway and an echo upstream: everything
// arrives intact, with the injected credential and without the app key.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import util from 'node:util';

import { App, PathParamError, ProxyResult, expandPath, iterSse } from '../dist/index.js';
import { world as makeWorld } from './servers.mjs';

let w;
before(async () => { w = await makeWorld('--upstream-first-byte-timeout', '2', '--max-body-bytes', String(8 << 20)); });
after(async () => { await w.close(); });

test('a request carries method, path, query, JSON and headers, with the credential and without the app key', async () => {
  const grant = await w.grant(await w.secret('bearer-json', 'bearer', { token: 'sk-upstream' }));
  const vault = new App(w.key, { baseUrl: w.gateway.url });
  const r = await vault.request('POST', `${w.upstream.url}/v1/users/{user}/items/{item}`, {
    grantId: grant,
    json: { name: 'x', n: 1 },
    query: { limit: 10, q: 'a b&c' },
    pathParams: { user: 'alice/admin', item: 42 },
    headers: { 'X-Request-Tag': 't1' },
  });
  assert.equal(r.status, 200);
  const echo = await r.json();
  assert.equal(echo.method, 'POST');
  assert.equal(echo.path, '/v1/users/alice%2Fadmin/items/42');
  assert.deepEqual(echo.query, [['limit', '10'], ['q', 'a b&c']]);
  assert.deepEqual(JSON.parse(echo.body), { name: 'x', n: 1 });
  assert.equal(echo.headers.authorization, 'Bearer sk-upstream');
  assert.equal(echo.headers['x-request-tag'], 't1');
  assert.equal(echo.headers['content-type'], 'application/json');
  assert.ok(!JSON.stringify(echo).includes(w.key), 'the app key never reaches the upstream');
  assert.ok(!Object.keys(echo.headers).some((h) => h.startsWith('x-credgate') || h === 'proxy-authorization'));
  assert.ok(!String(vault).includes(w.key) && !util.inspect(vault).includes(w.key) && !JSON.stringify(vault).includes(w.key),
    'the app key is never shown');
});

test('raw bodies go as bytes, a streamed body as it is produced', async () => {
  const grant = await w.grant(await w.secret('api-key-raw', 'api_key', { token: 'k-1' }, { header: 'x-api-key' }));
  const vault = new App(w.key, { baseUrl: w.gateway.url });
  const payload = new Uint8Array(1024).map((_, i) => i % 256);
  const r = await vault.request('put', `${w.upstream.url}/blob`, {
    grantId: grant, body: payload, headers: { 'content-type': 'application/octet-stream' },
  });
  assert.equal(r.status, 200);
  const seen = w.upstream.last();
  assert.equal(seen.method, 'PUT');
  assert.deepEqual(new Uint8Array(seen.body), payload);
  assert.equal(seen.headers['x-api-key'], 'k-1');
  const parts = ['one,', 'two,', 'three'];
  const stream = new ReadableStream({
    pull(controller) {
      const next = parts.shift();
      if (next === undefined) controller.close();
      else controller.enqueue(new TextEncoder().encode(next));
    },
  });
  await vault.request('POST', `${w.upstream.url}/stream-in`, { grantId: grant, body: stream });
  assert.equal(w.upstream.last().body.toString(), 'one,two,three');
});

test('proxyRequest buffers the result, and an upstream error is a result, not an exception', async () => {
  const grant = await w.grant(await w.secret('basic-proxy', 'basic', { username: 'u', password: 'p' }));
  const vault = new App(w.key, { baseUrl: w.gateway.url });
  const ok = await vault.proxyRequest('GET', `${w.upstream.url}/hello`, { grantId: grant });
  assert.ok(ok instanceof ProxyResult);
  assert.equal(ok.statusCode, 200);
  assert.ok(ok.ok);
  assert.equal(ok.json().headers.authorization, 'Basic dTpw');
  assert.ok(ok.requestId);
  const failed = await vault.proxyRequest('GET', `${w.upstream.url}/status/404`, { grantId: grant });
  assert.equal(failed.status, 404);
  assert.equal(failed.ok, false);
  assert.deepEqual(failed.json(), { upstream: 'says no' });
});

test('server-sent events arrive one by one, before the stream ends', async () => {
  const grant = await w.grant(await w.secret('sse', 'bearer', { token: 't' }));
  const vault = new App(w.key, { baseUrl: w.gateway.url });
  const response = await vault.stream('GET', `${w.upstream.url}/sse`, { grantId: grant });
  const events = iterSse(response);
  const first = await events.next();
  assert.equal(first.value.data, 'first', 'the first event arrives while the upstream still holds the rest');
  w.upstream.releaseGate();
  const rest = [];
  for await (const event of events) rest.push(event);
  assert.deepEqual(rest.map((e) => [e.event, e.data]), [['message', 'second'], ['done', '[DONE]']]);
});

test('reason and context reach the audit trail, in any language, and never the upstream', async () => {
  const grant = await w.grant(await w.secret('annotated', 'bearer', { token: 't' }));
  const vault = new App(w.key, { baseUrl: w.gateway.url });
  const result = await vault.proxyRequest('GET', w.upstream.url, {
    grantId: grant, reason: 'Réconcilier la facture 7 — 請求書', context: { ticket: 'T-7', step: 2, note: 'é' },
  });
  assert.equal(result.status, 200);
  assert.ok(!Object.keys(w.upstream.last().headers).some((h) => h.startsWith('x-credgate-')));
  const [record] = await w.gateway.audit(result.requestId);
  assert.equal(record.reason, 'Réconcilier la facture 7 — 請求書');
  assert.deepEqual(record.context, { ticket: 'T-7', step: 2, note: 'é' });
  await assert.rejects(vault.request('GET', w.upstream.url, { grantId: grant, reason: 'x'.repeat(257) }), /at most 256/);
  await assert.rejects(vault.request('GET', w.upstream.url, { grantId: grant, reason: 'two\nlines' }), /one line/);
  await assert.rejects(vault.request('GET', w.upstream.url, { grantId: grant, context: ['not', 'an', 'object'] }), /plain object/);
});

test('path parameters are strict and percent-encoded', () => {
  assert.equal(expandPath('https://x/{a}/{b}', { a: "it's (me)*", b: '~a b' }), 'https://x/it%27s%20%28me%29%2A/~a%20b');
  assert.throws(() => expandPath('https://x/{a}', {}), PathParamError);
  assert.throws(() => expandPath('https://x/{a}', { a: 1, b: 2 }), /without a placeholder: b/);
  assert.throws(() => expandPath('https://x/{a', { a: 1 }), /malformed/);
});

test('mistakes are caught before anything is sent', async () => {
  // A grant that works, so that only the SDK's own checks can keep these from the upstream.
  const grant = await w.grant(await w.secret('mistakes', 'bearer', { token: 't' }));
  const vault = new App(w.key, { baseUrl: w.gateway.url });
  const before = w.upstream.seen.length;
  await assert.rejects(vault.request('GET', w.upstream.url, { grantId: grant, json: {}, body: 'x' }), /not both/);
  await assert.rejects(vault.request('GET', 'ftp://example.com/x', { grantId: grant }), /absolute http/);
  await assert.rejects(vault.request('GET', '/relative', { grantId: grant }), /absolute http/);
  await assert.rejects(vault.request('GE T', w.upstream.url, { grantId: grant }), /not an HTTP method/);
  await assert.rejects(vault.request('GET', w.upstream.url, { grantId: grant, userToken: 'two words' }), /JWT/);
  await assert.rejects(vault.request('GET', `${w.upstream.url}/users/{id}/x`, { grantId: grant, pathParams: { id: '..' } }), /dot segment/);
  assert.equal(w.upstream.seen.length, before);
  await vault.request('GET', w.upstream.url, { grantId: grant });
  assert.equal(w.upstream.seen.length, before + 1, 'the same call, well made, goes');
  assert.throws(() => new App(''), /appKey is required/);
  assert.throws(() => new App(w.key, { userTokenGetter: 'no' }), /function/);
  const broken = `${w.key}\nX`;
  assert.throws(() => new App(broken), (e) => /printable ASCII/.test(e.message) && !e.message.includes(w.key));
});

test('the gateway address comes from baseUrl, else CREDGATE_URL, else the local default', () => {
  const saved = process.env.CREDGATE_URL;
  try {
    process.env.CREDGATE_URL = 'http://credgate.internal:9000/';
    assert.equal(new App('k').baseUrl, 'http://credgate.internal:9000');
    delete process.env.CREDGATE_URL;
    assert.equal(new App('k').baseUrl, 'http://127.0.0.1:8080');
    assert.equal(new App('k', { baseUrl: 'http://a/' }).baseUrlFor('g', '/v1'), 'http://a/v1/grants/g/v1');
  } finally {
    if (saved === undefined) delete process.env.CREDGATE_URL;
    else process.env.CREDGATE_URL = saved;
  }
});

test('a call is cancelled by its signal at any time, and by the timeout only until headers', async () => {
  const grant = await w.grant(await w.secret('slow', 'bearer', { token: 't' }));
  const quick = new App(w.key, { baseUrl: w.gateway.url, timeout: 300 });
  await assert.rejects(quick.request('GET', `${w.upstream.url}/slow`, { grantId: grant }), { name: 'TimeoutError' });
  // Aborted while credgate waits for the upstream.
  const controller = new AbortController();
  const vault = new App(w.key, { baseUrl: w.gateway.url });
  const call = vault.request('GET', `${w.upstream.url}/slow`, { grantId: grant, signal: controller.signal });
  setTimeout(() => controller.abort(), 200);
  await assert.rejects(call, { name: 'AbortError' });
  // A stream that outlasts the timeout: its headers came in time, so it is read to the end.
  const stream = await quick.stream('GET', `${w.upstream.url}/sse-slow`, { grantId: grant });
  const received = [];
  for await (const event of iterSse(stream)) received.push(event.data);
  assert.deepEqual(received, ['1', '2', '3', '4']);
});
