"""credgate: call third-party APIs through credgate with a grant id; the credential stays there.

    import credgate

    async with credgate.App(app_key, base_url="http://credgate:8080") as vault:
        r = await vault.request("GET", "https://api.stripe.com/v1/charges", grant_id=grant)

See :class:`App`, :class:`SyncApp`, and the errors in :mod:`credgate.errors`.
"""

from ._approvals import ApprovalInfo, PendingApproval
from ._client import DEFAULT_BASE_URL, App, ProxyResult, SyncApp
from ._request import HttpMethod
from ._sse import ServerSentEvent, aiter_sse, iter_sse
from .errors import (
    ApprovalDenied,
    ApprovalExpired,
    ApprovalFailed,
    ApprovalTimeout,
    AuditUnavailable,
    BadRequest,
    BlockedDestination,
    CredgateError,
    Forbidden,
    GrantExpired,
    GrantNotFound,
    GrantRevoked,
    Overloaded,
    PathParamError,
    PayloadTooLarge,
    PolicyViolation,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    Unauthenticated,
    UpstreamTimeout,
    UserTokenInvalid,
    UpstreamUnreachable,
)

__all__ = [
    "App",
    "SyncApp",
    "ProxyResult",
    "PendingApproval",
    "ApprovalInfo",
    "HttpMethod",
    "DEFAULT_BASE_URL",
    "ServerSentEvent",
    "aiter_sse",
    "iter_sse",
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
]
