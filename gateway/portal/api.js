// The admin API client of the credgate portal.
//
// Two ways to be signed in. With an admin token: it lives in sessionStorage only (gone when
// the tab closes, never in localStorage, a cookie or a URL) and travels only in the
// Authorization header of calls to /admin/v1 on this origin. Through the identity provider:
// the session is an HttpOnly cookie the script never sees; the script keeps only the session's
// CSRF value (from /whoami), which every change carries in X-Credgate-CSRF. Nothing here logs
// to the console.

const TOKEN_KEY = 'credgate.admin_token';
const BASE = '/admin/v1';

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

const CSRF_KEY = 'credgate.csrf';

/** The portal session's CSRF value, when signed in through the identity provider. */
export function getCsrf() {
  try {
    return sessionStorage.getItem(CSRF_KEY);
  } catch {
    return null;
  }
}

export function setCsrf(csrf) {
  sessionStorage.setItem(CSRF_KEY, csrf);
}

/** Signed in, one way or the other. */
export function signedIn() {
  return Boolean(getToken() || getCsrf());
}

const SCOPES_KEY = 'credgate.scopes';

/** What the signed-in token may do (from `GET /whoami`), to show only the pages it opens. */
export function getScopes() {
  try {
    return JSON.parse(sessionStorage.getItem(SCOPES_KEY) || '[]');
  } catch {
    return [];
  }
}

export function setScopes(scopes) {
  sessionStorage.setItem(SCOPES_KEY, JSON.stringify(scopes || []));
}

const ACTOR_KEY = 'credgate.actor';

/** Who is signed in, as the audit trail names them. */
export function getActor() {
  try {
    return sessionStorage.getItem(ACTOR_KEY) || '';
  } catch {
    return '';
  }
}

export function setActor(actor) {
  sessionStorage.setItem(ACTOR_KEY, actor || '');
}

/** Whether the signed-in token holds `scope` (`admin` holds them all). */
export function allows(scope) {
  const scopes = getScopes();
  return scopes.includes('admin') || scopes.includes(scope);
}

/** Forgets everything the portal keeps in this tab. */
export function clearSession() {
  try {
    sessionStorage.clear();
  } catch {
    // Storage disabled: nothing was kept.
  }
}

/** An error answered by credgate (or a failure to reach it), in credgate's error shape. */
export class ApiError extends Error {
  constructor(status, code, message, requestId) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.requestId = requestId || '';
  }
}

/** Called when an authenticated call answers 401: the token is no longer accepted. */
let onUnauthenticated = () => {};
export function setUnauthenticatedHandler(fn) {
  onUnauthenticated = fn;
}

function queryString(query) {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    params.set(k, String(v));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

async function errorFrom(response) {
  let code = `http_${response.status}`;
  let message = response.statusText || `HTTP ${response.status}`;
  let requestId = response.headers.get('x-credgate-request-id') || '';
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
      requestId = body.error.request_id || requestId;
    }
  } catch {
    const header = response.headers.get('x-credgate-error');
    if (header) code = header;
  }
  return new ApiError(response.status, code, message, requestId);
}

/**
 * One admin API call. `body` is sent as JSON unless `raw` (bytes) is given with its
 * `contentType`. `token` overrides the stored token (used to check one before storing it).
 * Answers the parsed JSON, the text for `as: 'text'`, or null for 204.
 */
export async function call(method, path, { body, raw, contentType, query, token, as, session } = {}) {
  const useToken = session ? null : token ?? getToken();
  const headers = { Accept: 'application/json' };
  if (useToken) headers.Authorization = `Bearer ${useToken}`;
  // Without a token, the session cookie authenticates, and changes carry its CSRF value.
  const csrf = useToken ? null : getCsrf();
  if (csrf && method !== 'GET' && method !== 'HEAD') headers['X-Credgate-CSRF'] = csrf;
  let payload;
  if (raw !== undefined) {
    payload = raw;
    headers['Content-Type'] = contentType || 'application/octet-stream';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['Content-Type'] = 'application/json';
  }
  let response;
  try {
    response = await fetch(BASE + path + queryString(query), {
      method,
      headers,
      body: payload,
      cache: 'no-store',
      credentials: useToken ? 'omit' : 'same-origin',
      redirect: 'error',
    });
  } catch {
    throw new ApiError(0, 'network', 'credgate could not be reached; check that the gateway is running', '');
  }
  if (!response.ok) {
    const err = await errorFrom(response);
    if (err.status === 401 && token === undefined && !session) onUnauthenticated(err);
    throw err;
  }
  if (response.status === 204) return null;
  if (as === 'response') return response;
  if (as === 'text') return response.text();
  const type = response.headers.get('content-type') || '';
  return type.includes('json') ? response.json() : response.text();
}

const enc = encodeURIComponent;

/** Whether the portal offers sign-in through the identity provider. */
export async function signinConfig() {
  try {
    const response = await fetch('/portal/oidc/config', { cache: 'no-store', credentials: 'omit' });
    return response.ok ? response.json() : { enabled: false };
  } catch {
    return { enabled: false };
  }
}

/** Ends the portal session at the gateway (the cookie is cleared there). */
export async function endSession() {
  const csrf = getCsrf();
  if (!csrf) return;
  try {
    await fetch('/portal/oidc/logout', {
      method: 'POST',
      headers: { 'X-Credgate-CSRF': csrf },
      cache: 'no-store',
      credentials: 'same-origin',
      redirect: 'error',
    });
  } catch {
    // The session ends by itself within hours; the tab forgets it now either way.
  }
}

/** The error in plain words, for the status line: a lead, then credgate's own message verbatim. */
export function describeError(err, context) {
  const prefix = context ? `${context}: ` : '';
  if (!(err instanceof ApiError)) {
    return `${prefix}something went wrong in the portal (${err && err.message ? err.message : err}).`;
  }
  if (err.code === 'network') return `${prefix}${err.message}.`;
  const lead = {
    unauthenticated: 'the admin token was not accepted',
    not_found: 'not found',
    conflict: 'refused because of a conflict',
    payload_too_large: 'too large',
    unsupported_media_type: 'wrong content type',
    internal: 'credgate failed',
  }[err.code] || 'refused';
  const detail = `(error ${err.code}, HTTP ${err.status}${err.requestId ? `, request id ${err.requestId}` : ''})`;
  return `${prefix}${lead}. credgate says: ${err.message} ${detail}`;
}

// ---- resources -----------------------------------------------------------------------------

export const api = {
  // Who a token is and what it may do, to check it before keeping it.
  verifyToken: (token) => call('GET', '/whoami', { token }),
  // Who the session cookie (if any) is: after the identity provider sent the browser back.
  sessionWho: () => call('GET', '/whoami', { session: true }),

  principals: (kind) => call('GET', '/principals', { query: { kind } }).then((r) => r.data),
  principal: (id) => call('GET', `/principals/${enc(id)}`),
  createPrincipal: (kind, name) => call('POST', '/principals', { body: { kind, name } }),
  deletePrincipal: (id) => call('DELETE', `/principals/${enc(id)}`),
  addMember: (groupId, memberId) =>
    call('POST', `/principals/${enc(groupId)}/members`, { body: { member_id: memberId } }),
  removeMember: (groupId, memberId) => call('DELETE', `/principals/${enc(groupId)}/members/${enc(memberId)}`),

  keysOf: (principalId) => call('GET', `/principals/${enc(principalId)}/keys`).then((r) => r.data),
  keys: () => call('GET', '/keys').then((r) => r.data),
  issueKey: (principalId, body) => call('POST', `/principals/${enc(principalId)}/keys`, { body }),
  revokeKey: (id) => call('DELETE', `/keys/${enc(id)}`),

  secrets: () => call('GET', '/secrets').then((r) => r.data),
  secret: (id) => call('GET', `/secrets/${enc(id)}`),
  createSecret: (body) => call('POST', '/secrets', { body }),
  rotateSecret: (id, credential) => call('POST', `/secrets/${enc(id)}/rotate`, { body: { credential } }),
  deleteSecret: (id) => call('DELETE', `/secrets/${enc(id)}`),

  grantsOf: (secretId) => call('GET', `/secrets/${enc(secretId)}/grants`).then((r) => r.data),
  grants: (filter) => call('GET', '/grants', { query: filter }).then((r) => r.data),
  issueGrant: (secretId, principalId, policy) =>
    call('POST', `/secrets/${enc(secretId)}/grants`, { body: { principal_id: principalId, grant_policy: policy } }),
  revokeGrant: (grantId) => call('DELETE', `/grants/${enc(grantId)}`),
  grant: (grantId) => call('GET', `/grants/${enc(grantId)}`),
  stats: (query) => call('GET', '/stats', { query }),
  approvals: (filter) => call('GET', '/approvals', { query: filter }).then((r) => r.data),
  approval: (id) => call('GET', `/approvals/${enc(id)}`),
  decideApproval: (id, action, note) => call('POST', `/approvals/${enc(id)}/${action === 'approve' ? 'approve' : 'deny'}`, { body: note ? { note } : {} }),

  audit: (filters) => call('GET', '/audit', { query: { ...filters, format: 'json' } }),
  auditJsonl: (filters) => call('GET', '/audit', { query: { ...filters, format: 'jsonl' }, as: 'response' }),
  verifyAudit: () => call('GET', '/audit/verify'),

  providers: () => call('GET', '/providers').then((r) => r.data),
  provider: (id) => call('GET', `/providers/${enc(id)}`),
  uploadProvider: (bytes) => call('POST', '/providers', { raw: bytes, contentType: 'application/wasm' }),
  removeProvider: (id, force) => call('DELETE', `/providers/${enc(id)}`, { query: { force: force ? 'true' : '' } }),
  disableProvider: (id, force) =>
    call('POST', `/providers/${enc(id)}/disable`, { query: { force: force ? 'true' : '' } }),
  enableProvider: (id) => call('POST', `/providers/${enc(id)}/enable`),
};
