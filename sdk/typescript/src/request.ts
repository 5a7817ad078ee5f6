// Turning a call's arguments into the request credgate receives, checked as credgate checks
// them, so a mistake is an error here rather than a refused call.

import { PathParamError } from './errors.js';

/** A body as `fetch` takes one. */
export type Body = string | Uint8Array | ArrayBuffer | Blob | URLSearchParams | FormData | ReadableStream<Uint8Array>;

/** The options of every call (`request`, `stream`, `events`, `proxyRequest`). */
export interface RequestOptions {
  /** The grant to use. */
  grantId: string;
  /** Sent as JSON (with `Content-Type: application/json` unless given). Not with `body`. */
  json?: unknown;
  /** The body as is. Not with `json`. */
  body?: Body | undefined;
  /** Headers for the upstream. */
  headers?: HeadersInit | undefined;
  /** Added to the URL's query. */
  query?: Record<string, string | number | boolean> | undefined;
  /** Fill `{name}` placeholders in the URL, percent-encoded, strictly. */
  pathParams?: Record<string, string | number> | undefined;
  /** Why the call is made (one line, at most 256 characters): in the audit trail, never upstream. */
  reason?: string | undefined;
  /** What the app says about the call (a JSON object, at most 4 KiB): in the audit trail. */
  context?: object | undefined;
  /**
   * The ID token of the person the app acts for, from an identity provider credgate trusts:
   * for grants to that person or their groups. Overrides the app's `userTokenGetter`.
   */
  userToken?: string | undefined;
  /** Cancels the call (and the upstream's), at any time, the body's streaming included. */
  signal?: AbortSignal | undefined;
}

export const MAX_REASON_CHARS = 256;
export const MAX_CONTEXT_BYTES = 4096;

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Percent-encodes everything but RFC 3986's unreserved characters. */
function encodeStrict(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * Fills `{identifier}` placeholders with percent-encoded values. Strict: a placeholder without
 * a value, a value without a placeholder, or a brace that is not part of a well-formed
 * placeholder is a `PathParamError`.
 */
export function expandPath(url: string, pathParams?: Record<string, string | number>): string {
  const params = new Map(Object.entries(pathParams ?? {}));
  const used = new Set<string>();
  const expanded = url.replace(PLACEHOLDER, (_, name: string) => {
    const value = params.get(name);
    if (value === undefined) throw new PathParamError(`no value for the path placeholder {${name}}`);
    // `.` and `..` would be read as the path's own dot segments: out of the segment.
    if (String(value) === '.' || String(value) === '..') {
      throw new PathParamError(`the value of {${name}} is a dot segment (\`.\` or \`..\`)`);
    }
    used.add(name);
    return encodeStrict(String(value));
  });
  if (expanded.includes('{') || expanded.includes('}')) {
    throw new PathParamError('the URL has a malformed placeholder; placeholders are {identifier}');
  }
  const unused = [...params.keys()].filter((k) => !used.has(k)).sort();
  if (unused.length) throw new PathParamError(`pathParams without a placeholder: ${unused.join(', ')}`);
  return expanded;
}

/** The method's name, upper-cased and checked. */
export function methodName(method: string): string {
  const name = method.toUpperCase();
  if (!TOKEN.test(name)) throw new TypeError(`not an HTTP method: ${JSON.stringify(method)}`);
  return name;
}

/**
 * A header value as `fetch` sends it: UTF-8 bytes, each as one character (fetch sends header
 * strings byte for byte), so text in any language arrives as credgate reads it.
 */
function utf8Header(text: string): string {
  let out = '';
  for (const byte of new TextEncoder().encode(text)) out += String.fromCharCode(byte);
  return out;
}

/** The headers carrying a call's reason and context. */
export function reasonHeaders(reason?: string, context?: object): Record<string, string> {
  const headers: Record<string, string> = {};
  if (reason !== undefined) {
    const text = reason.trim();
    const chars = [...text].length;
    if (chars > MAX_REASON_CHARS) throw new RangeError(`reason is ${chars} characters long; at most ${MAX_REASON_CHARS}`);
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(text)) throw new TypeError('reason must be one line of text');
    if (text) headers['X-Credgate-Reason'] = utf8Header(text);
  }
  if (context !== undefined) {
    if (context === null || typeof context !== 'object' || Array.isArray(context)) {
      throw new TypeError('context must be a plain object (a JSON object)');
    }
    // ASCII only, as JSON allows: non-ASCII characters as \u escapes.
    const encoded = JSON.stringify(context).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    if (encoded.length > MAX_CONTEXT_BYTES) {
      throw new RangeError(`context is ${encoded.length} bytes as JSON; at most ${MAX_CONTEXT_BYTES}`);
    }
    if (encoded !== '{}') headers['X-Credgate-Context'] = encoded;
  }
  return headers;
}

/** The header carrying the person's ID token, checked for shape only (credgate verifies it). */
export function userTokenHeader(userToken?: string | null): Record<string, string> {
  if (userToken === undefined || userToken === null) return {};
  if (typeof userToken !== 'string') throw new TypeError('userToken must be a string (an ID token)');
  const token = userToken.trim();
  if (!token || !/^[\x21-\x7e]+$/.test(token)) throw new TypeError('userToken must be a JWT: one line of printable ASCII');
  return { 'X-Credgate-User-Token': token };
}

/** A request ready for `fetch`. */
export interface Built {
  url: string;
  init: RequestInit & { duplex?: 'half' };
}

/** The explicit-mode request for a call: `/v1/proxy` with the grant and the target. */
export function build(appKey: string, baseUrl: string, method: string, url: string, options: RequestOptions): Built {
  if (options.json !== undefined && options.body !== undefined) throw new TypeError('give json or body, not both');
  if (!options.grantId) throw new TypeError('grantId is required');
  let target: URL;
  try {
    target = new URL(expandPath(url, options.pathParams));
  } catch (err) {
    if (err instanceof PathParamError) throw err;
    throw new TypeError(`url must be an absolute http(s) URL, got ${JSON.stringify(url)}`);
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw new TypeError(`url must be an absolute http(s) URL, got ${JSON.stringify(url)}`);
  }
  for (const [k, v] of Object.entries(options.query ?? {})) target.searchParams.append(k, String(v));
  const headers = new Headers(options.headers);
  headers.set('Proxy-Authorization', `Bearer ${appKey}`);
  headers.set('X-Credgate-Grant', String(options.grantId));
  headers.set('X-Credgate-Target', target.toString());
  for (const [k, v] of Object.entries({ ...reasonHeaders(options.reason, options.context), ...userTokenHeader(options.userToken) })) {
    headers.set(k, v);
  }
  const init: Built['init'] = { method: methodName(method), headers, redirect: 'manual' };
  if (options.json !== undefined) {
    init.body = JSON.stringify(options.json);
    if (!headers.has('content-type')) headers.set('Content-Type', 'application/json');
  } else if (options.body !== undefined) {
    init.body = options.body as BodyInit;
    // A streamed body goes as it is produced (Node's fetch needs to be told).
    if (options.body instanceof ReadableStream) init.duplex = 'half';
  }
  return { url: `${baseUrl.replace(/\/+$/, '')}/v1/proxy`, init };
}
