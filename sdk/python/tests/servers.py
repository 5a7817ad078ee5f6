"""Real HTTP servers on loopback for the tests: an echo upstream that records what it receives
and speaks the shapes of the OpenAI and Anthropic APIs, and credgate itself."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional
from urllib.parse import parse_qsl, urlsplit

import httpx


class Seen:
    def __init__(self, method: str, path: str, query: str, headers: Dict[str, str], body: bytes) -> None:
        self.method, self.path, self.query, self.headers, self.body = method, path, query, headers, body


class Upstream:
    """Records every request; answers by path."""

    def __init__(self) -> None:
        self.seen: List[Seen] = []
        self.gate = threading.Event()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                length = int(self.headers.get("content-length") or 0)
                return self.rfile.read(length) if length else b""

            def _send(self, status: int, payload: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                body = self._body()
                headers = {k.lower(): v for k, v in self.headers.items()}
                upstream.seen.append(Seen(self.command, parts.path, parts.query, headers, body))
                if parts.path.startswith("/status/"):
                    self._send(int(parts.path.rsplit("/", 1)[1]), b'{"upstream": "says no"}')
                elif parts.path == "/slow":
                    time.sleep(3)
                    self._send(200, b"{}")
                elif parts.path == "/sse":
                    self._sse([b"data: first\n\n"], gated=[b"data: second\n\n", b"data: [DONE]\n\n"])
                elif parts.path.endswith("/chat/completions"):
                    request = json.loads(body or b"{}")
                    if request.get("stream"):
                        chunk = lambda text, finish=None: (  # noqa: E731
                            "data: " + json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": request["model"],
                                                   "choices": [{"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}]}) + "\n\n"
                        ).encode()
                        self._sse([chunk("Hel"), chunk("lo"), chunk(None, "stop"), b"data: [DONE]\n\n"])
                    else:
                        self._send(200, json.dumps({
                            "id": "c1", "object": "chat.completion", "created": 1, "model": request["model"],
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                        }).encode())
                elif parts.path.endswith("/messages"):
                    request = json.loads(body or b"{}")
                    self._send(200, json.dumps({
                        "id": "msg_1", "type": "message", "role": "assistant", "model": request.get("model", "m"),
                        "content": [{"type": "text", "text": "Hello"}], "stop_reason": "end_turn", "stop_sequence": None,
                        "usage": {"input_tokens": 1, "output_tokens": 1},
                    }).encode())
                else:
                    self._send(200, json.dumps({
                        "method": self.command, "path": parts.path, "query": parse_qsl(parts.query, keep_blank_values=True),
                        "headers": headers, "body": body.decode("latin-1"),
                    }).encode())

            def _sse(self, now: List[bytes], gated: Optional[List[bytes]] = None) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()

                def chunk(data: bytes) -> None:
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()

                for data in now:
                    chunk(data)
                if gated:
                    # The rest only once the test has seen the first event arrive.
                    upstream.gate.wait(timeout=30)
                    for data in gated:
                        chunk(data)
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.host_port = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def last(self) -> Seen:
        return self.seen[-1]

    def close(self) -> None:
        self.server.shutdown()


class Gateway:
    """A real credgate process on port 0."""

    def __init__(self, *args: str, database_url: Optional[str] = None) -> None:
        binary = os.environ.get("CREDGATE_BIN")
        if not binary:
            raise RuntimeError("set CREDGATE_BIN to the credgate binary (the Rust test suite does)")
        self.dir = tempfile.mkdtemp(prefix="credgate-py-")
        command = [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", os.path.join(self.dir, "data"), *args]
        if database_url:
            command += ["--database-url", database_url]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CREDGATE_")}
        env["CREDGATE_LOG"] = "info"
        self.log = open(os.path.join(self.dir, "credgate.log"), "w+")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.log, env=env, text=True)
        address = None
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"credgate exited: {open(self.log.name).read()}")
            match = re.match(r"listening on (\S+)", line)
            if match:
                address = match.group(1)
                break
        if address is None:
            raise RuntimeError("credgate did not start")
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        self.url = f"http://{address}"
        with open(os.path.join(self.dir, "data", "admin-token")) as f:
            self.admin_token = f.read().strip()
        self.admin = httpx.Client(base_url=self.url, headers={"authorization": f"Bearer {self.admin_token}"}, trust_env=False)

    def post(self, path: str, body: Dict[str, Any]) -> Dict[str, Any]:
        r = self.admin.post(path, json=body)
        assert r.status_code in (200, 201), r.text
        return r.json()

    def principal(self, name: str) -> str:
        return self.post("/admin/v1/principals", {"kind": "agent", "name": name})["id"]

    def key(self, principal: str) -> str:
        return self.post(f"/admin/v1/principals/{principal}/keys", {})["key"]

    def secret(self, body: Dict[str, Any]) -> str:
        return self.post("/admin/v1/secrets", body)["id"]

    def grant(self, secret: str, principal: str, policy: Optional[Dict[str, Any]] = None) -> str:
        return self.post(f"/admin/v1/secrets/{secret}/grants", {"principal_id": principal, "grant_policy": policy or {}})["grant_id"]

    def close(self) -> None:
        self.admin.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


class S3:
    """s3s-fs, an S3-compatible server that verifies every signature."""

    def __init__(self, access_key: str, secret_key: str) -> None:
        binary = os.environ.get("CREDGATE_TEST_S3S_FS")
        if not binary:
            raise RuntimeError("set CREDGATE_TEST_S3S_FS to the s3s-fs binary (the Rust test suite does)")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.root = tempfile.mkdtemp(prefix="s3s-")
        self.process = subprocess.Popen(
            [binary, "--host", "127.0.0.1", "--port", str(port), "--access-key", access_key, "--secret-key", secret_key, self.root],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("s3s-fs did not start")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class OpenIdProvider:
    """The OpenID Provider test peer (tests/peers/oidc: oidc-provider), on port 0."""

    def __init__(self) -> None:
        here = os.path.dirname(os.path.abspath(__file__))
        self.peer = os.path.normpath(os.path.join(here, "..", "..", "..", "tests", "peers", "oidc"))
        self.process = subprocess.Popen(
            ["node", "server.mjs", "--port", "0"], cwd=self.peer, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        line = self.process.stdout.readline()
        match = re.match(r"listening on (\d+)", line)
        if not match:
            raise RuntimeError(f"the OpenID Provider said {line!r}")
        self.issuer = f"http://127.0.0.1:{match.group(1)}"

    def login(self, user: str) -> str:
        """An ID token for ``user``, from the provider's real authorization-code flow."""
        out = subprocess.run(
            ["node", "login.mjs", "--issuer", self.issuer, "--user", user], cwd=self.peer, capture_output=True, text=True, check=True
        )
        return out.stdout.strip()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)
