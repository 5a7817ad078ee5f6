// Errors credgate itself answers with.
//
// Every refusal or failure made by credgate (not by the upstream) carries `X-Credgate-Error`
// and a JSON body `{"error": {"code", "message", "request_id"}}`; each code is its own class.
// An upstream's own 4xx and 5xx are never thrown by `App.request`: they are responses.

/** A refusal or failure made by credgate. */
export class CredgateError extends Error {
  /** The stable error code, e.g. `grant_revoked`. */
  readonly code: string;
  /** credgate's id for the request, to find it in the audit trail and logs. */
  readonly requestId: string | undefined;
  /** The HTTP status credgate answered with (0 when there was no answer). */
  readonly status: number;

  constructor(message: string, options: { code?: string | undefined; requestId?: string | undefined; status?: number | undefined } = {}) {
    super(message);
    this.name = new.target.name;
    this.code = options.code ?? (new.target as unknown as { CODE?: string }).CODE ?? 'error';
    this.requestId = options.requestId;
    this.status = options.status ?? 0;
  }

  override toString(): string {
    return `${this.code}: ${this.message}${this.requestId ? ` (request id ${this.requestId})` : ''}`;
  }
}

/** A refusal that clears by itself: `retryAfter` is the seconds credgate asked to wait. */
export class RetryableError extends CredgateError {
  /** Seconds until a call may succeed (`Retry-After`), or `null` when it never will. */
  retryAfter: number | null = null;
}

/** No app key, a wrong one, or a revoked or expired one. */
export class Unauthenticated extends CredgateError { static readonly CODE = 'unauthenticated'; }
/** The `userToken` did not verify; the message says which check failed. */
export class UserTokenInvalid extends CredgateError { static readonly CODE = 'user_token_invalid'; }
/** No grant with that id. */
export class GrantNotFound extends CredgateError { static readonly CODE = 'grant_not_found'; }
/** The grant's lifetime is over. */
export class GrantExpired extends CredgateError { static readonly CODE = 'grant_expired'; }
/** The grant, or its secret, was revoked. */
export class GrantRevoked extends CredgateError { static readonly CODE = 'grant_revoked'; }
/** The grant belongs to another principal (or person). */
export class Forbidden extends CredgateError { static readonly CODE = 'forbidden'; }
/** The method or path is outside the grant's policy. */
export class PolicyViolation extends CredgateError { static readonly CODE = 'policy_violation'; }
/** The host is not allowed for the secret, or is a private address. */
export class BlockedDestination extends CredgateError { static readonly CODE = 'blocked_destination'; }
/** `TRACE`, `TRACK` or `CONNECT`, which credgate never forwards. */
export class MethodNotAllowed extends CredgateError { static readonly CODE = 'method_not_allowed'; }
/** The credential could not be injected (the message names the provider, never a value). */
export class ProviderError extends CredgateError { static readonly CODE = 'provider_error'; }
/** The upstream could not be reached (connection or TLS failure). */
export class UpstreamUnreachable extends CredgateError { static readonly CODE = 'upstream_unreachable'; }
/** The upstream sent no response headers in time. */
export class UpstreamTimeout extends CredgateError { static readonly CODE = 'upstream_timeout'; }
/** The body is over credgate's limit. */
export class PayloadTooLarge extends CredgateError { static readonly CODE = 'payload_too_large'; }
/** The call's audit record could not be written; the call was not made. */
export class AuditUnavailable extends RetryableError { static readonly CODE = 'audit_unavailable'; }
/** Too many calls in flight at credgate. */
export class Overloaded extends RetryableError { static readonly CODE = 'overloaded'; }
/** The grant's limits or the identity provider's keys could not be read; the call was not made. */
export class Unavailable extends RetryableError { static readonly CODE = 'unavailable'; }
/** Past the grant's rate limit. */
export class RateLimited extends RetryableError { static readonly CODE = 'rate_limited'; }
/** The grant's quota for its period is spent (`retryAfter` is `null` for a total quota). */
export class QuotaExceeded extends RetryableError { static readonly CODE = 'quota_exceeded'; }
/** An operator denied the held call. */
export class ApprovalDenied extends CredgateError { static readonly CODE = 'approval_denied'; }
/** Nobody approved the held call in time; it was not made. */
export class ApprovalExpired extends CredgateError { static readonly CODE = 'approval_expired'; }
/** The approved call could not be made. */
export class ApprovalFailed extends CredgateError { static readonly CODE = 'approval_failed'; }
/** No such thing (an approval id unknown, or another principal's). */
export class NotFound extends CredgateError { static readonly CODE = 'not_found'; }
/** Not now: e.g. the response of a held call asked for before it was made. */
export class Conflict extends CredgateError { static readonly CODE = 'conflict'; }
/** The body's type is not one credgate accepts there. */
export class UnsupportedMediaType extends CredgateError { static readonly CODE = 'unsupported_media_type'; }
/** (Admin API) the token or session lacks the scope the call needs. */
export class ForbiddenScope extends CredgateError { static readonly CODE = 'forbidden_scope'; }
/** The request to credgate itself is malformed. */
export class BadRequest extends CredgateError { static readonly CODE = 'bad_request'; }
/** credgate failed (its log has the cause). */
export class Internal extends CredgateError { static readonly CODE = 'internal'; }
/** `awaitApproval` gave up waiting; the call may still be approved later. */
export class ApprovalTimeout extends CredgateError { static readonly CODE = 'approval_timeout'; }

/** A `{placeholder}` in a URL is malformed or has no value, or a value has no placeholder. */
export class PathParamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PathParamError';
  }
}

type ErrorClass = (new (message: string, options?: { code?: string | undefined; requestId?: string | undefined; status?: number | undefined }) => CredgateError) & { CODE: string };

const CLASSES: ErrorClass[] = [
  Unauthenticated, UserTokenInvalid, GrantNotFound, GrantExpired, GrantRevoked, Forbidden, PolicyViolation,
  BlockedDestination, MethodNotAllowed, ProviderError, UpstreamUnreachable, UpstreamTimeout, PayloadTooLarge,
  AuditUnavailable, Overloaded, Unavailable, RateLimited, QuotaExceeded, ApprovalDenied, ApprovalExpired,
  ApprovalFailed, BadRequest, Internal, NotFound, Conflict, UnsupportedMediaType, ForbiddenScope,
];
const BY_CODE = new Map<string, ErrorClass>(CLASSES.map((c) => [c.CODE, c]));

/**
 * The error a credgate response carries, or `undefined` for an upstream's response. Reads the
 * body, so only for responses that carry `X-Credgate-Error`.
 */
export async function errorFrom(response: Response): Promise<CredgateError | undefined> {
  const code = response.headers.get('x-credgate-error');
  if (!code) return undefined;
  let requestId = response.headers.get('x-credgate-request-id') ?? undefined;
  let message = code;
  try {
    const body = (await response.json()) as { error?: { message?: unknown; request_id?: unknown } };
    if (typeof body.error?.message === 'string') message = body.error.message;
    if (typeof body.error?.request_id === 'string') requestId = body.error.request_id;
  } catch (err) {
    // Cancelled while the body was read: that, not a half-read refusal.
    if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) throw err;
    // Not credgate's JSON (an AWS-shaped error body): the code and header say enough.
  }
  const Class = BY_CODE.get(code);
  const error = Class
    ? new Class(message, { code, requestId, status: response.status })
    : new CredgateError(message, { code, requestId, status: response.status });
  if (error instanceof RetryableError) {
    const after = Number.parseFloat(response.headers.get('retry-after') ?? '');
    error.retryAfter = Number.isFinite(after) ? after : null;
  }
  return error;
}
