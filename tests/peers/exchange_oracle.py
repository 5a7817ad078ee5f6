#!/usr/bin/env python3
"""A crypto exchange's private REST API for the end-to-end tests, checking each request's
signature with ccxt's own signing code (the `ccxt` package, pinned in
sdk/python/requirements-test.txt) as the oracle.

    python exchange_oracle.py --port 0 --exchange binance|kraken|okx \
        --api-key K --secret S [--password P]

It binds 127.0.0.1, prints `listening on <port>` as its first line on stdout, and serves until
it is killed. Every request except `GET /__oracle/count` is checked and answered with JSON:

    200 {"verified": true, "exchange", "method", "path", "query", "body", "via"}
    401 {"verified": false, "reason", "expected", "got", "via"}

`expected` is the signature ccxt computes for the request as received, `got` the one the request
carries (null if none); `via` says which ccxt code computed `expected` (see "How the oracle
computes" below). The credentials are test credentials: signatures are shown, the secret never
is. `GET /__oracle/count` answers `{"count": n}`, the number of requests checked so far.

Throughout, "as sent" means the exact bytes on the wire: the oracle never re-encodes a query or
body, and neither must a signer. Every timestamp or nonce is accepted as the request carries it,
but is refused when it is more than 60 s (60000 ms) before or after this server's clock.

WHAT A SIGNER MUST SEND (ccxt 4.5.90)
=====================================

binance (spot private REST: e.g. GET /api/v3/account?omitZeroBalances=true, POST /api/v3/order)
------------------------------------------------------------------------------------------------
  Header     X-MBX-APIKEY: <api key>
  Params     The caller's parameters stay as sent. The signer adds
                 timestamp=<milliseconds since the Unix epoch, decimal>
             and then, as the very last parameter,
                 signature=<HMAC-SHA256, 64 lowercase hex digits>
             joined with `&` (no leading `&` when there was nothing before).
             GET and DELETE: in the query string (no body).
             POST and PUT: in the form body (Content-Type: application/x-www-form-urlencoded);
             ccxt then sends no query string at all.
             Rule: `signature` appears once, as the last parameter of the body or of the
             query string (Binance reads the two as one set of parameters; a signer that cannot
             change the body, such as credgate's template, appends to the query).
  Order      ccxt itself puts timestamp FIRST and, because its options default recvWindow to
             10000, appends recvWindow after the caller's params:
                 timestamp=1796581931046&omitZeroBalances=true&recvWindow=10000&signature=d318…
             A signer that appends instead,
                 omitZeroBalances=true&timestamp=1796581931046&signature=…
             is accepted as well: the exchange (and this oracle) HMACs the bytes as sent, not a
             canonical order. recvWindow is optional.
  Signed     signature = hex(HMAC-SHA256(key = secret as UTF-8 bytes, message = totalParams)),
             lowercase, exactly as ccxt's `self.hmac(self.encode(query), self.encode(self.secret),
             hashlib.sha256)`:
                 totalParams = <query string as sent, without its `&signature=…`>
                             + <body as sent, without its `&signature=…`>
             concatenated with no separator (the exchange's rule for a request that carries
             parameters in both; in ccxt's layouts one of the two is empty, so the message is
             exactly the text before `&signature=`).
  Encoding   ccxt encodes parameters with urllib's urlencode(quote_via=quote): every byte
             outside A-Z a-z 0-9 `_.-~` as %XX (upper case hex; space -> %20, `/` -> %2F),
             booleans as true/false. The oracle checks whatever encoding is sent.
  Timestamp  exactly one `timestamp` parameter (query or body), decimal ms, within 60 s.
  Not here   RSA/Ed25519 keys (ccxt switches to them when the secret holds "PRIVATE KEY").

kraken (private REST: POST /0/private/<Method>, e.g. /0/private/Balance)
-----------------------------------------------------------------------
  Headers    API-Key:  <api key>
             API-Sign: base64(HMAC-SHA512(key = base64-decode(secret),
                                          message = path + SHA256(nonce + body)))
               path   the URL path as sent, e.g. `/0/private/AddOrder`, as UTF-8 bytes. No
                      query string: ccxt never sends one on a private call, and the oracle
                      refuses one (it would not be covered by the signature).
               nonce  the text of the body's `nonce` field, e.g. `1796581931047`.
               body   the whole body as sent, `nonce=` field included.
               SHA256 the raw 32-byte digest (not hex) of nonce + body, appended to the path
                      bytes; the HMAC digest is standard base64 (88 chars, `==` padded).
             (ccxt also sends Content-Type: application/x-www-form-urlencoded; not checked.)
  Body       form-encoded with a `nonce` field. ccxt writes the nonce FIRST:
                 nonce=1796581931047&pair=XBTUSD&type=buy     (`nonce=<n>` alone: no params)
             The nonce is milliseconds since the Unix epoch (ccxt: milliseconds(), strictly
             increasing per client). A signer takes the nonce from the caller's body and leaves
             the body as it is; one that supplies the nonce itself writes `nonce=<ms>` first,
             as ccxt does. The field may stand anywhere, but must appear exactly once.
             (ccxt sends a JSON body {"nonce": "<n>", …} for AddOrderBatch, CancelOrderBatch
             and %-prices; the oracle then reads the nonce from that JSON, signed the same way.)
  Nonce      decimal, read as ms, within 60 s. Not checked: Kraken's "strictly greater than
             the last nonce for this key" rule.

okx (v5 private REST: e.g. GET /api/v5/account/balance?ccy=BTC, POST /api/v5/trade/order)
------------------------------------------------------------------------------------------
  Headers    OK-ACCESS-KEY:        <api key>
             OK-ACCESS-PASSPHRASE: <passphrase>
             OK-ACCESS-TIMESTAMP:  UTC, ISO 8601, millisecond precision, `Z`:
                                   YYYY-MM-DDTHH:MM:SS.mmmZ, e.g. 2026-12-06T18:00:00.123Z
                                   (ccxt's iso8601(): always 3 fraction digits, no offset, no
                                   micro-seconds; any other spelling is refused)
             OK-ACCESS-SIGN:       base64(HMAC-SHA256(key = secret as UTF-8, message = prehash))
             (ccxt also sends Content-Type: application/json on every non-GET; not checked.)
  Prehash    timestamp + METHOD + requestPath + body, no separators:
               timestamp    the OK-ACCESS-TIMESTAMP value, character for character
               METHOD       upper case, as on the request line (GET, POST)
               requestPath  the path as sent, plus `?` + the query string as sent when there
                            is one: /api/v5/account/balance?ccy=BTC
               body         the body as sent; empty for GET. ccxt sends compact JSON for a POST
                            with params, {"instId":"BTC-USDT","tdMode":"cash",…}, and no body
                            at all for a POST without params.
             e.g. 2026-12-06T18:00:00.123ZGET/api/v5/account/balance?ccy=BTC
                  2026-12-06T18:00:00.123ZPOST/api/v5/trade/order{"instId":"BTC-USDT"}
  Timestamp  within 60 s.

HOW THE ORACLE COMPUTES `expected`
==================================
First with ccxt's own `sign()` on a ccxt exchange instance built from the test credentials:
the request's params are parsed in the order received, the timestamp/nonce the request carries
is fed to ccxt through its `nonce()` (okx: whose iso8601 gives the header), and ccxt's output
is compared with the request. When ccxt lays the request out byte for byte as received, the
signature ccxt returns is the expected one (`via: "ccxt.sign"`).

sign() cannot reproduce every layout the exchanges accept: it always writes binance's
timestamp and kraken's nonce first, appends binance's default recvWindow, re-encodes values,
and writes okx JSON compactly. For any other layout the oracle computes the signature with
ccxt's own primitives over the bytes as sent, exactly as that exchange's sign() uses them
(`via: "ccxt.primitives"`): `exchange.hmac`, `exchange.hash`, `exchange.encode`,
`exchange.binary_concat`, `exchange.base64_to_binary`.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import re
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl

import ccxt

MAX_SKEW_MS = 60_000
EXCHANGES = ("binance", "kraken", "okx")


@dataclass
class Received:
    method: str
    path: str
    query: str  # raw, as on the request line, without the `?`
    headers: Dict[str, str]  # lower-cased names
    body: bytes


@dataclass
class Verdict:
    ok: bool
    reason: str = ""
    expected: Optional[str] = None
    got: Optional[str] = None
    via: Optional[str] = None


class Refused(Exception):
    """The request cannot be checked as it stands (a missing or malformed part)."""

    def __init__(self, reason: str, expected: Optional[str] = None, got: Optional[str] = None) -> None:
        super().__init__(reason)
        self.reason, self.expected, self.got = reason, expected, got


def _ordered_params(raw: str) -> Optional[Dict[str, str]]:
    """The form/query params in the order received, or None when a name repeats (ccxt's sign()
    takes a dict, so it cannot be handed such a request)."""
    pairs = parse_qsl(raw, keep_blank_values=True)
    params = dict(pairs)
    return params if len(params) == len(pairs) else None


def _count_param(raw: str, name: str) -> List[str]:
    return [v for k, v in parse_qsl(raw, keep_blank_values=True) if k == name]


def _check_clock(ms: int, what: str, now_ms: int) -> None:
    skew = ms - now_ms
    if abs(skew) > MAX_SKEW_MS:
        raise Refused(f"{what} {ms} is {skew:+d} ms from the server clock (limit ±{MAX_SKEW_MS} ms)")


def _decimal(value: str, what: str) -> int:
    if not re.fullmatch(r"[0-9]{1,19}", value):
        raise Refused(f"{what} {value!r} is not a decimal integer")
    return int(value)


class Oracle:
    def __init__(self, exchange: str, api_key: str, secret: str, password: Optional[str]) -> None:
        if exchange not in EXCHANGES:
            raise ValueError(f"unknown exchange {exchange!r}")
        config: Dict[str, Any] = {"apiKey": api_key, "secret": secret}
        if password is not None:
            config["password"] = password
        self.name = exchange
        self.ex = getattr(ccxt, exchange)(config)
        self.api_key, self.secret, self.password = api_key, secret, password
        # One ccxt instance, whose nonce() is set per request: one request at a time inside it.
        self.lock = threading.Lock()

    def _sign_with(self, nonce_ms: int, path: str, method: str, params: Any,
                   options: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, Any]]:
        """ccxt's sign() for a private endpoint, with its clock set to the request's own and
        `options` set for this call; None when ccxt will not sign that path."""
        with self.lock:
            saved = {name: self.ex.options.get(name) for name in (options or {})}
            self.ex.options.update(options or {})
            self.ex.nonce = lambda: nonce_ms
            self.ex.options["lastNonce"] = 0  # incrementing_nonce() (kraken) then yields nonce_ms
            try:
                signed: Dict[str, Any] = self.ex.sign(path, ["private"], method, params)
                return signed
            except Exception:  # noqa: BLE001 - e.g. a path ccxt signs differently: use the primitives
                return None
            finally:
                del self.ex.nonce
                self.ex.options.update(saved)

    def verify(self, req: Received, now_ms: Optional[int] = None) -> Verdict:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        check: Callable[[Received, int], Verdict] = getattr(self, "_verify_" + self.name)
        try:
            return check(req, now_ms)
        except Refused as refused:
            return Verdict(False, refused.reason, refused.expected, refused.got)

    @staticmethod
    def _judge(expected: str, got: Optional[str], via: str, header_problem: Optional[str],
               clock: Callable[[], None]) -> Verdict:
        """Checks in a fixed order, reporting the first failure with both signatures."""
        try:
            if header_problem:
                raise Refused(header_problem)
            clock()
        except Refused as refused:
            return Verdict(False, refused.reason, expected, got, via)
        if got is None:
            return Verdict(False, "the request carries no signature", expected, None, via)
        if not hmac.compare_digest(expected.encode(), got.encode()):
            return Verdict(False, "signature mismatch", expected, got, via)
        return Verdict(True, expected=expected, got=got, via=via)

    # binance ---------------------------------------------------------------------------------

    @staticmethod
    def _split_signature(raw: bytes) -> Tuple[bytes, Optional[str]]:
        """(raw without its trailing `signature=` param, the signature), or (raw, None)."""
        if raw.startswith(b"signature="):
            head, sig = b"", raw[len(b"signature="):]
        else:
            at = raw.rfind(b"&signature=")
            if at < 0:
                return raw, None
            head, sig = raw[:at], raw[at + len(b"&signature="):]
        if b"&" in sig:
            raise Refused("`signature` must be the last parameter")
        return head, sig.decode("latin-1")

    def _verify_binance(self, req: Received, now_ms: int) -> Verdict:
        ex = self.ex
        query, body = req.query.encode("latin-1"), req.body
        if body:
            body_signed, got = self._split_signature(body)
            query_signed = query
            if got is None:
                # Parameters may come in the query or the body (Binance reads them as one set;
                # totalParams is still query + body): a signer that cannot touch the body puts
                # `timestamp` and `signature` last in the query.
                query_signed, got = self._split_signature(query)
                body_signed = body
        else:
            query_signed, got = self._split_signature(query)
            body_signed = b""
        for part in (query_signed, body_signed):
            if _count_param(part.decode("latin-1"), "signature"):
                raise Refused("`signature` appears more than once, or not last", got=got)
        total = query_signed + body_signed
        stamps = _count_param(query_signed.decode("latin-1"), "timestamp") + _count_param(
            body_signed.decode("latin-1"), "timestamp")
        if len(stamps) != 1:
            raise Refused(f"expected one `timestamp` parameter, found {len(stamps)}", got=got)
        stamp = _decimal(stamps[0], "timestamp")

        expected, via = None, "ccxt.sign"
        # ccxt's layouts: GET/DELETE carry everything in the query, POST/PUT in the body.
        in_query = req.method in ("GET", "DELETE")
        signed_part = query_signed if in_query else body_signed
        other_part = body if in_query else query
        params = _ordered_params(signed_part.decode("latin-1"))
        if params is not None and not other_part:
            params.pop("timestamp", None)
            path = req.path[len("/api/v3/"):] if req.path.startswith("/api/v3/") else req.path.lstrip("/")
            # A recvWindow the request carries stays in params, in place; ccxt adds no default.
            out = self._sign_with(stamp, path, req.method, params, {"recvWindow": None})
            if out is not None:
                text = out["url"].split("?", 1)[1] if in_query and "?" in out["url"] else (out["body"] or "")
                ccxt_signed, _, ccxt_sig = text.rpartition("&signature=")
                if ccxt_sig and ccxt_signed.encode("utf-8") == signed_part:
                    expected = ccxt_sig
        if expected is None:
            # sign() lays out timestamp first (and re-encodes); the exchange HMACs the bytes as
            # sent, so compute as sign() does over those: self.hmac(self.encode(query),
            # self.encode(self.secret), hashlib.sha256).
            via = "ccxt.primitives"
            expected = ex.hmac(total, ex.encode(self.secret), hashlib.sha256)

        key = req.headers.get("x-mbx-apikey")
        problem = None if key == self.api_key else f"X-MBX-APIKEY is {key!r}, not the test key"
        return self._judge(expected, got, via, problem, lambda: _check_clock(stamp, "timestamp", now_ms))

    # kraken ----------------------------------------------------------------------------------

    def _verify_kraken(self, req: Received, now_ms: int) -> Verdict:
        ex = self.ex
        got = req.headers.get("api-sign")
        if req.query:
            raise Refused("a kraken private request carries no query string (it would be unsigned)", got=got)
        is_json = req.body[:1] in (b"{", b"[")
        if is_json:
            try:
                document = json.loads(req.body)
            except ValueError:
                raise Refused("the JSON body does not parse", got=got)
            nonces = [str(document["nonce"])] if isinstance(document, dict) and "nonce" in document else []
        else:
            nonces = _count_param(req.body.decode("latin-1"), "nonce")
        if len(nonces) != 1:
            raise Refused(f"expected one `nonce` field in the body, found {len(nonces)}", got=got)
        nonce_text = nonces[0]
        nonce = _decimal(nonce_text, "nonce")

        expected, via = None, "ccxt.sign"
        match = re.fullmatch(r"/0/private/([A-Za-z0-9]+)", req.path)
        params = None if is_json else _ordered_params(req.body.decode("latin-1"))
        if match and params is not None:
            params.pop("nonce", None)
            out = self._sign_with(nonce, match.group(1), req.method, params)
            if out is not None and (out["body"] or "").encode("utf-8") == req.body:
                expected = out["headers"]["API-Sign"]
        if expected is None:
            # sign() writes the nonce first and re-encodes the params; the exchange signs the
            # path and the body as sent, so compute as sign() does over those bytes.
            via = "ccxt.primitives"
            digest = ex.hash(ex.binary_concat(ex.encode(nonce_text), req.body), "sha256", "binary")
            message = ex.binary_concat(ex.encode(req.path), digest)
            try:
                key = ex.base64_to_binary(self.secret)
            except ValueError:
                raise Refused("the oracle's kraken secret is not base64", got=got)
            expected = ex.hmac(message, key, hashlib.sha512, "base64")

        api_key = req.headers.get("api-key")
        problem = None if api_key == self.api_key else f"API-Key is {api_key!r}, not the test key"
        return self._judge(expected, got, via, problem, lambda: _check_clock(nonce, "nonce", now_ms))

    # okx -------------------------------------------------------------------------------------

    def _verify_okx(self, req: Received, now_ms: int) -> Verdict:
        ex = self.ex
        got = req.headers.get("ok-access-sign")
        stamp = req.headers.get("ok-access-timestamp")
        if stamp is None:
            raise Refused("no OK-ACCESS-TIMESTAMP header", got=got)
        stamp_ms = ex.parse8601(stamp)
        if stamp_ms is None or ex.iso8601(stamp_ms) != stamp:
            raise Refused(f"OK-ACCESS-TIMESTAMP {stamp!r} is not in ccxt's form YYYY-MM-DDTHH:MM:SS.mmmZ", got=got)
        request_path = req.path + ("?" + req.query if req.query else "")

        expected, via = None, "ccxt.sign"
        params: Any = None
        if req.path.startswith("/api/v5/"):
            if req.method == "GET" and not req.body:
                params = _ordered_params(req.query)
            elif req.method != "GET" and not req.query:
                try:
                    params = json.loads(req.body) if req.body else {}
                except ValueError:
                    params = None
        if params is not None:
            out = self._sign_with(stamp_ms, req.path[len("/api/v5/"):], req.method, params)
            if out is not None:
                url = out["url"]
                ccxt_path = url[url.index("/api/v5/"):]
                if (ccxt_path == request_path and (out["body"] or "").encode("utf-8") == req.body
                        and out["headers"]["OK-ACCESS-TIMESTAMP"] == stamp):
                    expected = out["headers"]["OK-ACCESS-SIGN"]
        if expected is None:
            # sign() re-encodes the query and writes the JSON compactly; the exchange signs the
            # request as sent, so compute as sign() does over those bytes.
            via = "ccxt.primitives"
            auth = ex.binary_concat(ex.encode(stamp + req.method + request_path), req.body)
            expected = ex.hmac(auth, ex.encode(self.secret), hashlib.sha256, "base64")

        problems = []
        if req.headers.get("ok-access-key") != self.api_key:
            problems.append(f"OK-ACCESS-KEY is {req.headers.get('ok-access-key')!r}, not the test key")
        if req.headers.get("ok-access-passphrase") != self.password:
            problems.append("OK-ACCESS-PASSPHRASE is not the test passphrase")
        return self._judge(expected, got, via, "; ".join(problems) or None,
                           lambda: _check_clock(stamp_ms, "OK-ACCESS-TIMESTAMP", now_ms))


def serve(oracle: Oracle, port: int) -> ThreadingHTTPServer:
    count = [0]
    count_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _read_body(self) -> bytes:
            if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
                chunks: List[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("content-length") or 0)
            return self.rfile.read(length) if length else b""

        def _answer(self, status: int, document: Dict[str, Any]) -> None:
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _handle(self) -> None:
            target = self.path
            if target.startswith(("http://", "https://")):  # absolute-form: keep path and query
                target = "/" + target.split("://", 1)[1].partition("/")[2]
            path, _, query = target.partition("?")
            body = self._read_body()
            if self.command == "GET" and path == "/__oracle/count":
                with count_lock:
                    self._answer(200, {"count": count[0]})
                return
            received = Received(self.command, path, query, {k.lower(): v for k, v in self.headers.items()}, body)
            verdict = oracle.verify(received)
            with count_lock:
                count[0] += 1
            if verdict.ok:
                self._answer(200, {
                    "verified": True, "exchange": oracle.name, "method": self.command, "path": path,
                    "query": query, "body": body.decode("utf-8", "replace"), "via": verdict.via,
                })
            else:
                print(f"{oracle.name}: refused {self.command} {path}: {verdict.reason}", file=sys.stderr, flush=True)
                self._answer(401, {
                    "verified": False, "reason": verdict.reason, "expected": verdict.expected,
                    "got": verdict.got, "via": verdict.via,
                })

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--exchange", choices=EXCHANGES, required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--password", help="okx's passphrase")
    args = parser.parse_args(argv)
    if args.exchange == "okx" and args.password is None:
        parser.error("okx needs --password (the API passphrase)")
    server = serve(Oracle(args.exchange, args.api_key, args.secret, args.password), args.port)
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
