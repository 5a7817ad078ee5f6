// Calls for a person: userToken per call and userTokenGetter on the app, against a gateway
// that trusts a real OpenID Provider (tests/peers/oidc).

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { App, Forbidden, UserTokenInvalid } from '../dist/index.js';
import { Gateway, Upstream } from './servers.mjs';

const peer = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../tests/peers/oidc');
let provider;
let issuer;
let gateway;
let upstream;
let key;
let grant;

const login = (user) => execFileSync(process.execPath, ['login.mjs', '--issuer', issuer, '--user', user], { cwd: peer }).toString().trim();

before(async () => {
  provider = spawn(process.execPath, ['server.mjs', '--port', '0'], { cwd: peer, stdio: ['ignore', 'pipe', 'ignore'] });
  const [line] = await new Promise((resolve) => createInterface({ input: provider.stdout }).once('line', (l) => resolve([l])));
  issuer = `http://127.0.0.1:${/listening on (\d+)/.exec(line)[1]}`;
  gateway = await Gateway.start('--oidc-issuer', issuer, '--oidc-audience', 'credgate-app');
  upstream = await Upstream.start();
  const app = await gateway.principal('team-assistant');
  key = await gateway.key(app);
  const group = (await gateway.admin('POST', '/principals', { kind: 'group', name: 'Engineering', issuer, external_id: 'engineering' })).id;
  const secret = await gateway.secret({
    name: 'team-crm', type: 'bearer', credential: { token: 'sk-team-crm' }, config: { base_url: upstream.url },
    allow_private_destinations: true, allow_insecure_http: true,
  });
  grant = await gateway.grant(secret, group);
});

after(async () => {
  await upstream.close();
  await gateway.close();
  provider.kill();
});

test('a userToken per call opens the group\'s grant; another person\'s does not', async () => {
  const vault = new App(key, { baseUrl: gateway.url });
  await assert.rejects(vault.request('GET', `${upstream.url}/crm`, { grantId: grant }), Forbidden);
  const r = await vault.request('GET', `${upstream.url}/crm`, { grantId: grant, userToken: login('alice') });
  assert.equal(r.status, 200);
  const echo = await r.json();
  assert.equal(echo.headers.authorization, 'Bearer sk-team-crm');
  assert.equal(echo.headers['x-credgate-user-token'], undefined);
  await assert.rejects(vault.request('GET', `${upstream.url}/crm`, { grantId: grant, userToken: login('bob') }), Forbidden);
  const forged = `${login('alice').slice(0, -4)}AAAA`;
  const refused = await vault.request('GET', `${upstream.url}/crm`, { grantId: grant, userToken: forged }).catch((e) => e);
  assert.ok(refused instanceof UserTokenInvalid);
  assert.match(refused.message, /signature/);
});

test('an async getter supplies the person; a call\'s own token wins', async () => {
  const alice = login('alice');
  let asked = 0;
  const vault = new App(key, {
    baseUrl: gateway.url,
    userTokenGetter: async () => { asked += 1; return alice; },
  });
  assert.equal((await vault.request('GET', `${upstream.url}/crm`, { grantId: grant })).status, 200);
  assert.equal(asked, 1);
  await assert.rejects(vault.request('GET', `${upstream.url}/crm`, { grantId: grant, userToken: login('bob') }), Forbidden);
  assert.equal(asked, 1, 'the getter is not asked when the call has a token');
});
