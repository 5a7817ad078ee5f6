"""The streaming form yields server-sent events as they come."""

from __future__ import annotations

import asyncio

import credgate


async def test_events_arrive_while_the_upstream_is_still_sending(world):
    grant = world.grant(world.secret("sse", "bearer", {"token": "stream-token"}))
    world.upstream.gate.clear()
    async with credgate.App(world.key, base_url=world.gateway.url) as vault:
        async with vault.stream("GET", world.upstream.url + "/sse", grant_id=grant) as response:
            assert response.status_code == 200
            events = credgate.aiter_sse(response)
            # The upstream holds everything after the first event until the test has it: a
            # buffering client or gateway would never deliver it, and this would time out.
            first = await asyncio.wait_for(events.__anext__(), timeout=20)
            assert first.data == "first"
            world.upstream.gate.set()
            rest = [event.data async for event in events]
    assert rest == ["second", "[DONE]"]
    assert world.upstream.last().headers["authorization"] == "Bearer stream-token"


def test_the_sync_stream(world):
    grant = world.grant(world.secret("sse-sync", "bearer", {"token": "t"}))
    world.upstream.gate.set()
    with credgate.SyncApp(world.key, base_url=world.gateway.url) as vault:
        with vault.stream("GET", world.upstream.url + "/sse", grant_id=grant) as response:
            assert [e.data for e in credgate.iter_sse(response)] == ["first", "second", "[DONE]"]


async def test_a_refused_stream_raises(world):
    async with credgate.App(world.key, base_url=world.gateway.url) as vault:
        try:
            async with vault.stream("GET", world.upstream.url, grant_id="00000000-0000-0000-0000-000000000000"):
                raise AssertionError("a refused stream must not open")
        except credgate.GrantNotFound as error:
            assert error.request_id
