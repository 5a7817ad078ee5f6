// Browserless login against server.mjs: drives the real authorization-code
// flow over HTTP (authorization request with PKCE S256, state and nonce; the
// provider's interaction redirects, followed with a cookie jar; the redirect to
// the callback caught; the code exchanged at /token with client_secret_basic
// and the code_verifier) and returns the ID token from /token.
//
//   node login.mjs --issuer http://127.0.0.1:PORT --user alice [--scope "openid groups email"]
//
// prints the ID token (a JWT) on stdout. As a module:
//
//   import { login } from './login.mjs';
//   const { id_token, access_token } = await login({ issuer, user: 'alice' });

import * as crypto from 'node:crypto';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

export const DEFAULTS = {
  clientId: 'credgate-app',
  clientSecret: 'credgate-app-secret',
  redirectUri: 'http://127.0.0.1/callback',
  scope: 'openid groups email',
};

const b64url = (buf) => Buffer.from(buf).toString('base64url');

export class CookieJar {
  #cookies = new Map();

  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a))
        || attrs.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]) <= Date.now());
      if (expired || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  header() {
    return [...this.#cookies].map(([n, v]) => `${n}=${v}`).join('; ');
  }
}

export async function login({
  issuer,
  user,
  clientId = DEFAULTS.clientId,
  clientSecret = DEFAULTS.clientSecret,
  redirectUri = DEFAULTS.redirectUri,
  scope = DEFAULTS.scope,
  maxRedirects = 10,
}) {
  const discovery = await (await fetch(new URL('/.well-known/openid-configuration', issuer))).json();

  const codeVerifier = b64url(crypto.randomBytes(32));
  const codeChallenge = b64url(crypto.createHash('sha256').update(codeVerifier).digest());
  const state = b64url(crypto.randomBytes(16));
  const nonce = b64url(crypto.randomBytes(16));

  const auth = new URL(discovery.authorization_endpoint);
  auth.search = new URLSearchParams({
    client_id: clientId,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope,
    state,
    nonce,
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    login_hint: user,
  }).toString();

  const jar = new CookieJar();
  let url = auth.toString();
  let callback;
  for (let hop = 0; hop <= maxRedirects; hop++) {
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header() } });
    jar.store(res);
    const location = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || !location) {
      throw new Error(`authorization flow stopped at ${url}: HTTP ${res.status} ${await res.text()}`);
    }
    const next = new URL(location, url);
    if (`${next.origin}${next.pathname}` === redirectUri) {
      callback = next;
      break;
    }
    url = next.toString();
  }
  if (!callback) throw new Error(`no redirect to ${redirectUri} within ${maxRedirects} hops`);

  const q = callback.searchParams;
  if (q.get('error')) throw new Error(`authorization error: ${q.get('error')}: ${q.get('error_description') ?? ''}`);
  if (q.get('state') !== state) throw new Error('state mismatch in callback');
  if (q.get('iss') && q.get('iss') !== discovery.issuer) throw new Error('iss mismatch in callback');
  const code = q.get('code');
  if (!code) throw new Error(`callback without code: ${callback}`);

  const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64');
  const tokenRes = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${basic}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      code_verifier: codeVerifier,
    }),
  });
  const tokens = await tokenRes.json();
  if (!tokenRes.ok) throw new Error(`token endpoint: HTTP ${tokenRes.status} ${JSON.stringify(tokens)}`);
  if (!tokens.id_token) throw new Error(`token response without id_token: ${JSON.stringify(tokens)}`);

  const payload = JSON.parse(Buffer.from(tokens.id_token.split('.')[1], 'base64url').toString('utf8'));
  if (payload.nonce !== nonce) throw new Error('nonce mismatch in ID token');

  return tokens;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      issuer: { type: 'string' },
      user: { type: 'string' },
      scope: { type: 'string', default: DEFAULTS.scope },
    },
  });
  if (!values.issuer || !values.user) {
    console.error('usage: node login.mjs --issuer http://127.0.0.1:PORT --user alice [--scope "openid groups email"]');
    process.exit(2);
  }
  try {
    const tokens = await login(values);
    process.stdout.write(`${tokens.id_token}\n`);
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
