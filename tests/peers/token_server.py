#!/usr/bin/env python3
"""An authorization server and a protected API for the end-to-end tests of credgate's minting
templates (templates that obtain short-lived tokens and inject them), built on the libraries
that implement or check each grant for real (pinned in sdk/python/requirements-test.txt):
Authlib's OAuth 2.0 authorization server (client_credentials, refresh_token, the Microsoft Entra
shape), google-auth's JWT verifier (Google's service-account JWT-bearer grant) and PyJWT (the
GitHub App installation token).

    python token_server.py --port 0 [--expires-in N] [--refresh-token R0] [--tenant T] \
        [--write-service-account PATH] [--write-github-key PATH] \
        [--github-app-id ID] [--github-installation-id ID]

It binds 127.0.0.1, writes the files asked for, prints `listening on <port>` as its first line
on stdout, and serves (threaded) until it is killed. Below, BASE is http://127.0.0.1:<port>.
Every answer is JSON. The clients and secrets are test credentials. Werkzeug's server answers
HTTP/1.1 and closes the connection after each answer (`Connection: close`); chunked request
bodies are read.

WHAT A CLIENT MUST SEND, GRANT BY GRANT
=======================================
Every token request is `POST`, `Content-Type: application/x-www-form-urlencoded`, UTF-8, the
fields form-encoded in the body (any order), except the GitHub one. `expires_in` is in seconds,
the value of --expires-in (default 3600), for every grant.

client_credentials (RFC 6749 §4.4; Authlib's ClientCredentialsGrant)
--------------------------------------------------------------------
  Endpoint   POST BASE/oauth/token
  Form       grant_type=client_credentials
             scope=<space-separated scopes>      optional; omitted: the client's default `read`
  Client     client_secret_basic: header `Authorization: Basic base64(id ":" secret)`
             (id and secret form-urlencoded first, RFC 6749 §2.3.1; the test ones need none)
             client_secret_post:  form fields client_id=<id>&client_secret=<secret>
             Registered clients:
               basic-client / basic-secret   client_secret_basic only
               post-client  / post-secret    client_secret_post only
               both-client  / both-secret    either
             A wrong secret, an unknown client or a method the client is not registered for:
             401 {"error": "invalid_client"}.
  Scope      each requested scope must be one of `read`, `write`,
             `https://graph.microsoft.com/.default`; any other: 400 invalid_scope.
             The token carries the scope as requested (duplicates dropped).
  Answer     200 {"token_type": "Bearer", "access_token": "<opaque>", "expires_in": N,
                  "scope": "<granted scope>"}
  Errors     RFC 6749 §5.2: {"error": "invalid_client" | "invalid_scope" | "invalid_request" |
             "unauthorized_client" | "unsupported_grant_type", "error_description": "..."},
             400, but invalid_client is 401 with `WWW-Authenticate: Basic error="invalid_client"`.

refresh_token (RFC 6749 §6; Authlib's RefreshTokenGrant), with rotation
----------------------------------------------------------------------
  Endpoint   POST BASE/oauth/token
  Form       grant_type=refresh_token
             refresh_token=<the current refresh token>
             scope=<scopes>                      optional; at most the refresh token's own
  Client     refresh-client / refresh-secret, client_secret_basic or client_secret_post (as above)
  Token      The first refresh token is --refresh-token (scope `read write`; without the option
             there is none). Every successful use ROTATES it: the answer carries a new refresh
             token and the one sent is revoked, so sending it again gives
             400 {"error": "invalid_grant"}. The new refresh token keeps the old one's scope.
             Requests are serialised, so two concurrent uses of one refresh token give one
             success and one invalid_grant.
  Answer     200 {"token_type": "Bearer", "access_token": "<opaque>", "expires_in": N,
                  "refresh_token": "<the new refresh token>", "scope": "<granted scope>"}

Microsoft Entra (v2.0 endpoint, client_credentials; Authlib's ClientCredentialsGrant)
-------------------------------------------------------------------------------------
  Endpoint   POST BASE/{tenant}/oauth2/v2.0/token    with {tenant} = --tenant (default
             `test-tenant`), the path a template builds as
             https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token from a base URL.
             Another tenant: 400 {"error": "invalid_request"} (AADSTS90002).
  Form       grant_type=client_credentials
             scope=https://graph.microsoft.com/.default      REQUIRED here (missing: 400
                                                             invalid_request, AADSTS90014)
             client_id=<id>&client_secret=<secret> (client_secret_post, as Entra documents) or
             the Basic header; the same registered clients as client_credentials above.
  Answer     200 {"token_type": "Bearer", "access_token": "<opaque>", "expires_in": N,
                  "scope": "https://graph.microsoft.com/.default"}

Google service account (RFC 7523 JWT bearer; verified by google-auth's google.auth.jwt.decode)
--------------------------------------------------------------------------------------------
  Key        --write-service-account PATH writes the service-account JSON a template stores:
               {"type": "service_account", "project_id": "credgate-test",
                "private_key_id": "<40 hex>", "private_key": "-----BEGIN PRIVATE KEY-----…"
                (RSA 2048, PKCS#8 PEM), "client_email":
                "token-server@credgate-test.iam.gserviceaccount.com", "client_id": "<digits>",
                "token_uri": "BASE/google/token", "universe_domain": "googleapis.com"}
  Endpoint   POST <token_uri> = BASE/google/token
  Form       grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer
             assertion=<JWT>
  Assertion  a JWS compact serialisation, signed RS256 (RSASSA-PKCS1-v1_5 with SHA-256) with
             the JSON's private_key over base64url(header) "." base64url(claims), no padding:
               header  {"alg": "RS256", "typ": "JWT", "kid": <private_key_id>}   (kid REQUIRED)
               claims  iss    = client_email
                       scope  = space-separated scopes, non-empty
                                (e.g. "https://www.googleapis.com/auth/cloud-platform")
                       aud    = token_uri from the JSON, exactly: BASE/google/token here,
                                https://oauth2.googleapis.com/token for a real account.
                                Also accepted: that Google constant itself (google-auth always
                                writes it, whatever token_uri says, and Google takes it), and
                                http://<the request's Host header>/google/token.
                       iat    = now, integer seconds since the epoch
                       exp    = iat + at most 3600, integer seconds
                       sub    optional (domain-wide delegation: shown as the token's subject)
             google-auth checks the signature with the public key for `kid`, `aud`, and iat/exp
             against the clock with 60 s skew; this server then checks iss, scope and
             0 < exp - iat <= 3600.
  Answer     200 {"access_token": "ya29.<opaque>", "expires_in": N, "token_type": "Bearer"}
  Errors     400 {"error": "invalid_grant" | "invalid_request" | "unsupported_grant_type",
                  "error_description": "..."}

GitHub App installation token (verified by PyJWT's jwt.decode)
--------------------------------------------------------------
  Key        --write-github-key PATH writes the app's private key, RSA 2048, PKCS#1 PEM
             ("-----BEGIN RSA PRIVATE KEY-----", as GitHub issues them).
  Endpoint   POST BASE/app/installations/{installation_id}/access_tokens
             with {installation_id} = --github-installation-id (default 4242)
  Headers    Authorization: Bearer <app JWT>
             (GitHub also wants Accept: application/vnd.github+json; not checked here)
  Body       none, or GitHub's optional JSON {"permissions": {"<name>": "read"|"write"}, ...}
  App JWT    RS256 with the app's private key; header {"alg": "RS256", "typ": "JWT"}
               claims  iss = the app id, --github-app-id (default 424242), as a JSON string
                             or number
                       iat = integer seconds, at most now + 60 (GitHub advises now - 60)
                       exp = integer seconds, in the future, exp - iat <= 600
  Answer     201 {"token": "ghs_<36 alphanumerics>", "expires_at": "YYYY-MM-DDTHH:MM:SSZ" (UTC,
                  now + N), "permissions": {...}, "repository_selection": "all"}
  Errors     401 {"message": "...", "documentation_url": "..."} for a missing or bad JWT;
             404 {"message": "Not Found", ...} for another installation id.

THE PROTECTED API
=================
  ANY BASE/api/echo (and BASE/api/echo/<anything>) with
        Authorization: Bearer <access token>     or     Authorization: token <access token>
  accepts an unexpired, unrevoked access token issued by THIS server through any grant above:
      200 {"ok": true, "grant": "client_credentials" | "refresh_token" |
           "entra_client_credentials" | "google_jwt_bearer" | "github_app",
           "client": <client id | service-account email | app id>, "scope": <scope or null>,
           "subject": <Google `sub` or null>, "token_serial": <n-th token issued, from 1>,
           "scheme": "Bearer" | "token", "method", "path", "query", "body"}
  and answers anything else with
      401 {"ok": false, "error": "invalid_token", "error_description": "..."}
      and WWW-Authenticate: Bearer error="invalid_token".
  For a GitHub token, "scope" lists its permissions as "<name>:<level>", sorted.

CONTROL (none of it counted)
============================
  GET  BASE/__tokens/count  -> {"token_requests": n, "by_grant": {<grant>: n, ...},
                                "issued": {<grant>: n, ...}, "failed": n,
                                "api_calls": m, "api_refused": m}
        token_requests counts every request to a token endpoint, whatever its outcome;
        by_grant splits them by grant (the five names above; a /oauth/token request with any
        other grant_type counts under "other"); issued counts the tokens handed out; failed the
        answers given by the failure switch; api_calls every request to /api/echo, api_refused
        those answered 401.
  POST BASE/__tokens/fail   {"status": 503, "times": 3[, "retry_after": 2]}
        the next `times` token requests (any endpoint) answer `status` (400-599) with
        {"error": "temporarily_unavailable", "error_description": "... token-endpoint-body-marker
        ..."} (and Retry-After when given); a gateway must never pass that body on.
  POST BASE/__tokens/delay  {"ms": 300}   every later token request waits that long before it is
        answered (0: no wait), so that concurrent requests overlap.
  POST BASE/__tokens/revoke               revokes every access token issued so far
        -> {"revoked": n}.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import string
import sys
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union, cast

import google.auth.exceptions
import google.auth.jwt
import jwt
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Request, TokenMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, InvalidScopeError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler, make_server

GRANTS = ("client_credentials", "refresh_token", "entra_client_credentials", "google_jwt_bearer", "github_app")
MARKER = "token-endpoint-body-marker"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_ENDPOINT = "https://oauth2.googleapis.com/token"
SCOPES = ("read", "write", "https://graph.microsoft.com/.default")
DEFAULT_SCOPE = "read"
REFRESH_SCOPE = "read write"
SERVICE_ACCOUNT_EMAIL = "token-server@credgate-test.iam.gserviceaccount.com"
GITHUB_DOCS = "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"
BOTH = ("client_secret_basic", "client_secret_post")


# Authlib's models ------------------------------------------------------------------------------

@dataclass
class Client(ClientMixin):
    client_id: str
    secret: str
    auth_methods: Tuple[str, ...]
    grant_types: Tuple[str, ...]
    scopes: Tuple[str, ...] = SCOPES

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return ""

    def get_allowed_scope(self, scope: Union[Collection[str], str, None]) -> str:
        if not scope:
            return DEFAULT_SCOPE
        wanted = scope.split() if isinstance(scope, str) else list(scope)
        refused = [s for s in wanted if s not in self.scopes]
        if refused:
            raise InvalidScopeError(description=f"scope {' '.join(refused)!r} is not granted to {self.client_id}")
        return " ".join(dict.fromkeys(wanted))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret.encode(), self.secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in self.auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


CLIENTS: Dict[str, Client] = {c.client_id: c for c in (
    Client("basic-client", "basic-secret", ("client_secret_basic",), ("client_credentials",)),
    Client("post-client", "post-secret", ("client_secret_post",), ("client_credentials",)),
    Client("both-client", "both-secret", BOTH, ("client_credentials",)),
    Client("refresh-client", "refresh-secret", BOTH, ("refresh_token",), ("read", "write")),
)}


@dataclass
class User:
    user_id: str


@dataclass
class RefreshRecord(TokenMixin):
    token: str
    client_id: str
    scope: str
    revoked: bool = False

    def check_client(self, client: Any) -> bool:
        return isinstance(client, Client) and client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return 0  # refresh tokens here do not expire; they are revoked on use

    def is_expired(self) -> bool:
        return False

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> User:
        return User("refresh-user")

    def get_client(self) -> Client:
        return CLIENTS[self.client_id]


@dataclass
class Issued:
    grant: str
    client: str
    scope: Optional[str]
    expires_at: float
    serial: int
    subject: Optional[str] = None
    revoked: bool = False


# State -----------------------------------------------------------------------------------------

class State:
    def __init__(self, expires_in: int, refresh_token: Optional[str]) -> None:
        self.expires_in = expires_in
        # One lock for all of it; held across a whole Authlib token request, so that a refresh
        # token's check, rotation and revocation are one step.
        self.lock = threading.RLock()
        self.access: Dict[str, Issued] = {}
        self.refresh: Dict[str, RefreshRecord] = {}
        if refresh_token:
            self.refresh[refresh_token] = RefreshRecord(refresh_token, "refresh-client", REFRESH_SCOPE)
        self.serial = 0
        self.token_requests = 0
        self.by_grant: Dict[str, int] = {name: 0 for name in GRANTS}
        self.issued: Dict[str, int] = {name: 0 for name in GRANTS}
        self.failed = 0
        self.api_calls = 0
        self.api_refused = 0
        self.fail_status = 503
        self.fail_times = 0
        self.fail_retry_after: Optional[int] = None
        self.delay_ms = 0

    def issue(self, grant: str, client: str, scope: Optional[str], token: str, expires_in: int,
              subject: Optional[str] = None) -> Issued:
        with self.lock:
            self.serial += 1
            record = Issued(grant, client, scope, time.time() + expires_in, self.serial, subject)
            self.access[token] = record
            self.issued[grant] += 1
            return record

    def counts(self) -> Dict[str, Any]:
        with self.lock:
            return {"token_requests": self.token_requests, "by_grant": dict(self.by_grant),
                    "issued": dict(self.issued), "failed": self.failed,
                    "api_calls": self.api_calls, "api_refused": self.api_refused}


@dataclass
class Keys:
    google: rsa.RSAPrivateKey
    google_key_id: str
    github: rsa.RSAPrivateKey

    @staticmethod
    def generate() -> Keys:
        return Keys(rsa.generate_private_key(public_exponent=65537, key_size=2048), secrets.token_hex(20),
                    rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @staticmethod
    def public_pem(key: rsa.RSAPrivateKey) -> str:
        return key.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def service_account(self, token_uri: str) -> Dict[str, str]:
        pem = self.google.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": "credgate-test", "private_key_id": self.google_key_id,
                "private_key": pem, "client_email": SERVICE_ACCOUNT_EMAIL, "client_id": "100000000000000000001",
                "token_uri": token_uri, "universe_domain": "googleapis.com"}

    def github_pem(self) -> str:
        return self.github.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                         serialization.NoEncryption()).decode()


@dataclass
class Config:
    tenant: str
    github_app_id: str
    github_installation_id: str
    base: str = ""  # http://127.0.0.1:<port>, set once bound

    @property
    def google_token_uri(self) -> str:
        return self.base + "/google/token"


# Authlib's grants ------------------------------------------------------------------------------

class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = BOTH


class EntraClientCredentialsGrant(ClientCredentialsGrant):
    def validate_token_request(self) -> None:
        if not self.request.form.get("scope"):
            raise InvalidRequestError("AADSTS90014: The required field 'scope' is missing from the credential.")
        super().validate_token_request()


def refresh_grant(state: State) -> type[grants.RefreshTokenGrant]:
    class RefreshTokenGrant(grants.RefreshTokenGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = BOTH
        INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: every use hands out a new refresh token

        def authenticate_refresh_token(self, refresh_token: str) -> RefreshRecord:
            record = state.refresh.get(refresh_token)
            if record is None or record.is_revoked():
                raise InvalidGrantError("the refresh token is unknown, or was used already (rotated)")
            return record

        def authenticate_user(self, refresh_token: RefreshRecord) -> User:
            return refresh_token.get_user()

        def revoke_old_credential(self, refresh_token: TokenMixin) -> None:
            assert isinstance(refresh_token, RefreshRecord)
            refresh_token.revoked = True

    return RefreshTokenGrant


def save_token(state: State) -> Any:
    def save(token: Dict[str, Any], req: OAuth2Request) -> None:
        client = getattr(req, "client", None)
        assert isinstance(client, Client)
        old: Optional[RefreshRecord] = getattr(req, "refresh_token", None)
        with state.lock:
            state.issue(g.grant, client.client_id, token.get("scope"), token["access_token"], int(token["expires_in"]))
            if "refresh_token" in token:
                scope = old.scope if old is not None else str(token.get("scope") or "")
                state.refresh[token["refresh_token"]] = RefreshRecord(token["refresh_token"], client.client_id, scope)
    return save


# The application -------------------------------------------------------------------------------

def json_response(status: int, document: Dict[str, Any], headers: Optional[Dict[str, str]] = None) -> Response:
    response = Response(json.dumps(document), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response


def oauth_error(status: int, error: str, description: str) -> Response:
    return json_response(status, {"error": error, "error_description": description})


def refused(why: str) -> None:
    print(f"token_server: {request.method} {request.path}: {why}", file=sys.stderr, flush=True)


def create_app(state: State, keys: Keys, config: Config) -> Flask:
    app = Flask("token_server")
    app.config.update(
        OAUTH2_REFRESH_TOKEN_GENERATOR=True,
        OAUTH2_TOKEN_EXPIRES_IN={"client_credentials": state.expires_in, "refresh_token": state.expires_in},
        OAUTH2_SCOPES_SUPPORTED=list(SCOPES),
    )

    def query_client(client_id: str) -> Optional[Client]:
        return CLIENTS.get(client_id)

    oauth = AuthorizationServer(app, query_client=query_client, save_token=save_token(state))
    oauth.register_grant(ClientCredentialsGrant)
    oauth.register_grant(refresh_grant(state))
    entra = AuthorizationServer(app, query_client=query_client, save_token=save_token(state))
    entra.register_grant(EntraClientCredentialsGrant)
    google_public = {keys.google_key_id: Keys.public_pem(keys.google)}
    github_public = Keys.public_pem(keys.github)

    def begin(grant: str) -> Optional[Response]:
        """Counts a token request; the failure switch's answer when it is armed."""
        with state.lock:
            state.token_requests += 1
            state.by_grant[grant] = state.by_grant.get(grant, 0) + 1
            fail = state.fail_times > 0
            if fail:
                state.fail_times -= 1
                state.failed += 1
            status, retry_after, delay_ms = state.fail_status, state.fail_retry_after, state.delay_ms
        if delay_ms:
            time.sleep(delay_ms / 1000)
        if not fail:
            return None
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return json_response(status, {
            "error": "temporarily_unavailable",
            "error_description": f"injected failure ({MARKER}): the token endpoint is unavailable"}, headers)

    def authlib_token(server: AuthorizationServer, grant: str) -> Response:
        g.grant = grant
        with state.lock:
            response = cast(Response, server.create_token_response())  # Flask's server answers a Response
        if response.status_code >= 400:
            refused(response.get_data(as_text=True))
        return response

    @app.post("/oauth/token")
    def oauth_token() -> Response:
        grant_type = request.form.get("grant_type", "")
        grant = grant_type if grant_type in ("client_credentials", "refresh_token") else "other"
        return begin(grant) or authlib_token(oauth, grant)

    @app.post("/<tenant>/oauth2/v2.0/token")
    def entra_token(tenant: str) -> Response:
        grant = "entra_client_credentials"
        failure = begin(grant)
        if failure is not None:
            return failure
        if tenant != config.tenant:
            refused(f"tenant {tenant!r}")
            return oauth_error(400, "invalid_request", f"AADSTS90002: Tenant '{tenant}' not found.")
        return authlib_token(entra, grant)

    @app.post("/google/token")
    def google_token() -> Response:
        grant = "google_jwt_bearer"
        failure = begin(grant)
        if failure is not None:
            return failure
        if request.form.get("grant_type") != JWT_BEARER:
            refused("grant_type")
            return oauth_error(400, "unsupported_grant_type", f"grant_type must be {JWT_BEARER}")
        assertion = request.form.get("assertion")
        if not assertion:
            refused("no assertion")
            return oauth_error(400, "invalid_request", "missing assertion")

        def invalid(why: str) -> Response:
            refused(why)
            return oauth_error(400, "invalid_grant", why)

        try:
            header = google.auth.jwt.decode_header(assertion)  # type: ignore[no-untyped-call]
        except (ValueError, google.auth.exceptions.GoogleAuthError) as error:
            return invalid(f"malformed assertion: {error}")
        if header.get("alg") != "RS256":
            return invalid(f"alg {header.get('alg')!r}: RS256 required")
        if header.get("kid") != keys.google_key_id:
            return invalid(f"kid {header.get('kid')!r} is not the service account's private_key_id")
        audiences = [config.google_token_uri, GOOGLE_TOKEN_ENDPOINT]
        if f"http://{request.host}/google/token" not in audiences:
            audiences.append(f"http://{request.host}/google/token")
        try:
            claims: Dict[str, Any] = google.auth.jwt.decode(  # type: ignore[no-untyped-call]
                assertion, certs=google_public, audience=audiences, clock_skew_in_seconds=60)
        except (ValueError, google.auth.exceptions.GoogleAuthError) as error:
            return invalid(f"assertion refused: {error}")
        if claims.get("iss") != SERVICE_ACCOUNT_EMAIL:
            return invalid(f"iss {claims.get('iss')!r} is not the service account's client_email")
        scope = claims.get("scope")
        if not isinstance(scope, str) or not scope.strip():
            return invalid("the assertion has no scope")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (iat, exp)):
            return invalid("iat and exp must be integers")
        assert isinstance(iat, int) and isinstance(exp, int)
        if not 0 < exp - iat <= 3600:
            return invalid(f"exp - iat is {exp - iat} s: it must be in (0, 3600]")
        token = "ya29." + secrets.token_urlsafe(48)
        subject = claims.get("sub")
        state.issue(grant, SERVICE_ACCOUNT_EMAIL, " ".join(scope.split()), token, state.expires_in,
                    subject if isinstance(subject, str) else None)
        return json_response(200, {"access_token": token, "expires_in": state.expires_in, "token_type": "Bearer"})

    @app.post("/app/installations/<installation_id>/access_tokens")
    def github_token(installation_id: str) -> Response:
        grant = "github_app"
        failure = begin(grant)
        if failure is not None:
            return failure

        def unauthorized(message: str) -> Response:
            refused(message)
            return json_response(401, {"message": message, "documentation_url": GITHUB_DOCS})

        scheme, _, app_jwt = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not app_jwt.strip():
            return unauthorized("A JSON web token could not be decoded: no `Authorization: Bearer <JWT>`")
        try:
            claims: Dict[str, Any] = jwt.decode(app_jwt.strip(), github_public, algorithms=["RS256"],
                                                options={"require": ["iat", "exp", "iss"], "verify_iat": False})
        except jwt.PyJWTError as error:
            return unauthorized(f"A JSON web token could not be decoded: {error}")
        iss, iat, exp = claims["iss"], claims["iat"], claims["exp"]
        if isinstance(iss, bool) or not isinstance(iss, (str, int)) or str(iss) != config.github_app_id:
            return unauthorized(f"'Issuer' claim ('iss') {iss!r} is not the app id")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (iat, exp)):
            return unauthorized("'Issued at' ('iat') and 'Expiration time' ('exp') claims must be integers")
        if iat > time.time() + 60:
            return unauthorized("'Issued at' claim ('iat') must be an Integer representing a time in the past")
        if exp - iat > 600:
            return unauthorized("'Expiration time' claim ('exp') is too far in the future: exp - iat > 600")
        if installation_id != config.github_installation_id:
            refused(f"installation {installation_id!r}")
            return json_response(404, {"message": "Not Found", "documentation_url": GITHUB_DOCS})
        body = request.get_json(silent=True)
        permissions = {"contents": "read", "metadata": "read"}
        if isinstance(body, dict) and isinstance(body.get("permissions"), dict):
            permissions = {str(k): str(v) for k, v in body["permissions"].items()}
        token = "ghs_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(36))
        expires_at = int(time.time()) + state.expires_in
        scope = " ".join(f"{name}:{level}" for name, level in sorted(permissions.items()))
        record = state.issue(grant, config.github_app_id, scope, token, state.expires_in)
        record.expires_at = expires_at
        return json_response(201, {
            "token": token,
            "expires_at": datetime.fromtimestamp(expires_at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "permissions": permissions, "repository_selection": "all"})

    @app.route("/api/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    @app.route("/api/echo/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def echo(rest: str = "") -> Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        with state.lock:
            state.api_calls += 1
            record = state.access.get(token) if scheme.lower() in ("bearer", "token") else None
            why = ("no `Authorization: Bearer <token>` (or `token <token>`)" if scheme.lower() not in ("bearer", "token")
                   else "unknown access token" if record is None
                   else "access token revoked" if record.revoked
                   else "access token expired" if record.expires_at <= time.time()
                   else "")
            if why:
                state.api_refused += 1
        if why or record is None:
            refused(why)
            return json_response(401, {"ok": False, "error": "invalid_token", "error_description": why},
                                 {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{why}"'})
        return json_response(200, {
            "ok": True, "grant": record.grant, "client": record.client, "scope": record.scope,
            "subject": record.subject, "token_serial": record.serial,
            "scheme": "token" if scheme.lower() == "token" else "Bearer",
            "method": request.method, "path": request.path, "query": request.query_string.decode("latin-1"),
            "body": request.get_data().decode("utf-8", "replace")})

    @app.get("/__tokens/count")
    def count() -> Response:
        return json_response(200, state.counts())

    @app.post("/__tokens/fail")
    def fail() -> Response:
        spec = request.get_json(silent=True) or {}
        status, times, retry_after = spec.get("status", 503), spec.get("times", 1), spec.get("retry_after")
        if not (isinstance(status, int) and 400 <= status <= 599 and isinstance(times, int) and times >= 0
                and (retry_after is None or isinstance(retry_after, int))):
            return json_response(400, {"error": "want {\"status\": 400-599, \"times\": n >= 0[, \"retry_after\": s]}"})
        with state.lock:
            state.fail_status, state.fail_times, state.fail_retry_after = status, times, retry_after
        return json_response(200, {"status": status, "times": times, "retry_after": retry_after})

    @app.post("/__tokens/delay")
    def delay() -> Response:
        ms = (request.get_json(silent=True) or {}).get("ms")
        if not isinstance(ms, int) or ms < 0:
            return json_response(400, {"error": "want {\"ms\": n >= 0}"})
        with state.lock:
            state.delay_ms = ms
        return json_response(200, {"ms": ms})

    @app.post("/__tokens/revoke")
    def revoke() -> Response:
        with state.lock:
            live = [record for record in state.access.values() if not record.revoked]
            for record in live:
                record.revoked = True
        return json_response(200, {"revoked": len(live)})

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        return json_response(error.code or 500, {"error": error.name, "error_description": error.description or ""})

    return app


class QuietHandler(WSGIRequestHandler):
    def log_request(self, code: Union[int, str] = "-", size: Union[int, str] = "-") -> None:
        pass


def write_private(path: str, text: str) -> None:
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(text)
    os.chmod(partial, 0o600)
    partial.replace(target)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--expires-in", type=int, default=3600, help="lifetime of every access token, seconds")
    parser.add_argument("--refresh-token", help="refresh-client's first refresh token")
    parser.add_argument("--tenant", default="test-tenant", help="the Entra tenant in /{tenant}/oauth2/v2.0/token")
    parser.add_argument("--write-service-account", metavar="PATH", help="write the Google service-account JSON")
    parser.add_argument("--write-github-key", metavar="PATH", help="write the GitHub App's private key (PKCS#1 PEM)")
    parser.add_argument("--github-app-id", default="424242")
    parser.add_argument("--github-installation-id", default="4242")
    args = parser.parse_args(argv)
    if args.expires_in < 1:
        parser.error("--expires-in must be at least 1")
    # Plain HTTP on loopback is what this peer serves; Authlib also allows it for any Host header
    # a gateway may send on.
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"

    state = State(args.expires_in, args.refresh_token)
    keys = Keys.generate()
    config = Config(args.tenant, args.github_app_id, args.github_installation_id)
    server = make_server("127.0.0.1", args.port, create_app(state, keys, config), threaded=True,
                         request_handler=QuietHandler)
    port = server.server_address[1]
    config.base = f"http://127.0.0.1:{port}"
    if args.write_service_account:
        write_private(args.write_service_account, json.dumps(keys.service_account(config.google_token_uri), indent=2))
    if args.write_github_key:
        write_private(args.write_github_key, keys.github_pem())
    print(f"listening on {port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
