// @credgate/sdk: call third-party APIs through credgate. The app holds its app key and a grant
// id; credgate holds the credential, checks the call, injects the credential and records it.

export { App, ProxyResult, DEFAULT_BASE_URL, DEFAULT_TIMEOUT, type AppOptions } from './app.js';
export { ApprovalInfo, PendingApproval } from './approvals.js';
export { type Body, type RequestOptions, expandPath } from './request.js';
export { type ServerSentEvent, iterSse } from './sse.js';
export {
  ApprovalDenied,
  ApprovalExpired,
  ApprovalFailed,
  ApprovalTimeout,
  AuditUnavailable,
  BadRequest,
  BlockedDestination,
  Conflict,
  CredgateError,
  errorFrom,
  Forbidden,
  ForbiddenScope,
  GrantExpired,
  GrantNotFound,
  GrantRevoked,
  Internal,
  MethodNotAllowed,
  NotFound,
  Overloaded,
  PathParamError,
  PayloadTooLarge,
  PolicyViolation,
  ProviderError,
  QuotaExceeded,
  RateLimited,
  RetryableError,
  Unauthenticated,
  Unavailable,
  UnsupportedMediaType,
  UpstreamTimeout,
  UpstreamUnreachable,
  UserTokenInvalid,
} from './errors.js';
