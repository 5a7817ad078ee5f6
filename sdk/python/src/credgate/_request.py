"""Building the request credgate receives from the arguments an app passes."""

from __future__ import annotations

import enum
import re
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple, Union
from urllib.parse import quote

import httpx

from .errors import PathParamError

__all__ = ["HttpMethod", "build", "Body", "Params"]

Body = Union[bytes, str, None]
Params = Optional[Mapping[str, Any]]

if TYPE_CHECKING:
    from typing_extensions import Required, TypedDict

    class RequestOptions(TypedDict, total=False):
        """The keyword arguments of every call (``request``, ``stream``, ``proxy_request``).

        ``grant_id`` names the grant; ``json`` (sent as JSON) or ``body`` (bytes or text) is
        the request body, not both; ``extra_headers`` are sent to the upstream;
        ``query_params`` are added to the URL's query; ``path_params`` fill ``{name}``
        placeholders in the URL, percent-encoded, strictly (see :func:`expand_path`).
        """

        grant_id: Required[str]
        json: Any
        body: Body
        extra_headers: Optional[Mapping[str, str]]
        query_params: Params
        path_params: Params


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
        return quote(str(params[name]), safe="")

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
) -> Tuple[str, str, Dict[str, str], Dict[str, Any]]:
    """Returns (method, credgate URL, headers, httpx keyword arguments for the body)."""
    if json is not None and body is not None:
        raise ValueError("give json or body, not both")
    if not grant_id:
        raise ValueError("grant_id is required")
    target = httpx.URL(expand_path(url, path_params))
    if target.scheme not in ("http", "https") or not target.host:
        raise ValueError(f"url must be an absolute http(s) URL, got {url!r}")
    if query_params:
        target = target.copy_merge_params({k: str(v) for k, v in query_params.items()})
    headers = {k: v for k, v in (extra_headers or {}).items()}
    headers["Proxy-Authorization"] = f"Bearer {api_key}"
    headers["X-Credgate-Grant"] = str(grant_id)
    headers["X-Credgate-Target"] = str(target)
    content: Dict[str, Any] = {}
    if json is not None:
        content["json"] = json
    elif body is not None:
        content["content"] = body
    return method_name(method), base_url.rstrip("/") + "/v1/proxy", headers, content
