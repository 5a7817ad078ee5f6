"""The app's view of credgate: ``App`` (async) and ``SyncApp`` (for scripts)."""

from __future__ import annotations

import contextlib
import json as jsonlib
import os
import time
from dataclasses import dataclass, field
import inspect
import math
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Union
from urllib.parse import quote

import httpx

from ._approvals import ApprovalInfo, PendingApproval, info_from, pending_from, raise_if_unmade
from ._request import Body, HttpMethod, Params, build
from .errors import ApprovalTimeout, error_from_response

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._request import RequestOptions

__all__ = ["App", "SyncApp", "ProxyResult", "DEFAULT_BASE_URL"]

DEFAULT_BASE_URL = os.environ.get("CREDGATE_URL", "http://127.0.0.1:8080")
DEFAULT_TIMEOUT = 60.0

@dataclass
class ProxyResult:
    """A buffered upstream response (from :meth:`App.proxy_request`)."""

    status: int
    headers: httpx.Headers
    content: bytes = field(repr=False)
    request_id: Optional[str] = None

    @property
    def status_code(self) -> int:
        """The upstream's status, under the name Alter's SDK and httpx use."""
        return self.status

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400


def _raise_for_credgate(response: httpx.Response) -> None:
    error = error_from_response(response.status_code, response.headers, response.content)
    if error is not None:
        raise error


def _boto3_client(api_key: str, base_url: str, service_name: str, grant_id: str, region_name: Optional[str], **kwargs: Any) -> Any:
    import boto3  # type: ignore[import-untyped]  # optional: `pip install credgate[boto3]`
    from botocore.config import Config  # type: ignore[import-untyped]

    # The app's "AWS keys" are its credgate app key and a placeholder: credgate finds the app
    # key in the signature's Credential field, drops the app's signature and signs the request
    # again with the stored keys, which never reach the app.
    config = Config(
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client(
        service_name,
        endpoint_url=f"{base_url.rstrip('/')}/v1/grants/{grant_id}",
        aws_access_key_id=api_key,
        aws_secret_access_key="signed-by-credgate",
        region_name=region_name or "us-east-1",
        config=kwargs.pop("config", config),
        **kwargs,
    )


class _AppBase:
    """What :class:`App` and :class:`SyncApp` share: the app key, the gateway's address, and
    turning a call's arguments into the request credgate receives. The two differ only in how
    they send it."""

    def __init__(self, api_key: str, base_url: str, user_token_getter: Optional[Callable[[], Any]] = None) -> None:
        if not api_key:
            raise ValueError("api_key is required (the app key credgate issued)")
        if user_token_getter is not None and not callable(user_token_getter):
            raise ValueError("user_token_getter must be callable")
        self._api_key = api_key
        self._user_token_getter = user_token_getter
        self.base_url = base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _prepare(
        self,
        method: Union[HttpMethod, str],
        url: str,
        *,
        grant_id: str,
        json: Any = None,
        body: Body = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        query_params: Params = None,
        path_params: Params = None,
        reason: Optional[str] = None,
        context: Optional[Mapping[str, Any]] = None,
        user_token: Optional[str] = None,
    ) -> Tuple[str, str, List[Tuple[bytes, bytes]], Dict[str, Any]]:
        """The arguments of :meth:`App.request` and its kin, checked, as (method, credgate URL,
        headers, httpx keyword arguments for the body)."""
        return build(
            api_key=self._api_key, base_url=self.base_url, method=method, url=url, grant_id=grant_id, json=json, body=body,
            extra_headers=extra_headers, query_params=query_params, path_params=path_params, reason=reason,
            context=context, user_token=user_token,
        )

    def boto3_client(self, service_name: str, *, grant_id: str, region_name: Optional[str] = None, **kwargs: Any) -> Any:
        """A real botocore client whose calls go through credgate and are signed there.

        The grant's secret must be an ``aws_sigv4`` secret whose ``base_url`` (or ``endpoint``)
        is the service's endpoint. Errors are botocore's own ``ClientError``.
        """
        return _boto3_client(self._api_key, self.base_url, service_name, grant_id, region_name, **kwargs)

    def _approval_request(self, approval_id: str, wait: float) -> Tuple[str, Dict[str, Any]]:
        """The URL and keyword arguments of a status read, waiting up to ``wait`` seconds."""
        # Whole seconds, at least one when waiting at all: less would not wait, and a loop over
        # it would ask as fast as it could.
        seconds = max(1, math.ceil(min(wait, _LONGEST_POLL))) if wait > 0 else 0
        params = {"wait": str(seconds)} if seconds else {}
        # The request may be held open for ``wait`` seconds: the client's timeout must outlast it.
        return (
            f"{self.base_url}/v1/approvals/{quote(approval_id, safe='')}",
            {"params": params, "headers": self._app_auth(), "timeout": httpx.Timeout(seconds + 30)},
        )

    def _approval_response(self, approval_id: str) -> Tuple[str, Dict[str, Any]]:
        return f"{self.base_url}/v1/approvals/{quote(approval_id, safe='')}/response", {"headers": self._app_auth()}

    def _app_auth(self) -> Dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}

    def base_url_for(self, grant_id: str, path: str = "") -> str:
        """The base URL that points a vendor SDK at a grant (base-URL mode)."""
        return f"{self.base_url}/v1/grants/{grant_id}{path}"


def _result(response: httpx.Response) -> ProxyResult:
    return ProxyResult(response.status_code, response.headers, response.content, response.headers.get("x-credgate-request-id"))


def _result_or_pending(response: httpx.Response) -> Union[ProxyResult, PendingApproval]:
    return pending_from(response) or _result(response)


#: Longest single wait credgate holds a status request open for, in seconds.
_LONGEST_POLL = 60


class App(_AppBase):
    """An app calling APIs through credgate with its app key.

    >>> async with App(os.environ["CREDGATE_APP_KEY"]) as vault:
    ...     r = await vault.request("POST", "https://api.openai.com/v1/chat/completions",
    ...                             grant_id=GRANT, json={"model": "gpt-4o-mini", "messages": []})

    Every call takes ``grant_id`` and optionally ``json`` or ``body``, ``extra_headers``,
    ``query_params`` and ``path_params``: the same keyword arguments for every call, written
    once (``RequestOptions`` in ``credgate._request``).
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        user_token_getter: Optional[Callable[[], Union[Optional[str], Awaitable[Optional[str]]]]] = None,
    ) -> None:
        """``user_token_getter``, when given, is called before each call that has no
        ``user_token`` of its own, and may be a coroutine function: the ID token of the person
        the app acts for now (``None`` for none), for grants to that person or their groups."""
        super().__init__(api_key, base_url, user_token_getter)
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)

    async def _with_user_token(self, options: Dict[str, Any]) -> Dict[str, Any]:
        if options.get("user_token") is None and self._user_token_getter is not None:
            token = self._user_token_getter()
            if inspect.isawaitable(token):
                token = await token
            options = {**options, "user_token": token}
        return options

    async def __aenter__(self) -> "App":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(self, method: Union[HttpMethod, str], url: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """Sends the request through credgate and returns the upstream's response.

        Raises a :class:`~credgate.CredgateError` subclass when credgate refuses or fails; an
        upstream's own 4xx and 5xx are returned, not raised.
        """
        method_name, endpoint, headers, content = self._prepare(method, url, **await self._with_user_token(dict(options)))
        response = await self._http.request(method_name, endpoint, headers=headers, **content)
        _raise_for_credgate(response)
        return response

    @contextlib.asynccontextmanager
    async def stream(
        self, method: Union[HttpMethod, str], url: str, **options: Unpack[RequestOptions]
    ) -> AsyncIterator[httpx.Response]:
        """Like :meth:`request`, but the body is read as it arrives:
        ``async with vault.stream(...) as r: async for event in credgate.aiter_sse(r): ...``
        """
        method_name, endpoint, headers, content = self._prepare(method, url, **await self._with_user_token(dict(options)))
        async with self._http.stream(method_name, endpoint, headers=headers, **content) as response:
            if "x-credgate-error" in response.headers:
                await response.aread()
                _raise_for_credgate(response)
            yield response

    async def proxy_request(
        self, method: Union[HttpMethod, str], url: str, **options: Unpack[RequestOptions]
    ) -> Union[ProxyResult, PendingApproval]:
        """Like :meth:`request`, returning a buffered :class:`ProxyResult`, or a
        :class:`PendingApproval` when the grant holds the call for an operator's approval
        (follow it with :meth:`await_approval`)."""
        return _result_or_pending(await self.request(method, url, **options))

    async def get_approval_status(self, approval_id: str, *, wait: float = 0) -> ApprovalInfo:
        """What became of a held call; with ``wait``, waits up to that many seconds (at most
        60) for it to settle."""
        url, options = self._approval_request(approval_id, wait)
        response = await self._http.get(url, **options)
        _raise_for_credgate(response)
        return info_from(response.json())

    async def await_approval(self, approval_id: str, *, timeout: float = 300.0) -> ProxyResult:
        """Waits for a held call to be decided and made; returns the upstream's response.

        Raises :class:`~credgate.ApprovalDenied`, :class:`~credgate.ApprovalExpired`,
        :class:`~credgate.ApprovalFailed`, or :class:`~credgate.ApprovalTimeout` after
        ``timeout`` seconds (the call may still be approved later).
        """
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            info = await self.get_approval_status(approval_id, wait=max(0.0, min(left, _LONGEST_POLL)))
            if info.is_final:
                break
            if time.monotonic() >= deadline:
                raise ApprovalTimeout(f"approval {approval_id} is still {info.status} after {timeout:g} s")
        raise_if_unmade(info)
        url, options = self._approval_response(approval_id)
        response = await self._http.get(url, **options)
        _raise_for_credgate(response)
        return _result(response)


class SyncApp(_AppBase):
    """The synchronous twin of :class:`App`, for scripts."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        user_token_getter: Optional[Callable[[], Optional[str]]] = None,
    ) -> None:
        """See :class:`App`; here ``user_token_getter`` is a plain function."""
        super().__init__(api_key, base_url, user_token_getter)
        self._http = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)

    def _with_user_token(self, options: Dict[str, Any]) -> Dict[str, Any]:
        if options.get("user_token") is None and self._user_token_getter is not None:
            token = self._user_token_getter()
            if inspect.isawaitable(token):
                raise TypeError("SyncApp's user_token_getter must return the token, not an awaitable")
            options = {**options, "user_token": token}
        return options

    def __enter__(self) -> "SyncApp":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: Union[HttpMethod, str], url: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """See :meth:`App.request`."""
        method_name, endpoint, headers, content = self._prepare(method, url, **self._with_user_token(dict(options)))
        response = self._http.request(method_name, endpoint, headers=headers, **content)
        _raise_for_credgate(response)
        return response

    @contextlib.contextmanager
    def stream(self, method: Union[HttpMethod, str], url: str, **options: Unpack[RequestOptions]) -> Iterator[httpx.Response]:
        """See :meth:`App.stream`."""
        method_name, endpoint, headers, content = self._prepare(method, url, **self._with_user_token(dict(options)))
        with self._http.stream(method_name, endpoint, headers=headers, **content) as response:
            if "x-credgate-error" in response.headers:
                response.read()
                _raise_for_credgate(response)
            yield response

    def proxy_request(
        self, method: Union[HttpMethod, str], url: str, **options: Unpack[RequestOptions]
    ) -> Union[ProxyResult, PendingApproval]:
        """See :meth:`App.proxy_request`."""
        return _result_or_pending(self.request(method, url, **options))

    def get_approval_status(self, approval_id: str, *, wait: float = 0) -> ApprovalInfo:
        """See :meth:`App.get_approval_status`."""
        url, options = self._approval_request(approval_id, wait)
        response = self._http.get(url, **options)
        _raise_for_credgate(response)
        return info_from(response.json())

    def await_approval(self, approval_id: str, *, timeout: float = 300.0) -> ProxyResult:
        """See :meth:`App.await_approval`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            info = self.get_approval_status(approval_id, wait=max(0.0, min(left, _LONGEST_POLL)))
            if info.is_final:
                break
            if time.monotonic() >= deadline:
                raise ApprovalTimeout(f"approval {approval_id} is still {info.status} after {timeout:g} s")
        raise_if_unmade(info)
        url, options = self._approval_response(approval_id)
        response = self._http.get(url, **options)
        _raise_for_credgate(response)
        return _result(response)
