"""Building the request credgate receives from the arguments an app passes."""

from __future__ import annotations

import enum
import json as _json
import re
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple, Union
from urllib.parse import quote

import httpx

from .errors import PathParamError

__all__ = ["HttpMethod", "build", "reason_headers", "user_token_header", "Body", "Params"]

Body = Union[bytes, str, None]
Params = Optional[Mapping[str, Any]]

if TYPE_CHECKING:
    from typing_extensions import Required, TypedDict

    class RequestOptions(TypedDict, total=False):
        """The keyword arguments of every call (``request``, ``stream``, ``proxy_request``).

        ``grant_id`` names the grant; ``json`` (sent as JSON) or ``body`` (bytes or text) is
        the request body, not both; ``extra_headers`` are sent to the upstream;
        ``query_params`` are added to the URL's query; ``path_params`` fill ``{name}``
        placeholders in the URL, percent-encoded, strictly (see :func:`expand_path`);
        ``reason`` (text, at most 256 characters) and ``context`` (a JSON-serialisable dict,
        at most 4 KiB as JSON) are recorded with the call in credgate's audit trail and never
        sent upstream; ``user_token`` is the ID token of the person the app acts for (from an
        identity provider credgate trusts), for grants to that person or their groups; it
        overrides the client's ``user_token_getter`` and is never sent upstream.
        """

        grant_id: Required[str]
        json: Any
        body: Body
        extra_headers: Optional[Mapping[str, str]]
        query_params: Params
        path_params: Params
        reason: Optional[str]
        context: Optional[Mapping[str, Any]]
        user_token: Optional[str]


class HttpMethod(str, enum.Enum):
    """HTTP methods, for ``request(method=...)``; a plain string works too."""

    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    HEAD = "HEAD"
    OPTIONS = "OPTIONS"


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def expand_path(url: str, path_params: Optional[Mapping[str, Any]]) -> str:
    """Fills ``{identifier}`` placeholders with percent-encoded values.

    Strict: a placeholder without a value, a value without a placeholder, or a brace that is
    not part of a well-formed placeholder is a :class:`PathParamError`.
    """
    params = dict(path_params or {})
    used = set()

    def fill(match: "re.Match[str]") -> str:
        name = match.group(1)
        if name not in params:
            raise PathParamError(f"no value for the path placeholder {{{name}}}")
        used.add(name)
        value = str(params[name])
        # `.` and `..` would be read as the path's own dot segments: out of the segment.
        if value in (".", ".."):
            raise PathParamError(f"the value of {{{name}}} is a dot segment (`.` or `..`)")
        return quote(value, safe="")

    expanded = _PLACEHOLDER.sub(fill, url)
    if "{" in expanded or "}" in expanded:
        raise PathParamError("the URL has a malformed placeholder; placeholders are {identifier}")
    unused = set(params) - used
    if unused:
        raise PathParamError(f"path_params without a placeholder: {', '.join(sorted(unused))}")
    return expanded


def method_name(method: Union[HttpMethod, str]) -> str:
    name = method.value if isinstance(method, HttpMethod) else str(method).upper()
    if not _TOKEN.match(name):
        raise ValueError(f"not an HTTP method: {method!r}")
    return name


MAX_REASON_CHARS = 256
MAX_CONTEXT_BYTES = 4096


def reason_headers(reason: Optional[str], context: Optional[Mapping[str, Any]]) -> Dict[str, Union[str, bytes]]:
    """The headers that carry a call's reason and context, checked as credgate checks them, so
    a mistake is a ``ValueError`` here rather than a refused call."""
    headers: Dict[str, Union[str, bytes]] = {}
    if reason is not None:
        reason = reason.strip()
        if len(reason) > MAX_REASON_CHARS:
            raise ValueError(f"reason is {len(reason)} characters long; at most {MAX_REASON_CHARS}")
        if any(ord(c) < 32 or ord(c) == 127 for c in reason):
            raise ValueError("reason must be one line of text")
        if reason:
            # Header values travel as bytes: UTF-8, which credgate reads back as such.
            headers["X-Credgate-Reason"] = reason.encode("utf-8")
    if context is not None:
        if not isinstance(context, Mapping):
            raise ValueError("context must be a dict (a JSON object)")
        encoded = _json.dumps(dict(context), separators=(",", ":"), ensure_ascii=True)
        if len(encoded) > MAX_CONTEXT_BYTES:
            raise ValueError(f"context is {len(encoded)} bytes as JSON; at most {MAX_CONTEXT_BYTES}")
        if context:
            headers["X-Credgate-Context"] = encoded
    return headers


USER_TOKEN_HEADER = "X-Credgate-User-Token"


def user_token_header(user_token: Optional[str]) -> Dict[str, Union[str, bytes]]:
    """The header carrying the person's ID token, checked for shape only (credgate verifies
    it): one line of printable ASCII, as a JWT is."""
    if user_token is None:
        return {}
    if not isinstance(user_token, str):
        raise ValueError("user_token must be a string (an ID token)")
    token = user_token.strip()
    if not token or any(ord(c) < 33 or ord(c) > 126 for c in token):
        raise ValueError("user_token must be a JWT: one line of printable ASCII")
    return {USER_TOKEN_HEADER: token}


def build(
    *,
    api_key: str,
    base_url: str,
    method: Union[HttpMethod, str],
    url: str,
    grant_id: str,
    json: Any = None,
    body: Union[bytes, str, None] = None,
    extra_headers: Optional[Mapping[str, str]] = None,
    query_params: Optional[Mapping[str, Any]] = None,
    path_params: Optional[Mapping[str, Any]] = None,
    reason: Optional[str] = None,
    context: Optional[Mapping[str, Any]] = None,
    user_token: Optional[str] = None,
) -> Tuple[str, str, List[Tuple[bytes, bytes]], Dict[str, Any]]:
    """Returns (method, credgate URL, headers as bytes, httpx keyword arguments for the body).

    Headers go as bytes: a reason in any language is sent as its UTF-8 bytes, as credgate
    reads it."""
    if json is not None and body is not None:
        raise ValueError("give json or body, not both")
    if not grant_id:
        raise ValueError("grant_id is required")
    target = httpx.URL(expand_path(url, path_params))
    if target.scheme not in ("http", "https") or not target.host:
        raise ValueError(f"url must be an absolute http(s) URL, got {url!r}")
    if query_params:
        target = target.copy_merge_params({k: str(v) for k, v in query_params.items()})
    headers: Dict[str, Union[str, bytes]] = {k: v for k, v in (extra_headers or {}).items()}
    headers["Proxy-Authorization"] = f"Bearer {api_key}"
    headers["X-Credgate-Grant"] = str(grant_id)
    headers["X-Credgate-Target"] = str(target)
    headers.update(reason_headers(reason, context))
    headers.update(user_token_header(user_token))
    content: Dict[str, Any] = {}
    if json is not None:
        content["json"] = json
    elif body is not None:
        content["content"] = body
    wire = [(name.encode("latin-1"), value if isinstance(value, bytes) else value.encode("latin-1")) for name, value in headers.items()]
    return method_name(method), base_url.rstrip("/") + "/v1/proxy", wire, content
