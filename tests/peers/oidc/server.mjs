// A real OpenID Provider (panva's certified oidc-provider) for credgate's
// end-to-end tests of OIDC.
//
//   node server.mjs --port 0 [--host 127.0.0.1] [--id-token-ttl 600]
//
// Prints `listening on <port>` as the first stdout line, then serves until
// killed. Issuer: http://<host>:<port> (discovery at
// /.well-known/openid-configuration, JWKS at its jwks_uri).
//
// Client: credgate-app / credgate-app-secret (client_secret_basic),
// authorization_code grant, response_type code, PKCE (S256) accepted,
// redirect URI http://127.0.0.1/callback (never served).
//
// Users (in memory): alice (groups ["engineering"]), bob (groups ["finance"]);
// sub = the name, email = <name>@example.test. Scopes: openid, email, groups;
// the ID token from /token carries sub, email, email_verified and groups.
//
// Interaction: GET /interaction/<uid> logs in the user named by the
// authorization request's `login_hint` (or by `?login=<user>` on the
// interaction URL) without a page; with neither, it serves a sign-in form
// (user name and password, `<name>-password`) posted to
// /interaction/<uid>/login, as a browser user meets it. Consent is granted
// for every requested scope of the openid/email/groups set. See login.mjs for
// a browserless client.
//
// Control endpoints (test-only):
//   POST /__oidc/rotate   adds a fresh RS256 key and signs with it from now on;
//                         the previous keys stay published in the JWKS.
//                         Returns {"kid": <new>, "kids": [<published>...]}.
//   POST /__oidc/retire   removes every key but the current signing key from
//                         the JWKS. Returns {"kid", "kids"}.
//   POST /__oidc/groups   body {"user": "alice", "groups": ["..."]} replaces
//                         the user's groups (used by every later token).
//   POST /__oidc/redirect-uris  body {"uris": ["http://..."]} adds redirect URIs
//                         to the client (a relying party whose port is known
//                         only once it listens).
//   POST /__oidc/sign     body {"claims": {...}} returns {"token"}: the claims
//                         signed RS256 with the current signing key, as is.
//                         For tests of what a relying party must refuse
//                         (expired, another audience) with a real key.
//   GET  /__oidc/state    {"kid", "kids", "users", "idTokenTtl"}.
//
// oidc-provider fixes its key set when a Provider is constructed, so rotate and
// retire build a new Provider over the same issuer, client, accounts, cookie
// keys and (module-wide) in-memory storage; requests go to the newest one.

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    'id-token-ttl': { type: 'string', default: '600' },
  },
});

const port = Number(args.port);
const host = args.host;
const idTokenTtl = Number(args['id-token-ttl']);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  throw new Error(`--port must be an integer in 0..65535, got ${args.port}`);
}
if (!Number.isInteger(idTokenTtl) || idTokenTtl <= 0) {
  throw new Error(`--id-token-ttl must be a positive integer, got ${args['id-token-ttl']}`);
}

const CLIENT_ID = 'credgate-app';
const CLIENT_SECRET = 'credgate-app-secret';
const redirectUris = ['http://127.0.0.1/callback'];
const SCOPES = ['openid', 'email', 'groups'];

// ---- accounts -------------------------------------------------------------

const users = new Map([
  ['alice', { email: 'alice@example.test', groups: ['engineering'], password: 'alice-password' }],
  ['bob', { email: 'bob@example.test', groups: ['finance'], password: 'bob-password' }],
]);

async function findAccount(_ctx, sub) {
  if (!users.has(sub)) return undefined;
  return {
    accountId: sub,
    // Read at token-issue time, so /__oidc/groups applies to the next token.
    async claims() {
      const user = users.get(sub);
      return {
        sub,
        email: user.email,
        email_verified: true,
        groups: [...user.groups],
      };
    },
  };
}

// ---- signing keys ---------------------------------------------------------

function newSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };
}

// Newest first: oidc-provider signs with the first matching key.
let keys = [newSigningKey()];

// ---- provider -------------------------------------------------------------

const cookieKeys = [crypto.randomBytes(32).toString('base64url')];
let provider;
let providerHandler;
let issuer;

function buildProvider() {
  const p = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [...redirectUris],
      id_token_signed_response_alg: 'RS256',
    }],
    jwks: { keys: keys.map((k) => ({ ...k })) },
    findAccount,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    scopes: SCOPES,
    // Put the scope-requested claims into the ID token issued by /token,
    // not only into /userinfo.
    conformIdTokenClaims: false,
    pkce: { required: () => false },
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    cookies: { keys: cookieKeys },
    ttl: {
      IdToken: idTokenTtl,
      AccessToken: 3600,
      AuthorizationCode: 60,
      Grant: 3600,
      Interaction: 600,
      Session: 3600,
    },
    renderError(ctx, out) {
      ctx.type = 'application/json';
      ctx.body = out;
    },
  });
  p.on('server_error', (_ctx, err) => console.error('server_error:', err));
  return p;
}

function installProvider() {
  provider = buildProvider();
  providerHandler = provider.callback();
}

// ---- non-interactive login + consent -------------------------------------

async function handleInteraction(req, res, url) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;

  if (prompt.name === 'login') {
    const user = url.searchParams.get('login') ?? params.login_hint;
    if (!user) return sendLoginForm(res, details.uid, '');
    if (!users.has(user)) {
      return provider.interactionFinished(req, res, {
        error: 'access_denied',
        error_description: `unknown user ${JSON.stringify(user ?? null)} (pass login_hint)`,
      }, { mergeWithLastSubmission: false });
    }
    return provider.interactionFinished(req, res, {
      login: { accountId: user },
    }, { mergeWithLastSubmission: false });
  }

  if (prompt.name === 'consent') {
    let grant;
    if (details.grantId) {
      grant = await provider.Grant.find(details.grantId);
    } else {
      grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    }
    const requested = String(params.scope ?? '').split(' ').filter((s) => SCOPES.includes(s));
    grant.addOIDCScope(requested.join(' '));
    const missing = prompt.details.missingOIDCClaims;
    if (Array.isArray(missing) && missing.length) grant.addOIDCClaims(missing);
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, {
      consent: { grantId },
    }, { mergeWithLastSubmission: true });
  }

  res.writeHead(400, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: `unsupported prompt ${prompt.name}` }));
}

const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function sendLoginForm(res, uid, error) {
  res.writeHead(error ? 401 : 200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html><head><title>Sign in</title></head><body>
<h1>Sign in to the test identity provider</h1>
${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label>User name <input name="login" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form></body></html>`);
}

// The sign-in form's post: the password must match.
async function handleLoginPost(req, res) {
  const details = await provider.interactionDetails(req, res);
  const form = new URLSearchParams(await readText(req));
  const user = users.get(form.get('login') ?? '');
  if (!user || form.get('password') !== user.password) {
    return sendLoginForm(res, details.uid, 'Wrong user name or password.');
  }
  return provider.interactionFinished(req, res, {
    login: { accountId: form.get('login') },
  }, { mergeWithLastSubmission: false });
}

function signJwt(claims) {
  const key = crypto.createPrivateKey({ key: keys[0], format: 'jwk' });
  const header = { alg: 'RS256', typ: 'JWT', kid: keys[0].kid };
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const signature = crypto.sign('sha256', Buffer.from(input), key).toString('base64url');
  return `${input}.${signature}`;
}

// ---- control endpoints ----------------------------------------------------

function readText(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function readJson(req) {
  const text = await readText(req);
  return text ? JSON.parse(text) : {};
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function keyState() {
  return { kid: keys[0].kid, kids: keys.map((k) => k.kid) };
}

async function handleControl(req, res, url) {
  const route = `${req.method} ${url.pathname}`;
  switch (route) {
    case 'POST /__oidc/rotate':
      keys = [newSigningKey(), ...keys];
      installProvider();
      return sendJson(res, 200, keyState());
    case 'POST /__oidc/retire':
      keys = [keys[0]];
      installProvider();
      return sendJson(res, 200, keyState());
    case 'POST /__oidc/groups': {
      let body;
      try { body = await readJson(req); } catch {
        return sendJson(res, 400, { error: 'body must be JSON' });
      }
      const { user, groups } = body;
      if (!users.has(user)) return sendJson(res, 404, { error: `unknown user ${JSON.stringify(user)}` });
      if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) {
        return sendJson(res, 400, { error: 'groups must be an array of strings' });
      }
      users.get(user).groups = [...groups];
      return sendJson(res, 200, { user, groups });
    }
    case 'POST /__oidc/redirect-uris': {
      let body;
      try { body = await readJson(req); } catch {
        return sendJson(res, 400, { error: 'body must be JSON' });
      }
      if (!Array.isArray(body.uris) || !body.uris.every((u) => typeof u === 'string' && /^https?:\/\//.test(u))) {
        return sendJson(res, 400, { error: 'uris must be an array of http(s) URLs' });
      }
      for (const uri of body.uris) if (!redirectUris.includes(uri)) redirectUris.push(uri);
      installProvider();
      return sendJson(res, 200, { redirect_uris: redirectUris });
    }
    case 'POST /__oidc/sign': {
      let body;
      try { body = await readJson(req); } catch {
        return sendJson(res, 400, { error: 'body must be JSON' });
      }
      if (typeof body.claims !== 'object' || body.claims === null || Array.isArray(body.claims)) {
        return sendJson(res, 400, { error: 'claims must be an object' });
      }
      return sendJson(res, 200, { token: signJwt(body.claims) });
    }
    case 'GET /__oidc/state':
      return sendJson(res, 200, {
        ...keyState(),
        users: Object.fromEntries([...users].map(([n, { password: _, ...u }]) => [n, u])),
        idTokenTtl,
      });
    default:
      return sendJson(res, 404, { error: `no control route ${route}` });
  }
}

// ---- server ---------------------------------------------------------------

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  try {
    if (url.pathname.startsWith('/__oidc/')) return await handleControl(req, res, url);
    if (req.method === 'POST' && /^\/interaction\/[^/]+\/login$/.test(url.pathname)) {
      return await handleLoginPost(req, res);
    }
    if (req.method === 'GET' && url.pathname.startsWith('/interaction/')) {
      return await handleInteraction(req, res, url);
    }
    return providerHandler(req, res);
  } catch (err) {
    console.error(err);
    if (!res.headersSent) sendJson(res, 500, { error: String(err?.message ?? err) });
    else res.destroy();
  }
});

server.listen(port, host, () => {
  const actual = server.address().port;
  issuer = `http://${host}:${actual}`;
  installProvider();
  process.stdout.write(`listening on ${actual}\n`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { server.close(); process.exit(0); });
}
