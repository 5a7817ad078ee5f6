"""The exchange peer (exchange_oracle.py) over real HTTP on loopback, against requests signed by
ccxt itself and against requests signed from the specification in the peer's header, written
here with the standard library alone, as a gateway's template would implement it.

Run: python -m pytest -q -p no:cacheprovider tests/peers/test_exchange_oracle.py
(in an environment with sdk/python/requirements-test.txt installed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Optional
from urllib.parse import urlsplit

import ccxt
import httpx
import pytest

ORACLE = Path(__file__).with_name("exchange_oracle.py")
KEY = "test-api-key-0001"
SECRET = "test-secret-0001"
KRAKEN_SECRET = base64.b64encode(bytes(range(64))).decode()  # kraken secrets are base64
PASSWORD = "test-passphrase-0001"
CREDENTIALS: Dict[str, Dict[str, str]] = {
    "binance": {"apiKey": KEY, "secret": SECRET},
    "kraken": {"apiKey": KEY, "secret": KRAKEN_SECRET},
    "okx": {"apiKey": KEY, "secret": SECRET, "password": PASSWORD},
}


class Peer:
    def __init__(self, exchange: str) -> None:
        creds = CREDENTIALS[exchange]
        args = [sys.executable, str(ORACLE), "--port", "0", "--exchange", exchange,
                "--api-key", creds["apiKey"], "--secret", creds["secret"]]
        if "password" in creds:
            args += ["--password", creds["password"]]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        first = self.process.stdout.readline().strip()
        assert first.startswith("listening on "), (first, self.process.stderr.read() if self.process.stderr else "")
        self.base = f"http://127.0.0.1:{int(first.split()[-1])}"
        self.http = httpx.Client(timeout=10)

    def send(self, method: str, path_and_query: str, headers: Optional[Dict[str, str]] = None,
             body: Optional[bytes] = None) -> httpx.Response:
        return self.http.request(method, self.base + path_and_query, headers=headers or {}, content=body)

    def send_signed(self, signed: Dict[str, Any]) -> httpx.Response:
        """Sends what ccxt's sign() returned, byte for byte, to this peer instead of the exchange."""
        url = urlsplit(signed["url"])
        target = url.path + ("?" + url.query if url.query else "")
        body = signed["body"].encode() if signed["body"] is not None else None
        response = self.send(signed["method"], target, signed["headers"], body)
        if response.status_code == 200:
            # What the peer saw is what ccxt produced: nothing on the way re-encoded it.
            seen = response.json()
            assert (seen["path"], seen["query"], seen["body"]) == (url.path, url.query, signed["body"] or "")
        return response

    def count(self) -> int:
        return int(self.http.get(self.base + "/__oracle/count").json()["count"])

    def close(self) -> None:
        self.http.close()
        self.process.kill()
        self.process.wait(timeout=10)


def client(exchange: str, clock_offset_ms: int = 0) -> Any:
    """A ccxt client with the test credentials; its clock may be moved to make stale requests."""
    ex = getattr(ccxt, exchange)(dict(CREDENTIALS[exchange]))
    ex.options["timeDifference"] = -clock_offset_ms  # nonce() = milliseconds() - timeDifference
    return ex


def now_ms() -> int:
    return int(time.time() * 1000)


def refused(response: httpx.Response, reason_part: str) -> Dict[str, Any]:
    assert response.status_code == 401, response.text
    answer: Dict[str, Any] = response.json()
    assert answer["verified"] is False
    assert reason_part in answer["reason"], answer
    return answer


def accepted(response: httpx.Response, via: str) -> Dict[str, Any]:
    assert response.status_code == 200, response.text
    answer: Dict[str, Any] = response.json()
    assert answer["verified"] is True and answer["via"] == via, answer
    return answer


def tamper(data: str, old: str, new: str) -> str:
    assert len(old) == len(new) and data.count(old) == 1
    return data.replace(old, new)


@pytest.fixture(scope="module")
def peers() -> Iterator[Dict[str, Peer]]:
    started = {name: Peer(name) for name in CREDENTIALS}
    yield started
    for peer in started.values():
        peer.close()


# binance -------------------------------------------------------------------------------------

def binance_spec_signature(total_params: bytes) -> str:
    return hmac.new(SECRET.encode(), total_params, hashlib.sha256).hexdigest()


def test_binance_get_signed_by_ccxt(peers: Dict[str, Peer]) -> None:
    peer = peers["binance"]
    signed = client("binance").sign("account", ["private"], "GET", {"omitZeroBalances": "true", "note": "a b/c"})
    answer = accepted(peer.send_signed(signed), "ccxt.sign")
    assert answer["query"].startswith("timestamp=") and "&recvWindow=10000&signature=" in answer["query"]
    # The header's specification gives ccxt's own signature for ccxt's own layout.
    query = urlsplit(signed["url"]).query
    head, _, signature = query.rpartition("&signature=")
    assert binance_spec_signature(head.encode()) == signature

    url = urlsplit(signed["url"])
    bad = tamper(url.query, "omitZeroBalances=true", "omitZeroBalances=trUe")
    answer = refused(peer.send("GET", url.path + "?" + bad, signed["headers"]), "signature mismatch")
    assert answer["got"] == signature and answer["expected"] != signature


def test_binance_post_form_signed_by_ccxt(peers: Dict[str, Peer]) -> None:
    peer = peers["binance"]
    params = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
              "quantity": "1", "price": "0.1", "newClientOrderId": "oracle-1"}
    signed = client("binance").sign("order", ["private"], "POST", params)
    assert urlsplit(signed["url"]).query == "" and signed["body"].startswith("timestamp=")
    accepted(peer.send_signed(signed), "ccxt.sign")

    bad = tamper(signed["body"], "quantity=1", "quantity=2").encode()
    refused(peer.send("POST", "/api/v3/order", signed["headers"], bad), "signature mismatch")

    # The same body in chunked transfer encoding is the same body.
    raw = signed["body"].encode()
    chunked = peer.http.post(peer.base + "/api/v3/order", headers=signed["headers"],
                             content=iter([raw[:20], raw[20:]]))
    assert "content-length" not in {k.lower() for k in chunked.request.headers}
    accepted(chunked, "ccxt.sign")


def test_binance_stale_or_future_timestamp_is_refused(peers: Dict[str, Peer]) -> None:
    for offset in (-120_000, 120_000):
        signed = client("binance", offset).sign("account", ["private"], "GET", {})
        refused(peers["binance"].send_signed(signed), "from the server clock")
    # Within the minute is fine.
    accepted(peers["binance"].send_signed(client("binance", -30_000).sign("account", ["private"], "GET", {})), "ccxt.sign")


def test_binance_wrong_key_or_no_signature_is_refused(peers: Dict[str, Peer]) -> None:
    signed = client("binance").sign("account", ["private"], "GET", {})
    refused(peers["binance"].send_signed({**signed, "headers": {"X-MBX-APIKEY": "someone-else"}}), "X-MBX-APIKEY")
    unsigned = signed["url"].rpartition("&signature=")[0]
    answer = refused(peers["binance"].send_signed({**signed, "url": unsigned}), "no signature")
    assert answer["got"] is None and answer["expected"]


def test_binance_appended_timestamp_as_a_gateway_signs(peers: Dict[str, Peer]) -> None:
    """The caller's params as sent, then `timestamp` and `signature` appended: a layout ccxt's
    sign() does not write but the exchange accepts."""
    peer = peers["binance"]
    caller = "symbol=BTCUSDT&limit=5"
    query = f"{caller}&timestamp={now_ms()}"
    signature = binance_spec_signature(query.encode())
    accepted(peer.send("GET", f"/api/v3/allOrders?{query}&signature={signature}", {"X-MBX-APIKEY": KEY}),
             "ccxt.primitives")
    refused(peer.send("GET", f"/api/v3/allOrders?{tamper(query, 'limit=5', 'limit=6')}&signature={signature}",
                      {"X-MBX-APIKEY": KEY}), "signature mismatch")

    body = f"symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.5&timestamp={now_ms()}"
    form = {"X-MBX-APIKEY": KEY, "Content-Type": "application/x-www-form-urlencoded"}
    signature = binance_spec_signature(body.encode())
    accepted(peer.send("POST", "/api/v3/order", form, f"{body}&signature={signature}".encode()), "ccxt.primitives")
    refused(peer.send("POST", "/api/v3/order", form,
                      f"{tamper(body, 'SELL', 'SELF')}&signature={signature}".encode()), "signature mismatch")

    # Parameters in both the query string and the body: signed as query + body, no separator.
    query, body = "symbol=BTCUSDT", f"side=BUY&type=MARKET&quantity=1&timestamp={now_ms()}"
    signature = binance_spec_signature((query + body).encode())
    accepted(peer.send("POST", f"/api/v3/order?{query}", form, f"{body}&signature={signature}".encode()),
             "ccxt.primitives")

    # The body as the caller wrote it, `timestamp` and `signature` last in the query (a signer
    # that cannot change the body): still query + body.
    body = "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1"
    query = f"timestamp={now_ms()}"
    signature = binance_spec_signature((query + body).encode())
    accepted(peer.send("POST", f"/api/v3/order?{query}&signature={signature}", form, body.encode()),
             "ccxt.primitives")
    refused(peer.send("POST", f"/api/v3/order?{query}&signature={signature}", form,
                      tamper(body, "BUY", "BUZ").encode()), "signature mismatch")


# kraken --------------------------------------------------------------------------------------

def kraken_spec_signature(path: str, nonce: str, body: bytes) -> str:
    digest = hashlib.sha256(nonce.encode() + body).digest()
    mac = hmac.new(base64.b64decode(KRAKEN_SECRET), path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


def test_kraken_post_signed_by_ccxt(peers: Dict[str, Peer]) -> None:
    peer = peers["kraken"]
    ex = client("kraken")
    signed = ex.sign("Balance", ["private"], "POST", {})
    assert signed["body"].startswith("nonce=") and "&" not in signed["body"]
    accepted(peer.send_signed(signed), "ccxt.sign")

    params = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "27500.0", "volume": "1.25"}
    signed = ex.sign("AddOrder", ["private"], "POST", params)
    accepted(peer.send_signed(signed), "ccxt.sign")
    nonce = signed["body"].split("&", 1)[0].split("=", 1)[1]
    assert kraken_spec_signature("/0/private/AddOrder", nonce, signed["body"].encode()) == signed["headers"]["API-Sign"]

    bad = tamper(signed["body"], "volume=1.25", "volume=1.26").encode()
    answer = refused(peer.send("POST", "/0/private/AddOrder", signed["headers"], bad), "signature mismatch")
    assert answer["got"] == signed["headers"]["API-Sign"]
    # The path is signed too.
    refused(peer.send("POST", "/0/private/AddOrdes", signed["headers"], signed["body"].encode()), "signature mismatch")


def test_kraken_stale_nonce_or_query_is_refused(peers: Dict[str, Peer]) -> None:
    peer = peers["kraken"]
    for offset in (-120_000, 120_000):
        refused(peer.send_signed(client("kraken", offset).sign("Balance", ["private"], "POST", {})), "from the server clock")
    signed = client("kraken").sign("Balance", ["private"], "POST", {})
    refused(peer.send("POST", "/0/private/Balance?asset=XBT", signed["headers"], signed["body"].encode()), "query string")
    refused(peer.send_signed({**signed, "headers": {**signed["headers"], "API-Key": "someone-else"}}), "API-Key")
    refused(peer.send("POST", "/0/private/Balance", signed["headers"], b"asset=XBT"), "nonce")


def test_kraken_body_as_the_caller_wrote_it(peers: Dict[str, Peer]) -> None:
    """A caller's body with the nonce not first and `+` for spaces, signed as sent."""
    peer = peers["kraken"]
    nonce = str(now_ms())
    body = f"pair=XBTUSD&userref=7&oflags=post+only&nonce={nonce}".encode()
    headers = {"API-Key": KEY, "API-Sign": kraken_spec_signature("/0/private/AddOrder", nonce, body),
               "Content-Type": "application/x-www-form-urlencoded"}
    accepted(peer.send("POST", "/0/private/AddOrder", headers, body), "ccxt.primitives")
    refused(peer.send("POST", "/0/private/AddOrder", headers, body.replace(b"userref=7", b"userref=8")),
            "signature mismatch")


# okx -----------------------------------------------------------------------------------------

def okx_spec_signature(timestamp: str, method: str, request_path: str, body: bytes) -> str:
    mac = hmac.new(SECRET.encode(), (timestamp + method + request_path).encode() + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def test_okx_get_and_post_signed_by_ccxt(peers: Dict[str, Peer]) -> None:
    peer = peers["okx"]
    ex = client("okx")
    signed = ex.sign("account/balance", ["private"], "GET", {"ccy": "BTC,ETH"})
    accepted(peer.send_signed(signed), "ccxt.sign")
    stamp = signed["headers"]["OK-ACCESS-TIMESTAMP"]
    assert len(stamp) == 24 and stamp[10] == "T" and stamp[19] == "." and stamp.endswith("Z")
    url = urlsplit(signed["url"])
    assert okx_spec_signature(stamp, "GET", url.path + "?" + url.query, b"") == signed["headers"]["OK-ACCESS-SIGN"]
    refused(peer.send("GET", url.path + "?" + tamper(url.query, "BTC", "BTD"), signed["headers"]), "signature mismatch")

    order = {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit", "px": "27500", "sz": "0.01",
             "clOrdId": "oracle1"}
    signed = ex.sign("trade/order", ["private"], "POST", order)
    assert signed["body"] == json.dumps(order, separators=(",", ":"))
    accepted(peer.send_signed(signed), "ccxt.sign")
    bad = tamper(signed["body"], '"sz":"0.01"', '"sz":"0.02"').encode()
    refused(peer.send("POST", "/api/v5/trade/order", signed["headers"], bad), "signature mismatch")


def test_okx_stale_timestamp_wrong_passphrase_or_format_is_refused(peers: Dict[str, Peer]) -> None:
    peer = peers["okx"]
    for offset in (-120_000, 120_000):
        refused(peer.send_signed(client("okx", offset).sign("account/balance", ["private"], "GET", {})), "from the server clock")
    signed = client("okx").sign("account/balance", ["private"], "GET", {})
    refused(peer.send_signed({**signed, "headers": {**signed["headers"], "OK-ACCESS-PASSPHRASE": "wrong"}}), "PASSPHRASE")
    refused(peer.send_signed({**signed, "headers": {**signed["headers"], "OK-ACCESS-KEY": "someone-else"}}), "OK-ACCESS-KEY")
    # The same instant, spelt differently, signed correctly for that spelling: still refused.
    other = signed["headers"]["OK-ACCESS-TIMESTAMP"].replace("Z", "+00:00")
    headers = {**signed["headers"], "OK-ACCESS-TIMESTAMP": other,
               "OK-ACCESS-SIGN": okx_spec_signature(other, "GET", "/api/v5/account/balance", b"")}
    refused(peer.send("GET", "/api/v5/account/balance", headers), "ccxt's form")


def test_okx_json_as_the_caller_wrote_it(peers: Dict[str, Peer]) -> None:
    """JSON with spaces, as a caller may send it: signed as sent."""
    peer = peers["okx"]
    stamp = client("okx").iso8601(now_ms())
    body = b'{"instId": "BTC-USDT", "tdMode": "cash", "side": "sell", "ordType": "market", "sz": "1"}'
    headers = {"OK-ACCESS-KEY": KEY, "OK-ACCESS-PASSPHRASE": PASSWORD, "OK-ACCESS-TIMESTAMP": stamp,
               "OK-ACCESS-SIGN": okx_spec_signature(stamp, "POST", "/api/v5/trade/order", body),
               "Content-Type": "application/json"}
    accepted(peer.send("POST", "/api/v5/trade/order", headers, body), "ccxt.primitives")
    refused(peer.send("POST", "/api/v5/trade/order", headers, body.replace(b'"sz": "1"', b'"sz": "2"')),
            "signature mismatch")


# the peer itself -----------------------------------------------------------------------------

def test_count_is_the_number_of_requests_checked() -> None:
    peer = Peer("binance")
    try:
        assert peer.count() == 0
        signed = client("binance").sign("account", ["private"], "GET", {})
        accepted(peer.send_signed(signed), "ccxt.sign")
        refused(peer.send("GET", "/api/v3/account"), "timestamp")
        assert peer.count() == 2
        assert peer.count() == 2  # asking does not count
    finally:
        peer.close()


def test_secret_is_never_shown() -> None:
    peer = Peer("okx")
    try:
        answer = refused(peer.send("GET", "/api/v5/account/balance"), "OK-ACCESS-TIMESTAMP")
        assert SECRET not in json.dumps(answer)
    finally:
        peer.process.kill()
        _, err = peer.process.communicate(timeout=10)
        assert SECRET not in err
