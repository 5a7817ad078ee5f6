"""Held calls from the SDK's side, against a real gateway: proxy_request answers with a
PendingApproval, await_approval returns the upstream's response once an operator approves,
and raises what a denial or a wait that runs out means."""

from __future__ import annotations

import json
import threading
import time

import pytest

import credgate


def decide_soon(world, approval_id: str, action: str, note: str = "", after: float = 0.5) -> threading.Thread:
    """An operator deciding from the admin API while the app waits."""

    def decide() -> None:
        time.sleep(after)
        r = world.gateway.admin.post(f"/admin/v1/approvals/{approval_id}/{action}", json={"note": note or None})
        assert r.status_code == 200, r.text

    thread = threading.Thread(target=decide)
    thread.start()
    return thread


async def test_a_held_call_is_approved_and_its_response_returned(world):
    secret = world.secret("approvals", "bearer", {"token": "t"})
    grant = world.grant(secret, {"require_approval": [{"methods": ["POST"]}]})
    async with credgate.App(world.key, base_url=world.gateway.url) as vault:
        before = len(world.upstream.seen)
        pending = await vault.proxy_request("POST", world.upstream.url + "/refunds", grant_id=grant,
                                            json={"amount": 5}, reason="refund T-1")
        assert isinstance(pending, credgate.PendingApproval)
        assert pending.status == "pending" and pending.approval_url.endswith(f"#/approvals/{pending.approval_id}")
        assert len(world.upstream.seen) == before, "not made yet"
        info = await vault.get_approval_status(pending.approval_id)
        assert info.status == "pending" and not info.is_final
        operator = decide_soon(world, pending.approval_id, "approve")
        result = await vault.await_approval(pending.approval_id, timeout=30)
        operator.join()
        assert result.status_code == 200
        assert len(world.upstream.seen) == before + 1
        made = world.upstream.last()
        assert made.method == "POST" and made.path == "/refunds" and json.loads(made.body) == {"amount": 5}
        info = await vault.get_approval_status(pending.approval_id)
        assert info.status == "executed" and info.response_status == 200
        # A GET no rule matches is made at once.
        assert isinstance(await vault.proxy_request("GET", world.upstream.url, grant_id=grant), credgate.ProxyResult)


def test_denial_and_a_wait_that_runs_out_raise(world):
    secret = world.secret("approvals-sync", "bearer", {"token": "t"})
    grant = world.grant(secret, {"require_approval": [{"methods": ["DELETE"]}]})
    with credgate.SyncApp(world.key, base_url=world.gateway.url) as vault:
        pending = vault.proxy_request("DELETE", world.upstream.url + "/things/1", grant_id=grant)
        assert isinstance(pending, credgate.PendingApproval)
        with pytest.raises(credgate.ApprovalTimeout):
            vault.await_approval(pending.approval_id, timeout=1)
        operator = decide_soon(world, pending.approval_id, "deny", note="keep thing 1", after=0.2)
        with pytest.raises(credgate.ApprovalDenied, match="keep thing 1") as denied:
            vault.await_approval(pending.approval_id, timeout=30)
        operator.join()
        assert denied.value.code == "approval_denied"
        assert vault.get_approval_status(pending.approval_id).status == "denied"
