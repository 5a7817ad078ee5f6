"""Calls that wait for an operator's approval: what credgate answers while one is held, and
what an app reads about it afterwards."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import httpx

from .errors import ApprovalDenied, ApprovalExpired, ApprovalFailed, CredgateError

__all__ = ["PendingApproval", "ApprovalInfo", "pending_from", "info_from", "raise_if_unmade", "FINAL"]

#: Statuses that no longer change.
FINAL = frozenset({"executed", "failed", "denied", "expired"})


@dataclass(frozen=True)
class PendingApproval:
    """A call held for an operator's approval (credgate answered ``202``).

    ``status`` is ``pending``; ``approval_url`` opens the approval in credgate's portal, for a
    person to decide. Follow it with :meth:`credgate.App.await_approval`.
    """

    approval_id: str
    status: str
    expires_at: str
    approval_url: str
    request_id: Optional[str] = None


@dataclass(frozen=True)
class ApprovalInfo:
    """What became of a held call (:meth:`credgate.App.get_approval_status`).

    ``status`` is one of ``pending``, ``executing`` (approved, being made), ``executed``,
    ``failed``, ``denied``, ``expired``. ``note`` is the operator's; ``failure`` says why an
    approved call could not be made; ``response_status`` is the upstream's status once made.
    """

    approval_id: str
    status: str
    expires_at: str
    approval_url: str
    note: Optional[str] = None
    failure: Optional[str] = None
    response_status: Optional[int] = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL


def pending_from(response: httpx.Response) -> Optional[PendingApproval]:
    """The held call a response announces, or ``None`` for any other response."""
    if response.status_code != 202 or "x-credgate-approval" not in response.headers:
        return None
    approval: Dict[str, Any] = response.json()["approval"]
    return PendingApproval(
        approval_id=approval["id"],
        status=approval["status"],
        expires_at=approval["expires_at"],
        approval_url=approval["approval_url"],
        request_id=response.headers.get("x-credgate-request-id"),
    )


def info_from(body: Dict[str, Any]) -> ApprovalInfo:
    approval = body["approval"]
    response = approval.get("response") or {}
    return ApprovalInfo(
        approval_id=approval["id"],
        status=approval["status"],
        expires_at=approval["expires_at"],
        approval_url=approval["approval_url"],
        note=approval.get("note"),
        failure=approval.get("failure"),
        response_status=response.get("status"),
    )


def raise_if_unmade(info: ApprovalInfo) -> None:
    """Raises what a settled approval that was not made means."""
    if info.status == "denied":
        raise ApprovalDenied("an operator denied this call" + (f": {info.note}" if info.note else ""))
    if info.status == "expired":
        raise ApprovalExpired("nobody approved this call in time; it was not made")
    if info.status == "failed":
        raise ApprovalFailed(f"the approved call could not be made: {info.failure or 'unknown'}")
    if info.status != "executed":
        raise CredgateError(f"unexpected approval status {info.status!r}")
