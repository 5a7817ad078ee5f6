"""request and proxy_request against an echo upstream: everything arrives intact, with the
injected credential and without the app key."""

from __future__ import annotations

import json

import pytest

import credgate
from credgate import HttpMethod, PathParamError


async def test_request_carries_method_path_query_and_json(world):
    grant = world.grant(world.secret("bearer-json", "bearer", {"token": "sk-upstream"}))
    async with credgate.App(world.key, base_url=world.gateway.url) as vault:
        r = await vault.request(
            HttpMethod.POST,
            world.upstream.url + "/v1/users/{user}/items/{item}",
            grant_id=grant,
            json={"name": "x", "n": 1},
            query_params={"limit": 10, "q": "a b&c"},
            path_params={"user": "alice/admin", "item": "42"},
            extra_headers={"X-Request-Tag": "t1"},
        )
    assert r.status_code == 200
    echo = r.json()
    assert echo["method"] == "POST"
    assert echo["path"] == "/v1/users/alice%2Fadmin/items/42"
    assert echo["query"] == [["limit", "10"], ["q", "a b&c"]]
    assert json.loads(echo["body"]) == {"name": "x", "n": 1}
    assert echo["headers"]["authorization"] == "Bearer sk-upstream"
    assert echo["headers"]["x-request-tag"] == "t1"
    assert echo["headers"]["content-type"] == "application/json"
    assert world.key not in json.dumps(echo), "the app key never reaches the upstream"
    assert not any(h.startswith("x-credgate") or h == "proxy-authorization" for h in echo["headers"])


async def test_raw_bodies_and_methods_as_strings(world):
    grant = world.grant(world.secret("api-key-raw", "api_key", {"token": "k-1"}, {"header": "x-api-key"}))
    payload = bytes(range(256)) * 4
    async with credgate.App(world.key, base_url=world.gateway.url) as vault:
        r = await vault.request("put", world.upstream.url + "/blob", grant_id=grant, body=payload,
                                extra_headers={"content-type": "application/octet-stream"})
    assert r.status_code == 200
    assert r.json()["body"].encode("latin-1") == payload
    seen = world.upstream.last()
    assert (seen.method, seen.body, seen.headers["x-api-key"]) == ("PUT", payload, "k-1")


async def test_proxy_request_buffers_the_result(world):
    grant = world.grant(world.secret("basic-proxy", "basic", {"username": "u", "password": "p"}))
    async with credgate.App(world.key, base_url=world.gateway.url) as vault:
        result = await vault.proxy_request("GET", world.upstream.url + "/hello", grant_id=grant)
        failed = await vault.proxy_request("GET", world.upstream.url + "/status/404", grant_id=grant)
    assert result.status == 200 and result.ok
    assert result.json()["headers"]["authorization"] == "Basic dTpw"
    assert "authorization" in result.text
    assert result.request_id
    # An upstream's own error is a result, not an exception.
    assert (failed.status, failed.ok, failed.json()) == (404, False, {"upstream": "says no"})


def test_the_sync_twin(world):
    grant = world.grant(world.secret("sync", "bearer", {"token": "sync-token"}))
    with credgate.SyncApp(world.key, base_url=world.gateway.url) as vault:
        r = vault.request("DELETE", world.upstream.url + "/things/{id}", grant_id=grant, path_params={"id": "7"})
        assert r.status_code == 200
        assert r.json()["path"] == "/things/7"
        assert vault.proxy_request("GET", world.upstream.url + "/status/503", grant_id=grant).status == 503
        with pytest.raises(credgate.GrantNotFound):
            vault.request("GET", world.upstream.url, grant_id="00000000-0000-0000-0000-000000000000")
    assert world.upstream.last().headers["authorization"] == "Bearer sync-token"


async def test_argument_mistakes_are_caught_before_sending(world):
    async with credgate.App(world.key, base_url=world.gateway.url) as vault:
        before = len(world.upstream.seen)
        with pytest.raises(ValueError, match="json or body"):
            await vault.request("POST", world.upstream.url, grant_id="g", json={}, body=b"x")
        with pytest.raises(PathParamError, match="no value"):
            await vault.request("GET", world.upstream.url + "/{missing}", grant_id="g")
        with pytest.raises(PathParamError, match="malformed"):
            await vault.request("GET", world.upstream.url + "/{not closed", grant_id="g", path_params={})
        with pytest.raises(PathParamError, match="malformed"):
            await vault.request("GET", world.upstream.url + "/{9bad}", grant_id="g", path_params={"9bad": 1})
        with pytest.raises(PathParamError, match="without a placeholder"):
            await vault.request("GET", world.upstream.url + "/x", grant_id="g", path_params={"extra": 1})
        for dots in (".", ".."):
            with pytest.raises(PathParamError, match="dot segment"):
                await vault.request("GET", world.upstream.url + "/users/{id}/profile", grant_id="g", path_params={"id": dots})
        with pytest.raises(ValueError, match="not an HTTP method"):
            await vault.request("GE T", world.upstream.url, grant_id="g")
        with pytest.raises(ValueError, match="absolute"):
            await vault.request("GET", "/relative", grant_id="g")
        assert len(world.upstream.seen) == before
