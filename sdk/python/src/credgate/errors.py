"""Errors credgate itself answers with.

Every refusal or failure made by credgate (not by the upstream) carries ``X-Credgate-Error``
and a JSON body ``{"error": {"code", "message", "request_id"}}``; each code maps to a subclass
of :class:`CredgateError`. An upstream's own 4xx and 5xx are never raised by
:meth:`credgate.App.request`: they come back as responses.
"""

from __future__ import annotations

import json
from typing import Dict, Optional, Type

import httpx

__all__ = [
    "CredgateError",
    "Unauthenticated",
    "UserTokenInvalid",
    "GrantNotFound",
    "GrantExpired",
    "GrantRevoked",
    "Forbidden",
    "PolicyViolation",
    "BlockedDestination",
    "ProviderError",
    "UpstreamUnreachable",
    "UpstreamTimeout",
    "PayloadTooLarge",
    "AuditUnavailable",
    "Overloaded",
    "RateLimited",
    "QuotaExceeded",
    "ApprovalDenied",
    "ApprovalExpired",
    "ApprovalFailed",
    "ApprovalTimeout",
    "BadRequest",
    "PathParamError",
    "error_from_response",
]


class CredgateError(Exception):
    """A refusal or failure made by credgate.

    Attributes:
        code: the stable error code, e.g. ``grant_revoked``.
        message: a human-readable explanation (never a credential).
        request_id: credgate's id for the request, to find it in the audit trail and logs.
        status: the HTTP status credgate answered with.
    """

    code: str = "error"

    def __init__(self, message: str, *, code: Optional[str] = None, request_id: Optional[str] = None, status: int = 0) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.request_id = request_id
        self.status = status

    def __str__(self) -> str:
        suffix = f" (request id {self.request_id})" if self.request_id else ""
        return f"{self.code}: {self.message}{suffix}"


class Unauthenticated(CredgateError):
    """No app key, a wrong one, or a revoked or expired one."""

    code = "unauthenticated"


class UserTokenInvalid(CredgateError):
    """The ``user_token`` did not verify: expired, for another audience, from an issuer
    credgate does not trust, or not signed by it. The message says which check failed."""

    code = "user_token_invalid"


class GrantNotFound(CredgateError):
    """No grant with that id."""

    code = "grant_not_found"


class GrantExpired(CredgateError):
    """The grant's lifetime is over."""

    code = "grant_expired"


class GrantRevoked(CredgateError):
    """The grant, or its secret, was revoked."""

    code = "grant_revoked"


class Forbidden(CredgateError):
    """The grant belongs to another principal."""

    code = "forbidden"


class PolicyViolation(CredgateError):
    """The method or path is outside the grant's policy."""

    code = "policy_violation"


class BlockedDestination(CredgateError):
    """The host is not allowed for the secret, or is a private address."""

    code = "blocked_destination"


class ProviderError(CredgateError):
    """The credential could not be injected."""

    code = "provider_error"


class UpstreamUnreachable(CredgateError):
    """credgate could not connect to the upstream."""

    code = "upstream_unreachable"


class UpstreamTimeout(CredgateError):
    """The upstream did not answer in time."""

    code = "upstream_timeout"


class PayloadTooLarge(CredgateError):
    """The request body is larger than credgate accepts."""

    code = "payload_too_large"


class AuditUnavailable(CredgateError):
    """The audit trail could not be written, so the call was not made."""

    code = "audit_unavailable"


class Overloaded(CredgateError):
    """credgate is at its limit of calls in flight; retry after ``Retry-After`` seconds."""

    code = "overloaded"


class RateLimited(CredgateError):
    """Past the grant's rate limit.

    Attributes:
        retry_after: seconds until the grant admits a call again (``Retry-After``).
    """

    code = "rate_limited"
    retry_after: Optional[float] = None


class QuotaExceeded(CredgateError):
    """The grant's quota for its period is spent.

    Attributes:
        retry_after: seconds until the quota resets (``Retry-After``); ``None`` for a quota
            that never resets.
    """

    code = "quota_exceeded"
    retry_after: Optional[float] = None


class ApprovalDenied(CredgateError):
    """An operator denied the held call; it was not made. The message carries their note."""

    code = "approval_denied"


class ApprovalExpired(CredgateError):
    """Nobody approved the held call before it expired; it was not made."""

    code = "approval_expired"


class ApprovalFailed(CredgateError):
    """The call was approved but could not be made (the grant was revoked in between, the
    upstream was unreachable, ...)."""

    code = "approval_failed"


class ApprovalTimeout(CredgateError):
    """:meth:`credgate.App.await_approval` gave up waiting; the call may still be approved."""

    code = "approval_timeout"


class BadRequest(CredgateError):
    """The request to credgate itself is malformed."""

    code = "bad_request"


class PathParamError(ValueError):
    """A ``{placeholder}`` in a URL is malformed or has no value."""


_BY_CODE: Dict[str, Type[CredgateError]] = {
    cls.code: cls
    for cls in (
        Unauthenticated,
        UserTokenInvalid,
        GrantNotFound,
        GrantExpired,
        GrantRevoked,
        Forbidden,
        PolicyViolation,
        BlockedDestination,
        ProviderError,
        UpstreamUnreachable,
        UpstreamTimeout,
        PayloadTooLarge,
        AuditUnavailable,
        Overloaded,
        RateLimited,
        QuotaExceeded,
        ApprovalDenied,
        ApprovalExpired,
        ApprovalFailed,
        BadRequest,
    )
}


def error_from_response(status: int, headers: httpx.Headers, body: bytes) -> Optional[CredgateError]:
    """The :class:`CredgateError` a response carries, or ``None`` for an upstream's response."""
    code = headers.get("x-credgate-error")
    if not code:
        return None
    request_id = headers.get("x-credgate-request-id")
    message = code
    try:
        detail = json.loads(body.decode("utf-8")).get("error", {})
        message = detail.get("message", code)
        request_id = detail.get("request_id", request_id)
    except (ValueError, AttributeError, UnicodeDecodeError):
        pass
    cls = _BY_CODE.get(code, CredgateError)
    error = cls(message, code=code, request_id=request_id, status=status)
    if isinstance(error, (RateLimited, QuotaExceeded)):
        try:
            error.retry_after = float(headers.get("retry-after", ""))
        except ValueError:
            error.retry_after = None
    return error
