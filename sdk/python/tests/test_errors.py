"""Every credgate error code maps to its exception, from a real gateway."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

import credgate
from servers import Gateway, Upstream


async def expect(vault, exception, url, grant, **kwargs):
    with pytest.raises(exception) as raised:
        await vault.request(kwargs.pop("method", "GET"), url, grant_id=grant, **kwargs)
    error = raised.value
    assert isinstance(error, credgate.CredgateError)
    assert error.code == exception.code
    assert error.request_id and error.message and error.status >= 400
    return error


async def test_each_code_raises_its_exception(world):
    up = world.upstream.url
    secret = world.secret("errors", "bearer", {"token": "t"})
    grant = world.grant(secret)
    other = world.gateway.principal("someone-else")
    others = world.gateway.grant(secret, other)
    expiring = world.grant(secret, {"ttl_seconds": 1})
    revoked = world.grant(secret)
    world.gateway.admin.delete(f"/admin/v1/grants/{revoked}")
    narrow = world.grant(secret, {"allowed_methods": ["GET"]})
    crlf = world.grant(world.secret("crlf", "bearer", {"token": "a\r\nb"}))
    time.sleep(1.1)

    async with credgate.App(world.key, base_url=world.gateway.url) as vault:
        before = len(world.upstream.seen)
        await expect(vault, credgate.GrantNotFound, up, str(uuid.uuid4()))
        await expect(vault, credgate.Forbidden, up, others)
        await expect(vault, credgate.GrantExpired, up, expiring)
        await expect(vault, credgate.GrantRevoked, up, revoked)
        await expect(vault, credgate.PolicyViolation, up, narrow, method="POST")
        await expect(vault, credgate.BlockedDestination, "https://not-allowed.example/x", grant)
        await expect(vault, credgate.ProviderError, up, crlf)
        await expect(vault, credgate.PayloadTooLarge, up, grant, method="POST", body=b"x" * (9 << 20))
        assert len(world.upstream.seen) == before, "refusals never reach the upstream"
        await expect(vault, credgate.UpstreamTimeout, up + "/slow", grant)

    unreachable_secret = world.secret("down", "bearer", {"token": "t"}, {"base_url": "http://127.0.0.1:9"})
    async with credgate.App(world.key, base_url=world.gateway.url) as vault:
        await expect(vault, credgate.UpstreamUnreachable, "http://127.0.0.1:9/x", world.grant(unreachable_secret))
    async with credgate.App("cg_app_abcdefghijkm_" + "A" * 43, base_url=world.gateway.url) as stranger:
        await expect(stranger, credgate.Unauthenticated, up, grant)


async def test_audit_unavailable_raises_and_nothing_is_sent():
    """Needs PostgreSQL, where the test can make every audit write fail. The gateway's journal
    absorbs an outage up to --audit-queue records (here two), then calls are refused."""
    if os.environ.get("CREDGATE_TEST_SKIP_POSTGRES") == "1":
        pytest.skip("PostgreSQL disabled explicitly by CREDGATE_TEST_SKIP_POSTGRES=1")
    base = os.environ.get("CREDGATE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
    schema = "cgpy_" + uuid.uuid4().hex

    def psql(sql: str) -> None:
        subprocess.run(["psql", base, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], check=True, capture_output=True)

    psql(f"CREATE SCHEMA {schema}")
    gateway = Gateway("--audit-queue", "2", database_url=f"{base}?options=-c%20search_path%3D{schema}")
    upstream = Upstream()
    try:
        agent = gateway.principal("pg-app")
        key = gateway.key(agent)
        secret = gateway.secret({"name": "s", "type": "bearer", "credential": {"token": "t"}, "config": {"base_url": upstream.url},
                                 "allow_private_destinations": True, "allow_insecure_http": True})
        grant = gateway.grant(secret, agent)
        psql(f"ALTER TABLE {schema}.audit_events ADD CONSTRAINT refused CHECK (false) NOT VALID")
        answered = 0
        async with credgate.App(key, base_url=gateway.url) as vault:
            for _ in range(5):
                try:
                    await vault.request("GET", upstream.url, grant_id=grant)
                    answered += 1
                except credgate.AuditUnavailable as refused:
                    error = refused
                    break
            else:
                pytest.fail("calls were never refused while nothing could be indexed")
        assert error.status == 503 and error.code == "audit_unavailable" and error.request_id
        assert 1 <= answered <= 2
        assert len(upstream.seen) == answered, "the refused call was never sent"
    finally:
        gateway.close()
        upstream.close()
        psql(f"DROP SCHEMA {schema} CASCADE")


async def test_limits_raise_with_retry_after(world):
    up = world.upstream.url
    secret = world.secret("limited", "bearer", {"token": "t"})
    limited = world.grant(secret, {"rate_limit": {"requests": 2, "per_seconds": 3600}})
    quota = world.grant(secret, {"quota": {"calls": 1, "period": "total"}})
    async with credgate.App(world.key, base_url=world.gateway.url) as vault:
        for _ in range(2):
            assert (await vault.request("GET", up, grant_id=limited)).status_code == 200
        error = await expect(vault, credgate.RateLimited, up, limited)
        assert error.status == 429 and 1700 <= error.retry_after <= 1800, error.retry_after
        assert (await vault.request("GET", up, grant_id=quota)).status_code == 200
        error = await expect(vault, credgate.QuotaExceeded, up, quota)
        assert error.status == 429 and error.retry_after is None, "a total quota never resets"


async def test_reason_and_context_reach_the_audit_trail_and_not_the_upstream(world):
    up = world.upstream.url
    grant = world.grant(world.secret("annotated", "bearer", {"token": "t"}))
    with credgate.SyncApp(world.key, base_url=world.gateway.url) as vault:
        result = vault.proxy_request(
            "GET", up, grant_id=grant, reason="Réconcilier la facture 7", context={"ticket": "T-7", "step": 2}
        )
        assert result.status_code == 200
        seen = world.upstream.last()
        assert not any(name.lower().startswith("x-credgate-") for name in seen.headers)
        with pytest.raises(ValueError, match="at most 256"):
            vault.request("GET", up, grant_id=grant, reason="x" * 257)
        with pytest.raises(ValueError, match="dict"):
            vault.request("GET", up, grant_id=grant, context=["not", "a", "dict"])  # type: ignore[arg-type]
    request_id = result.request_id
    for _ in range(50):
        records = world.gateway.admin.get("/admin/v1/audit", params={"request_id": request_id}).json()["data"]
        if records:
            break
        time.sleep(0.02)
    assert records[0]["reason"] == "Réconcilier la facture 7"
    assert records[0]["context"] == {"ticket": "T-7", "step": 2}
