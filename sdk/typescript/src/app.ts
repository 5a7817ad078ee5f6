// The app's view of credgate: `App`, holding the app key and the gateway's address.

import { ApprovalInfo, PendingApproval, infoFrom, pendingFrom, throwIfUnmade } from './approvals.js';
import { ApprovalTimeout, errorFrom } from './errors.js';
import { type RequestOptions, build } from './request.js';
import { type ServerSentEvent, iterSse } from './sse.js';

/** Where credgate listens when neither `baseUrl` nor `$CREDGATE_URL` says. */
export const DEFAULT_BASE_URL = 'http://127.0.0.1:8080';
/** Milliseconds to wait for a response's headers, unless the app says otherwise. */
export const DEFAULT_TIMEOUT = 60_000;
/** The longest timer Node keeps (about 24.8 days); a longer timeout means none. */
const LONGEST_TIMER = 2 ** 31 - 1;
/** Longest single wait credgate holds a status request open for, in seconds. */
const LONGEST_POLL = 60;

export interface AppOptions {
  /** The gateway. Default: `$CREDGATE_URL`, else `http://127.0.0.1:8080`. */
  baseUrl?: string | undefined;
  /**
   * Milliseconds to wait for a response's headers (0 or `Infinity`: no limit). Default 60 s.
   * The body is not bounded by it: a stream lasts as long as the upstream sends.
   */
  timeout?: number | undefined;
  /**
   * Called before each call that has no `userToken` of its own: the ID token of the person the
   * app acts for now (`undefined` for none). May be async.
   */
  userTokenGetter?: (() => string | undefined | null | Promise<string | undefined | null>) | undefined;
  /** The `fetch` to use (default: the platform's). */
  fetch?: typeof fetch | undefined;
}

/** A buffered upstream response (from `App.proxyRequest`). */
export class ProxyResult {
  constructor(
    readonly status: number,
    readonly headers: Headers,
    readonly content: Uint8Array,
    readonly requestId: string | undefined,
  ) {}

  /** The upstream's status, under the name Alter's SDK uses. */
  get statusCode(): number {
    return this.status;
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 400;
  }

  text(): string {
    return new TextDecoder().decode(this.content);
  }

  json<T = unknown>(): T {
    return JSON.parse(this.text()) as T;
  }

  static async of(response: Response): Promise<ProxyResult> {
    return new ProxyResult(
      response.status,
      response.headers,
      new Uint8Array(await response.arrayBuffer()),
      response.headers.get('x-credgate-request-id') ?? undefined,
    );
  }
}

function envBaseUrl(): string | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return env?.CREDGATE_URL || undefined;
}

/**
 * An app calling APIs through credgate with its app key.
 *
 * ```ts
 * const vault = new App(process.env.CREDGATE_APP_KEY!);
 * const r = await vault.request('POST', 'https://api.openai.com/v1/chat/completions',
 *   { grantId: GRANT, json: { model: 'gpt-4o-mini', messages: [] } });
 * ```
 */
export class App {
  readonly baseUrl: string;
  readonly #appKey: string;
  readonly #timeout: number;
  readonly #getter: AppOptions['userTokenGetter'];
  readonly #fetch: typeof fetch;

  constructor(appKey: string, options: AppOptions = {}) {
    if (!appKey) throw new TypeError('appKey is required (the app key credgate issued)');
    // Checked here, so that no later error (a header fetch refuses) ever quotes it.
    if (typeof appKey !== 'string' || !/^[\x21-\x7e]+$/.test(appKey)) {
      throw new TypeError('appKey must be one word of printable ASCII, as credgate issues them');
    }
    if (options.userTokenGetter !== undefined && typeof options.userTokenGetter !== 'function') {
      throw new TypeError('userTokenGetter must be a function');
    }
    this.#appKey = appKey;
    this.baseUrl = (options.baseUrl ?? envBaseUrl() ?? DEFAULT_BASE_URL).replace(/\/+$/, '');
    const timeout = options.timeout ?? DEFAULT_TIMEOUT;
    this.#timeout = Number.isFinite(timeout) && timeout > 0 ? Math.min(timeout, LONGEST_TIMER) : 0;
    this.#getter = options.userTokenGetter;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** Never shows the app key. */
  toString(): string {
    return `App(${this.baseUrl})`;
  }

  toJSON(): { baseUrl: string } {
    return { baseUrl: this.baseUrl };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  /**
   * Sends the request through credgate and returns the upstream's response, its body unread
   * (so it streams). Throws a `CredgateError` subclass when credgate refuses or fails; an
   * upstream's own 4xx and 5xx are returned, not thrown.
   */
  async request(method: string, url: string, options: RequestOptions): Promise<Response> {
    const userToken = options.userToken ?? (this.#getter ? (await this.#getter()) ?? undefined : undefined);
    const built = build(this.#appKey, this.baseUrl, method, url, userToken === undefined ? options : { ...options, userToken });
    const response = await this.#send(built.url, built.init, options.signal, this.#timeout);
    const error = await errorFrom(response);
    if (error) throw error;
    return response;
  }

  /** Like `request`, for a response read as it arrives: `for await (const e of iterSse(r))`. */
  stream(method: string, url: string, options: RequestOptions): Promise<Response> {
    return this.request(method, url, options);
  }

  /** The server-sent events of a streamed call, each as soon as it is complete. */
  async *events(method: string, url: string, options: RequestOptions): AsyncGenerator<ServerSentEvent> {
    yield* iterSse(await this.request(method, url, options));
  }

  /**
   * Like `request`, returning a buffered `ProxyResult`, or a `PendingApproval` when the grant
   * holds the call for an operator's approval (follow it with `awaitApproval`).
   */
  async proxyRequest(method: string, url: string, options: RequestOptions): Promise<ProxyResult | PendingApproval> {
    const response = await this.request(method, url, options);
    return (await pendingFrom(response)) ?? ProxyResult.of(response);
  }

  /** What became of a held call; with `wait`, waits up to that many seconds (at most 60) for it to settle. */
  async getApprovalStatus(approvalId: string, { wait = 0 }: { wait?: number } = {}): Promise<ApprovalInfo> {
    // Whole seconds, at least one when waiting at all (less would not wait, and a loop over
    // it would ask as fast as it could).
    const seconds = wait > 0 ? Math.max(1, Math.ceil(Math.min(wait, LONGEST_POLL))) : 0;
    const query = seconds ? `?wait=${seconds}` : '';
    const response = await this.#get(`/v1/approvals/${encodeURIComponent(approvalId)}${query}`, (seconds + 30) * 1000);
    return infoFrom((await response.json()) as Parameters<typeof infoFrom>[0]);
  }

  /**
   * Waits for a held call to be decided and made; returns the upstream's response. Throws
   * `ApprovalDenied`, `ApprovalExpired`, `ApprovalFailed`, or `ApprovalTimeout` after `timeout`
   * seconds (the call may still be approved later).
   */
  async awaitApproval(approvalId: string, { timeout = 300 }: { timeout?: number } = {}): Promise<ProxyResult> {
    const deadline = Date.now() + timeout * 1000;
    let info: ApprovalInfo;
    for (;;) {
      const left = (deadline - Date.now()) / 1000;
      info = await this.getApprovalStatus(approvalId, { wait: Math.max(0, Math.min(left, LONGEST_POLL)) });
      if (info.isFinal) break;
      if (Date.now() >= deadline) {
        throw new ApprovalTimeout(`approval ${approvalId} is still ${info.status} after ${timeout} s`);
      }
    }
    throwIfUnmade(info);
    return ProxyResult.of(await this.#get(`/v1/approvals/${encodeURIComponent(approvalId)}/response`, this.#timeout));
  }

  /** The base URL that points a vendor SDK at a grant (base-URL mode). */
  baseUrlFor(grantId: string, path = ''): string {
    return `${this.baseUrl}/v1/grants/${grantId}${path}`;
  }

  async #get(path: string, timeout: number): Promise<Response> {
    const init = { headers: { Authorization: `Bearer ${this.#appKey}` }, redirect: 'manual' as const };
    const response = await this.#send(`${this.baseUrl}${path}`, init, undefined, timeout);
    const error = await errorFrom(response);
    if (error) throw error;
    return response;
  }

  /**
   * `fetch`, cancelled by the caller's signal at any time, and by `timeout` only until the
   * headers arrive: the body then streams for as long as the upstream sends it.
   */
  async #send(url: string, init: RequestInit, caller: AbortSignal | undefined, timeout: number): Promise<Response> {
    const controller = new AbortController();
    const abort = () => controller.abort(caller?.reason);
    if (caller?.aborted) abort();
    caller?.addEventListener('abort', abort, { once: true });
    const timer = timeout > 0
      ? setTimeout(() => controller.abort(new DOMException(`no response within ${timeout} ms`, 'TimeoutError')), timeout)
      : undefined;
    try {
      return await this.#fetch(url, { ...init, signal: controller.signal });
    } finally {
      clearTimeout(timer);
    }
  }
}
