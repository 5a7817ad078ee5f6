"""Calls for a person: ``user_token=`` per call and ``user_token_getter`` on the client, against a
gateway that trusts a real OpenID Provider (the oidc-provider peer)."""

from __future__ import annotations

from typing import Iterator

import pytest

import credgate
from servers import Gateway, OpenIdProvider, Upstream


@pytest.fixture(scope="module")
def team() -> Iterator[dict]:
    provider = OpenIdProvider()
    gateway = Gateway("--oidc-issuer", provider.issuer, "--oidc-audience", "credgate-app")
    upstream = Upstream()
    app = gateway.principal("team-assistant")
    group = gateway.post(
        "/admin/v1/principals",
        {"kind": "group", "name": "Engineering", "issuer": provider.issuer, "external_id": "engineering"},
    )["id"]
    secret = gateway.secret(
        {"name": "team-crm", "type": "bearer", "credential": {"token": "sk-team-crm"}, "config": {"base_url": upstream.url},
         "allow_private_destinations": True, "allow_insecure_http": True}
    )
    yield {
        "gateway": gateway, "upstream": upstream, "key": gateway.key(app), "grant": gateway.grant(secret, group),
        "alice": provider.login("alice"), "bob": provider.login("bob"),
    }
    upstream.close()
    gateway.close()
    provider.close()


async def test_a_user_token_per_call_opens_the_groups_grant(team):
    async with credgate.App(team["key"], base_url=team["gateway"].url) as vault:
        with pytest.raises(credgate.Forbidden):
            await vault.request("GET", team["upstream"].url + "/crm", grant_id=team["grant"])
        r = await vault.request("GET", team["upstream"].url + "/crm", grant_id=team["grant"], user_token=team["alice"])
        assert r.status_code == 200
        assert r.json()["headers"]["authorization"] == "Bearer sk-team-crm"
        assert "x-credgate-user-token" not in r.json()["headers"]
        with pytest.raises(credgate.Forbidden):
            await vault.request("GET", team["upstream"].url + "/crm", grant_id=team["grant"], user_token=team["bob"])
        with pytest.raises(credgate.UserTokenInvalid) as refused:
            await vault.request("GET", team["upstream"].url + "/crm", grant_id=team["grant"], user_token=team["alice"][:-4] + "AAAA")
        assert "signature" in refused.value.message


async def test_an_async_getter_supplies_the_person_and_a_call_may_override_it(team):
    asked = []

    async def current_user() -> str:
        asked.append(1)
        return team["alice"]

    async with credgate.App(team["key"], base_url=team["gateway"].url, user_token_getter=current_user) as vault:
        r = await vault.request("GET", team["upstream"].url + "/crm", grant_id=team["grant"])
        assert r.status_code == 200 and asked == [1]
        with pytest.raises(credgate.Forbidden):
            await vault.request("GET", team["upstream"].url + "/crm", grant_id=team["grant"], user_token=team["bob"])
        assert asked == [1], "a call's own token wins; the getter is not asked"


def test_the_sync_client_takes_a_plain_getter_and_checks_the_tokens_shape(team):
    with credgate.SyncApp(team["key"], base_url=team["gateway"].url, user_token_getter=lambda: team["alice"]) as vault:
        assert vault.request("GET", team["upstream"].url + "/crm", grant_id=team["grant"]).status_code == 200
        with pytest.raises(ValueError):
            vault.request("GET", team["upstream"].url + "/crm", grant_id=team["grant"], user_token="two\nlines")
    with pytest.raises(ValueError):
        credgate.SyncApp(team["key"], user_token_getter="not callable")
