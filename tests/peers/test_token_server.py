"""The token peer (token_server.py) over real HTTP on loopback, with the real client of each grant
where one exists (Authlib's OAuth2Session for client_credentials and refresh_token, google-auth's
service-account credentials for Google, PyJWT for the GitHub App JWT), and with requests built
from the specification in the peer's header, as a gateway's template would build them.

Run: python -m pytest -q -p no:cacheprovider tests/peers/test_token_server.py
(in an environment with sdk/python/requirements-test.txt installed)."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import google.auth.exceptions
import google.auth.transport.requests
import httpx
import jwt
import pytest
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from google.oauth2 import service_account

SERVER = Path(__file__).with_name("token_server.py")
R0 = "refresh-token-zero"
TENANT = "0c5e4f0e-test-tenant"
APP_ID = "31337"
INSTALLATION_ID = "777"
GRAPH = "https://graph.microsoft.com/.default"
CLOUD = "https://www.googleapis.com/auth/cloud-platform"
MARKER = "token-endpoint-body-marker"


class Peer:
    def __init__(self, workdir: Path, expires_in: int = 3600) -> None:
        self.service_account = workdir / "service-account.json"
        self.github_key = workdir / "github-app.pem"
        args = [sys.executable, str(SERVER), "--port", "0", "--expires-in", str(expires_in),
                "--refresh-token", R0, "--tenant", TENANT,
                "--write-service-account", str(self.service_account), "--write-github-key", str(self.github_key),
                "--github-app-id", APP_ID, "--github-installation-id", INSTALLATION_ID]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        first = self.process.stdout.readline().strip()
        assert first.startswith("listening on "), (first, self.process.stderr.read() if self.process.stderr else "")
        self.base = f"http://127.0.0.1:{int(first.split()[-1])}"
        self.http = httpx.Client(timeout=10)

    def url(self, path: str) -> str:
        return self.base + path

    def echo(self, token: str, scheme: str = "Bearer", method: str = "GET", body: Optional[bytes] = None) -> httpx.Response:
        return self.http.request(method, self.url("/api/echo"), headers={"Authorization": f"{scheme} {token}"},
                                 content=body)

    def form(self, path: str, fields: Dict[str, str], auth: Optional[Tuple[str, str]] = None) -> httpx.Response:
        if auth is None:
            return self.http.post(self.url(path), data=fields)
        return self.http.post(self.url(path), data=fields, auth=auth)

    def counts(self) -> Dict[str, Any]:
        answer: Dict[str, Any] = self.http.get(self.url("/__tokens/count")).json()
        return answer

    def close(self) -> str:
        self.http.close()
        self.process.kill()
        _, err = self.process.communicate(timeout=10)
        return err


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    started = Peer(tmp_path_factory.mktemp("token-peer"))
    yield started
    started.close()


@pytest.fixture()
def fresh(tmp_path: Path) -> Iterator[Peer]:
    """A peer of its own, for exact counts."""
    started = Peer(tmp_path)
    yield started
    started.close()


def accepted(response: httpx.Response, grant: str, client: str) -> Dict[str, Any]:
    assert response.status_code == 200, response.text
    answer: Dict[str, Any] = response.json()
    assert answer["ok"] is True and answer["grant"] == grant and answer["client"] == client, answer
    return answer


def refused(response: httpx.Response, reason_part: str) -> Dict[str, Any]:
    assert response.status_code == 401, response.text
    answer: Dict[str, Any] = response.json()
    assert answer["ok"] is False and answer["error"] == "invalid_token", answer
    assert reason_part in answer["error_description"], answer
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    return answer


def oauth_error(response: httpx.Response, status: int, error: str) -> Dict[str, Any]:
    assert response.status_code == status, response.text
    answer: Dict[str, Any] = response.json()
    assert answer["error"] == error, answer
    return answer


def session(client_id: str, method: str, **kwargs: Any) -> OAuth2Session:
    return OAuth2Session(client_id, client_id.replace("-client", "-secret"), token_endpoint_auth_method=method,
                         **kwargs)


# A signer written from the header's specification: base64url, RS256 over "header.claims".

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_rs256(header: Dict[str, Any], claims: Dict[str, Any], pem: str) -> str:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    return signing_input + "." + b64url(key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()))


def other_key_pem(fmt: serialization.PrivateFormat) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


# client_credentials ----------------------------------------------------------------------------

def test_client_credentials_basic_with_authlib(peer: Peer) -> None:
    with session("basic-client", "client_secret_basic", scope="read write") as oauth:
        token = oauth.fetch_token(peer.url("/oauth/token"), grant_type="client_credentials")
        assert token["token_type"] == "Bearer" and token["expires_in"] == 3600 and token["scope"] == "read write"
        assert "refresh_token" not in token
        answer = accepted(peer.echo(token["access_token"]), "client_credentials", "basic-client")
        assert answer["scope"] == "read write"
        # Authlib's session injects the token itself.
        seen = oauth.post(peer.url("/api/echo/v1/items?limit=2"), data=b"payload").json()
        assert (seen["grant"], seen["path"], seen["query"], seen["body"]) == \
            ("client_credentials", "/api/echo/v1/items", "limit=2", "payload")
    # That client is registered for client_secret_basic only.
    with session("basic-client", "client_secret_post") as oauth, pytest.raises(OAuthError) as error:
        oauth.fetch_token(peer.url("/oauth/token"), grant_type="client_credentials")
    assert error.value.error == "invalid_client"


def test_client_credentials_post_with_authlib(peer: Peer) -> None:
    with session("post-client", "client_secret_post", scope="write") as oauth:
        token = oauth.fetch_token(peer.url("/oauth/token"), grant_type="client_credentials")
    assert token["scope"] == "write"
    accepted(peer.echo(token["access_token"]), "client_credentials", "post-client")
    with session("post-client", "client_secret_basic") as oauth, pytest.raises(OAuthError) as error:
        oauth.fetch_token(peer.url("/oauth/token"), grant_type="client_credentials")
    assert error.value.error == "invalid_client"


def test_client_credentials_as_the_specification_says(peer: Peer) -> None:
    """Both client-auth forms by hand; the default scope; scope and secret refusals."""
    basic = peer.form("/oauth/token", {"grant_type": "client_credentials", "scope": "write read write"},
                      auth=("both-client", "both-secret"))
    assert basic.status_code == 200 and basic.json()["scope"] == "write read"
    assert basic.headers["content-type"].startswith("application/json")
    post = peer.form("/oauth/token", {"grant_type": "client_credentials", "client_id": "both-client",
                                      "client_secret": "both-secret"})
    assert post.status_code == 200 and post.json()["scope"] == "read"  # the default
    answer = accepted(peer.echo(post.json()["access_token"]), "client_credentials", "both-client")
    assert answer["scope"] == "read"

    oauth_error(peer.form("/oauth/token", {"grant_type": "client_credentials", "scope": "admin"},
                          auth=("both-client", "both-secret")), 400, "invalid_scope")
    oauth_error(peer.form("/oauth/token", {"grant_type": "client_credentials"}, auth=("both-client", "wrong")),
                401, "invalid_client")
    oauth_error(peer.form("/oauth/token", {"grant_type": "password"}, auth=("both-client", "both-secret")),
                400, "unsupported_grant_type")
    oauth_error(peer.form("/oauth/token", {"grant_type": "client_credentials"}, auth=("refresh-client", "refresh-secret")),
                400, "unauthorized_client")


# refresh_token ---------------------------------------------------------------------------------

def test_refresh_token_rotates_with_authlib(peer: Peer) -> None:
    url = peer.url("/oauth/token")
    with session("refresh-client", "client_secret_post") as oauth:
        first = oauth.refresh_token(url, refresh_token=R0)
    assert first["refresh_token"] != R0 and first["expires_in"] == 3600 and first["scope"] == "read write"
    answer = accepted(peer.echo(first["access_token"]), "refresh_token", "refresh-client")
    assert answer["scope"] == "read write"

    # The old refresh token was revoked by its use.
    with session("refresh-client", "client_secret_basic") as oauth, pytest.raises(OAuthError) as error:
        oauth.refresh_token(url, refresh_token=R0)
    assert error.value.error == "invalid_grant"

    # The new one works once, with the other client-auth form and a narrower scope, and rotates again.
    with session("refresh-client", "client_secret_basic") as oauth:
        second = oauth.refresh_token(url, refresh_token=first["refresh_token"], scope="read")
    assert second["refresh_token"] not in (R0, first["refresh_token"]) and second["scope"] == "read"
    accepted(peer.echo(second["access_token"]), "refresh_token", "refresh-client")
    oauth_error(peer.form("/oauth/token", {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                          auth=("refresh-client", "refresh-secret")), 400, "invalid_grant")
    # The rotated refresh token keeps the original scope, and belongs to its client only.
    third = peer.form("/oauth/token", {"grant_type": "refresh_token", "refresh_token": second["refresh_token"],
                                       "client_id": "refresh-client", "client_secret": "refresh-secret"})
    assert third.status_code == 200 and third.json()["scope"] == "read write", third.text
    oauth_error(peer.form("/oauth/token", {"grant_type": "refresh_token", "refresh_token": third.json()["refresh_token"]},
                          auth=("both-client", "both-secret")), 400, "unauthorized_client")
    # Access tokens from before a rotation stay valid until they expire.
    accepted(peer.echo(first["access_token"]), "refresh_token", "refresh-client")


def test_concurrent_uses_of_one_refresh_token_rotate_once(fresh: Peer) -> None:
    def use(_: int) -> int:
        return fresh.form("/oauth/token", {"grant_type": "refresh_token", "refresh_token": R0},
                          auth=("refresh-client", "refresh-secret")).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(use, range(8)))
    assert statuses == [200] + [400] * 7


# Microsoft Entra -------------------------------------------------------------------------------

def test_entra_client_credentials_with_authlib(peer: Peer) -> None:
    url = peer.url(f"/{TENANT}/oauth2/v2.0/token")
    with session("post-client", "client_secret_post", scope=GRAPH) as oauth:
        token = oauth.fetch_token(url, grant_type="client_credentials")
    assert token["scope"] == GRAPH and token["expires_in"] == 3600
    answer = accepted(peer.echo(token["access_token"]), "entra_client_credentials", "post-client")
    assert answer["scope"] == GRAPH

    oauth_error(peer.form(f"/{TENANT}/oauth2/v2.0/token", {
        "grant_type": "client_credentials", "client_id": "post-client", "client_secret": "post-secret"}),
        400, "invalid_request")  # no scope
    answer = oauth_error(peer.form("/another-tenant/oauth2/v2.0/token", {
        "grant_type": "client_credentials", "client_id": "post-client", "client_secret": "post-secret",
        "scope": GRAPH}), 400, "invalid_request")
    assert "AADSTS90002" in answer["error_description"]


# Google ----------------------------------------------------------------------------------------

def test_google_service_account_with_google_auth(peer: Peer) -> None:
    info = json.loads(peer.service_account.read_text())
    assert info["type"] == "service_account" and info["token_uri"] == peer.url("/google/token")
    assert info["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(peer.service_account.stat().st_mode) == 0o600

    credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
        str(peer.service_account), scopes=[CLOUD])
    credentials.refresh(google.auth.transport.requests.Request())
    assert credentials.token.startswith("ya29.") and credentials.valid
    assert credentials.expiry is not None
    answer = accepted(peer.echo(credentials.token), "google_jwt_bearer", info["client_email"])
    assert answer["scope"] == CLOUD and answer["subject"] is None

    # google-auth's own authorized session injects it.
    authed = google.auth.transport.requests.AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
    seen = authed.get(peer.url("/api/echo")).json()
    assert seen["grant"] == "google_jwt_bearer" and seen["token_serial"] == answer["token_serial"]

    # Domain-wide delegation: `sub` is carried over.
    delegated = credentials.with_subject("someone@example.com")
    delegated.refresh(google.auth.transport.requests.Request())
    assert accepted(peer.echo(delegated.token), "google_jwt_bearer", info["client_email"])["subject"] == \
        "someone@example.com"

    # No scope: the token endpoint refuses the assertion.
    unscoped = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
        str(peer.service_account))
    with pytest.raises(google.auth.exceptions.RefreshError, match="no scope"):
        unscoped.refresh(google.auth.transport.requests.Request())


def test_google_assertion_as_the_specification_says(peer: Peer) -> None:
    info = json.loads(peer.service_account.read_text())
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": info["private_key_id"]}
    claims = {"iss": info["client_email"], "scope": f"{CLOUD} openid", "aud": info["token_uri"],
              "iat": now, "exp": now + 3600}

    def grant(assertion: str) -> httpx.Response:
        return peer.form("/google/token", {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                           "assertion": assertion})

    ok = grant(sign_rs256(header, claims, info["private_key"]))
    assert ok.status_code == 200, ok.text
    assert set(ok.json()) == {"access_token", "expires_in", "token_type"} and ok.json()["expires_in"] == 3600
    assert accepted(peer.echo(ok.json()["access_token"]), "google_jwt_bearer", info["client_email"])["scope"] == \
        f"{CLOUD} openid"

    bad_cases = [
        ({**header, "kid": "0" * 40}, claims, info["private_key"], "kid"),
        ({"alg": "RS256", "typ": "JWT"}, claims, info["private_key"], "kid"),
        (header, {**claims, "aud": "https://example.com/token"}, info["private_key"], "audience"),
        (header, {**claims, "iss": "intruder@example.iam.gserviceaccount.com"}, info["private_key"], "iss"),
        (header, {k: v for k, v in claims.items() if k != "scope"}, info["private_key"], "no scope"),
        (header, {**claims, "exp": now + 3601}, info["private_key"], "exp - iat"),
        (header, {**claims, "iat": now - 7200, "exp": now - 3600}, info["private_key"], "expired"),
        (header, claims, other_key_pem(serialization.PrivateFormat.PKCS8), "signature"),
    ]
    for bad_header, bad_claims, pem, reason in bad_cases:
        answer = oauth_error(grant(sign_rs256(bad_header, bad_claims, pem)), 400, "invalid_grant")
        assert reason in answer["error_description"], (reason, answer)
    oauth_error(peer.form("/google/token", {"grant_type": "client_credentials", "assertion": "x"}),
                400, "unsupported_grant_type")


# GitHub App ------------------------------------------------------------------------------------

def github_token(peer: Peer, app_jwt: str, installation: str = INSTALLATION_ID, body: Any = None) -> httpx.Response:
    return peer.http.post(peer.url(f"/app/installations/{installation}/access_tokens"), json=body,
                          headers={"Authorization": f"Bearer {app_jwt}", "Accept": "application/vnd.github+json"})


def test_github_app_with_pyjwt(peer: Peer) -> None:
    pem = peer.github_key.read_text()
    assert pem.startswith("-----BEGIN RSA PRIVATE KEY-----")
    now = int(time.time())
    app_jwt = jwt.encode({"iat": now - 60, "exp": now + 540, "iss": APP_ID}, pem, algorithm="RS256")
    response = github_token(peer, app_jwt)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["token"].startswith("ghs_") and len(answer["token"]) == 40
    expires_at = datetime.strptime(answer["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs(expires_at.timestamp() - (now + 3600)) < 10
    seen = accepted(peer.echo(answer["token"], scheme="token"), "github_app", APP_ID)
    assert seen["scheme"] == "token" and seen["scope"] == "contents:read metadata:read"
    accepted(peer.echo(answer["token"]), "github_app", APP_ID)

    narrowed = github_token(peer, app_jwt, body={"permissions": {"issues": "write"}})
    assert narrowed.status_code == 201 and narrowed.json()["permissions"] == {"issues": "write"}
    assert accepted(peer.echo(narrowed.json()["token"]), "github_app", APP_ID)["scope"] == "issues:write"


def test_github_app_jwt_as_the_specification_says(peer: Peer) -> None:
    pem = peer.github_key.read_text()
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT"}
    # GitHub takes the app id as a number too (PyJWT only writes strings).
    assert github_token(peer, sign_rs256(header, {"iat": now, "exp": now + 600, "iss": int(APP_ID)}, pem)).status_code == 201

    bad_cases: List[Tuple[Dict[str, Any], str, str]] = [
        ({"iat": now, "exp": now + 601, "iss": APP_ID}, pem, "too far in the future"),
        ({"iat": now + 120, "exp": now + 300, "iss": APP_ID}, pem, "'iat'"),
        ({"iat": now - 700, "exp": now - 100, "iss": APP_ID}, pem, "expired"),
        ({"iat": now, "exp": now + 300, "iss": "999"}, pem, "'iss'"),
        ({"iat": now, "exp": now + 300}, pem, "iss"),
        ({"iat": now, "exp": now + 300, "iss": APP_ID}, other_key_pem(serialization.PrivateFormat.TraditionalOpenSSL),
         "Signature"),
    ]
    for claims, key, reason in bad_cases:
        response = github_token(peer, sign_rs256(header, claims, key))
        assert response.status_code == 401, (reason, response.text)
        assert reason in response.json()["message"], (reason, response.json())
    missing = peer.http.post(peer.url(f"/app/installations/{INSTALLATION_ID}/access_tokens"))
    assert missing.status_code == 401
    good = sign_rs256(header, {"iat": now, "exp": now + 300, "iss": APP_ID}, pem)
    assert github_token(peer, good, installation="778").status_code == 404


# the protected API -----------------------------------------------------------------------------

def test_api_refuses_what_this_server_did_not_issue(peer: Peer) -> None:
    refused(peer.echo("not-a-token"), "unknown access token")
    refused(peer.echo("ghs_" + "a" * 36, scheme="token"), "unknown access token")
    token = peer.form("/oauth/token", {"grant_type": "client_credentials"}, auth=("basic-client", "basic-secret"))
    refused(peer.echo(token.json()["access_token"], scheme="Basic"), "no `Authorization")
    refused(peer.http.get(peer.url("/api/echo")), "no `Authorization")
    assert peer.http.get(peer.url("/elsewhere")).status_code == 404


def test_expired_tokens_are_refused(tmp_path: Path) -> None:
    short = Peer(tmp_path, expires_in=1)
    try:
        with session("basic-client", "client_secret_basic") as oauth:
            token = oauth.fetch_token(short.url("/oauth/token"), grant_type="client_credentials")
        assert token["expires_in"] == 1
        pem = short.github_key.read_text()
        now = int(time.time())
        github = github_token(short, jwt.encode({"iat": now, "exp": now + 60, "iss": APP_ID}, pem, algorithm="RS256"))
        accepted(short.echo(token["access_token"]), "client_credentials", "basic-client")
        accepted(short.echo(github.json()["token"], scheme="token"), "github_app", APP_ID)
        time.sleep(2.1)
        refused(short.echo(token["access_token"]), "expired")
        refused(short.echo(github.json()["token"], scheme="token"), "expired")
    finally:
        short.close()


def test_revoke_switch(fresh: Peer) -> None:
    token = fresh.form("/oauth/token", {"grant_type": "client_credentials"}, auth=("basic-client", "basic-secret"))
    accepted(fresh.echo(token.json()["access_token"]), "client_credentials", "basic-client")
    assert fresh.http.post(fresh.url("/__tokens/revoke")).json() == {"revoked": 1}
    refused(fresh.echo(token.json()["access_token"]), "revoked")


# counters and the failure switch ---------------------------------------------------------------

def test_counts(fresh: Peer) -> None:
    zero = fresh.counts()
    assert zero == {"token_requests": 0, "by_grant": {name: 0 for name in (
        "client_credentials", "refresh_token", "entra_client_credentials", "google_jwt_bearer", "github_app")},
        "issued": zero["by_grant"], "failed": 0, "api_calls": 0, "api_refused": 0}
    token = fresh.form("/oauth/token", {"grant_type": "client_credentials"}, auth=("basic-client", "basic-secret"))
    fresh.form("/oauth/token", {"grant_type": "client_credentials"}, auth=("basic-client", "wrong"))
    fresh.form("/oauth/token", {"grant_type": "refresh_token", "refresh_token": R0}, auth=("refresh-client", "refresh-secret"))
    credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
        str(fresh.service_account), scopes=[CLOUD])
    credentials.refresh(google.auth.transport.requests.Request())

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: fresh.echo(token.json()["access_token"]).status_code, range(20)))
    assert answers == [200] * 20
    fresh.echo("bogus")
    counts = fresh.counts()
    assert counts["token_requests"] == 4 and counts["failed"] == 0
    assert counts["by_grant"]["client_credentials"] == 2 and counts["issued"]["client_credentials"] == 1
    assert counts["by_grant"]["refresh_token"] == counts["issued"]["refresh_token"] == 1
    assert counts["by_grant"]["google_jwt_bearer"] == counts["issued"]["google_jwt_bearer"] == 1
    assert counts["api_calls"] == 21 and counts["api_refused"] == 1
    assert fresh.counts() == counts  # asking does not count


def test_failure_switch(fresh: Peer) -> None:
    armed = fresh.http.post(fresh.url("/__tokens/fail"), json={"status": 503, "times": 2, "retry_after": 1})
    assert armed.status_code == 200
    fields = {"grant_type": "client_credentials"}
    for path in ("/oauth/token", f"/{TENANT}/oauth2/v2.0/token"):
        failed = fresh.form(path, {**fields, "scope": GRAPH}, auth=("both-client", "both-secret"))
        assert failed.status_code == 503 and MARKER in failed.text and failed.headers["retry-after"] == "1"
        assert failed.json()["error"] == "temporarily_unavailable"
    assert fresh.counts()["failed"] == 2  # the count answers while the switch is armed
    assert fresh.form("/oauth/token", fields, auth=("both-client", "both-secret")).status_code == 200

    fresh.http.post(fresh.url("/__tokens/fail"), json={"status": 500, "times": 1})
    now = int(time.time())
    app_jwt = jwt.encode({"iat": now, "exp": now + 300, "iss": APP_ID}, fresh.github_key.read_text(), algorithm="RS256")
    failed = github_token(fresh, app_jwt)
    assert failed.status_code == 500 and MARKER in failed.text and "retry-after" not in failed.headers
    assert github_token(fresh, app_jwt).status_code == 201

    counts = fresh.counts()
    assert counts["token_requests"] == 5 and counts["failed"] == 3
    assert counts["issued"]["client_credentials"] == 1 and counts["issued"]["github_app"] == 1
    assert fresh.http.post(fresh.url("/__tokens/fail"), json={"status": 200, "times": 1}).status_code == 400


def test_delay_lets_token_requests_overlap(fresh: Peer) -> None:
    assert fresh.http.post(fresh.url("/__tokens/delay"), json={"ms": 600}).status_code == 200

    def mint(_: int) -> int:
        return fresh.form("/oauth/token", {"grant_type": "client_credentials"},
                          auth=("basic-client", "basic-secret")).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        statuses: List[int] = list(pool.map(mint, range(4)))
    elapsed = time.monotonic() - started
    assert statuses == [200] * 4
    assert 0.6 <= elapsed < 2.4, elapsed  # one after another would take 2.4 s at least
    assert fresh.counts()["token_requests"] == 4
