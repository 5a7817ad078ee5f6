// Self-test of the OpenID Provider peer: node --test tests/peers/oidc/test.mjs

import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import * as crypto from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { CookieJar, DEFAULTS, login } from './login.mjs';

const here = (name) => fileURLToPath(new URL(name, import.meta.url));
const TTL = 120;

let server;
let issuer;

before(async () => {
  server = spawn(process.execPath, [here('server.mjs'), '--port', '0', '--id-token-ttl', String(TTL)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: server.stdout });
  const [first] = await Promise.race([
    once(lines, 'line'),
    once(server, 'exit').then(([code]) => { throw new Error(`server exited with ${code}`); }),
  ]);
  const m = /^listening on (\d+)$/.exec(first);
  assert.ok(m, `unexpected first line: ${first}`);
  issuer = `http://127.0.0.1:${m[1]}`;
});

after(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await once(server, 'exit');
  }
});

const decode = (jwt) => {
  const [h, p] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')),
  };
};

async function getJson(path, init) {
  const res = await fetch(new URL(path, issuer), init);
  const body = await res.json();
  return { status: res.status, body };
}

const post = (path, body) => getJson(path, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: body === undefined ? undefined : JSON.stringify(body),
});

async function jwks() {
  const { body: discovery } = await getJson('/.well-known/openid-configuration');
  const res = await fetch(discovery.jwks_uri);
  return (await res.json()).keys;
}

// RS256 verification with nothing but node:crypto.
function verifyRs256(jwt, keys) {
  const [h, p, s] = jwt.split('.');
  const { alg, kid } = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
  assert.equal(alg, 'RS256');
  const jwk = keys.find((k) => k.kid === kid);
  if (!jwk) return false;
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  return crypto.verify('sha256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'));
}

async function idToken(user) {
  const tokens = await login({ issuer, user });
  return tokens.id_token;
}

test('discovery names the issuer with the real port and the groups scope', async () => {
  const { body } = await getJson('/.well-known/openid-configuration');
  assert.equal(body.issuer, issuer);
  assert.ok(body.scopes_supported.includes('groups'));
  assert.ok(body.claims_supported.includes('groups'));
  assert.deepEqual(body.id_token_signing_alg_values_supported, ['RS256']);
  assert.ok(body.code_challenge_methods_supported.includes('S256'));
});

test('alice gets a valid RS256 ID token with groups', async () => {
  const jwt = await idToken('alice');
  const { header, payload } = decode(jwt);
  assert.equal(header.alg, 'RS256');
  assert.equal(payload.iss, issuer);
  assert.equal(payload.aud, 'credgate-app');
  assert.equal(payload.sub, 'alice');
  assert.equal(payload.email, 'alice@example.test');
  assert.deepEqual(payload.groups, ['engineering']);
  assert.equal(payload.exp - payload.iat, TTL);
  assert.ok(Math.abs(payload.iat - Date.now() / 1000) < 30);

  const keys = await jwks();
  assert.equal(keys.length, 1);
  assert.equal(keys[0].kid, header.kid);
  assert.ok(verifyRs256(jwt, keys), 'signature verifies against the JWKS');

  // A token whose payload was altered must not verify.
  const [h, , s] = jwt.split('.');
  const forged = Buffer.from(JSON.stringify({ ...payload, groups: ['admin'] })).toString('base64url');
  assert.equal(verifyRs256(`${h}.${forged}.${s}`, keys), false);
});

test('login.mjs CLI prints an ID token', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [here('login.mjs'), '--issuer', issuer, '--user', 'bob']);
  const jwt = stdout.trim();
  assert.match(jwt, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  assert.equal(decode(jwt).payload.sub, 'bob');
  assert.ok(verifyRs256(jwt, await jwks()));
});

test('an unknown user is denied', async () => {
  await assert.rejects(login({ issuer, user: 'mallory' }), /access_denied/);
});

test('key rotation: new kid signs, old key stays until retired', async () => {
  const before = decode(await idToken('alice')).header.kid;
  const oldJwt = await idToken('alice');

  const { status, body } = await post('/__oidc/rotate');
  assert.equal(status, 200);
  assert.notEqual(body.kid, before);
  assert.deepEqual(body.kids, [body.kid, before]);

  const keys = await jwks();
  assert.deepEqual(keys.map((k) => k.kid).sort(), [before, body.kid].sort());

  const newJwt = await idToken('alice');
  assert.equal(decode(newJwt).header.kid, body.kid);
  assert.ok(verifyRs256(newJwt, keys));
  assert.ok(verifyRs256(oldJwt, keys), 'old token still verifies while its key is published');

  const retired = await post('/__oidc/retire');
  assert.equal(retired.status, 200);
  assert.deepEqual(retired.body.kids, [body.kid]);
  const after = await jwks();
  assert.deepEqual(after.map((k) => k.kid), [body.kid]);
  assert.equal(verifyRs256(oldJwt, after), false, 'old token no longer verifiable');
  assert.ok(verifyRs256(newJwt, after));
  assert.equal(decode(await idToken('bob')).header.kid, body.kid);
});

test('changing groups is reflected in the next token', async () => {
  assert.deepEqual(decode(await idToken('bob')).payload.groups, ['finance']);

  const { status, body } = await post('/__oidc/groups', { user: 'bob', groups: ['finance', 'auditors'] });
  assert.equal(status, 200);
  assert.deepEqual(body, { user: 'bob', groups: ['finance', 'auditors'] });
  assert.deepEqual(decode(await idToken('bob')).payload.groups, ['finance', 'auditors']);
  assert.deepEqual(decode(await idToken('alice')).payload.groups, ['engineering']);

  assert.equal((await post('/__oidc/groups', { user: 'nobody', groups: [] })).status, 404);
  assert.equal((await post('/__oidc/groups', { user: 'bob', groups: 'x' })).status, 400);
});

test('/__oidc/sign signs claims as given with the published key', async () => {
  const claims = { iss: issuer, aud: 'another-app', sub: 'alice', exp: 1 };
  const { status, body } = await post('/__oidc/sign', { claims });
  assert.equal(status, 200);
  assert.deepEqual(decode(body.token).payload, claims);
  assert.ok(verifyRs256(body.token, await jwks()));
  assert.equal((await post('/__oidc/sign', { claims: [] })).status, 400);
});

test('without a login hint, a person signs in through the form, and a wrong password is refused', async () => {
  const { body: discovery } = await getJson('/.well-known/openid-configuration');
  const callback = 'http://127.0.0.1:9/portal/oidc/callback';
  assert.equal((await post('/__oidc/redirect-uris', { uris: [callback] })).status, 200);
  const auth = new URL(discovery.authorization_endpoint);
  auth.search = new URLSearchParams({
    client_id: DEFAULTS.clientId, redirect_uri: callback, response_type: 'code', scope: 'openid groups', state: 's1',
  }).toString();
  const jar = new CookieJar();
  const go = async (url, init = {}) => {
    const res = await fetch(url, { redirect: 'manual', ...init, headers: { cookie: jar.header(), ...(init.headers ?? {}) } });
    jar.store(res);
    return res;
  };
  let res = await go(auth);
  while (res.status >= 300 && res.status < 400) res = await go(new URL(res.headers.get('location'), issuer));
  assert.equal(res.status, 200);
  const page = await res.text();
  const action = /action="([^"]+)"/.exec(page)[1];
  assert.match(action, /^\/interaction\/[^/]+\/login$/);
  const form = (password) => ({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ login: 'alice', password }).toString(),
  });
  const wrong = await go(new URL(action, issuer), form('guess'));
  assert.equal(wrong.status, 401);
  assert.match(await wrong.text(), /Wrong user name or password/);
  res = await go(new URL(action, issuer), form('alice-password'));
  let location;
  while (res.status >= 300 && res.status < 400) {
    location = new URL(res.headers.get('location'), issuer);
    if (location.toString().startsWith(callback)) break;
    res = await go(location);
  }
  assert.ok(location.toString().startsWith(callback), `ended at ${location}`);
  assert.equal(location.searchParams.get('state'), 's1');
  assert.ok(location.searchParams.get('code'));
});
