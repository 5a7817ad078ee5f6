#!/usr/bin/env python3
"""credgate side by side with nginx and a direct call, on one machine over loopback.

    python3 bench/run.py                 # full run (about 6 minutes), writes BENCHMARKS.md
    python3 bench/run.py --quick         # short runs, to try the script; writes nothing
    python3 bench/run.py --litellm       # adds S8, LiteLLM beside credgate (installs it first)

The load generator (oha, from crates.io) and the upstreams are pinned to one core, the system
under test (nginx or credgate, and PostgreSQL in S5b) to the other. Scenarios are interleaved
round by round after a warm-up, and each figure is the median over the rounds.

  S0  direct to the upstream (the floor)
  S1  nginx reverse proxy adding a static Authorization header, upstream keep-alive, no log
  S1c Caddy (Debian's package), reverse_proxy with header_up Authorization, the same job
  Sh  a bare hyper proxy (bench/floor: hyper and tokio, one thread, the static header and
      nothing else): the floor of credgate's own stacks
  S2  credgate, native bearer (defaults: SQLite; each call's audit record appended to the
      local audit journal before the call is forwarded, surviving a crash of credgate, and
      copied into the database's hash chain right behind)
  S2r S2 under a grant rate limit it never reaches (the cost of counting)
  S3  credgate, a Wasm provider template (openai)
  S4  credgate, AWS SigV4 over a 1 KiB PUT body (payload hashed)
  S5  credgate with --fsync-commits: each audit record flushed to disk before the call goes on
      (journal writes flushed as a group commit)
  S5b credgate on PostgreSQL (synchronous_commit on), for reference
  S6  streaming: a 100 MiB response and a server-sent-event stream
  and an overload run at twice S2's saturation rate.

  S8  with --litellm: the LiteLLM proxy (from PyPI, the tool AI teams most often use to hold
      provider keys) against credgate's openai template, one OpenAI chat completion per call to
      the same fake OpenAI upstream (nginx answering a fixed completion), both on the system
      core, LiteLLM with one worker; req/s, CPU per call and the latency added over a direct
      call at 50 req/s. LiteLLM runs on its master key alone: its database layer needs Prisma
      engine binaries that no registry reachable here serves.

Needs: Linux with at least two cores, taskset, apt-get (for nginx and Caddy), cargo, a PostgreSQL on
127.0.0.1:5432 with trust auth for S5b (`--no-postgres` leaves S5b out).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

REPO = Path(__file__).resolve().parent.parent
TOOLS = Path.home() / ".cache" / "credgate" / "tools"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "credgate" / "target"))
OHA_VERSION = "1.16.0"
# S8's peer (the version the issue measured from outside; 1.110 moved its proxy into a package
# no reachable registry serves), installed into a virtual environment of its own under TOOLS.
LITELLM_VERSION = "1.108.7"
# S8's rate for latency: LiteLLM saturates near 100 calls a second on one core.
S8_RATE = 50.0
LOAD_CORE, SUT_CORE = "0", "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
BIG_MIB = 100
# The SigV4 scenario's body: 1 KiB, hashed into the signature.
BODY_1K = "x" * 1024
# BENCHMARKS.md keeps everything from this heading on across runs: the profile and its reading.
ANALYSIS = "## Where the time goes"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise SystemExit(f"{what} did not start listening on port {port}")


# ---------------------------------------------------------------------------------------------
# Tools


def debian_server(name: str, package: str, path: str) -> str:
    """A server from Debian's packages, installed if missing and stopped (the package starts a
    default server on port 80; the benchmark runs its own)."""
    found = shutil.which(name) or path
    if not Path(found).exists():
        log(f"installing {package} from Debian")
        run(["apt-get", "install", "-y", "-q", package], stdout=subprocess.DEVNULL)
        subprocess.run(["service", name, "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        found = path
    return found


CHAT_COMPLETION = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 8, "completion_tokens": 1, "total_tokens": 9},
}, separators=(",", ":"))
CHAT_REQUEST = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say ok."}]})


def ensure_litellm() -> str:
    """LiteLLM's proxy, pinned, in a virtual environment of its own (its many dependencies stay
    out of the system's Python)."""
    venv = TOOLS / f"litellm-{LITELLM_VERSION}"
    binary = venv / "bin" / "litellm"
    if not binary.exists():
        log(f"installing LiteLLM {LITELLM_VERSION} from PyPI into {venv}")
        run([sys.executable, "-m", "venv", str(venv)])
        run([str(venv / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"])
    return str(binary)


# One model, sent to the fake OpenAI upstream with the real key; callers hold only the master key.
LITELLM_CONF = """
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://127.0.0.1:{up}/v1
      api_key: bench-upstream-token
general_settings:
  master_key: sk-bench-master
"""


def start_litellm(core: str, work: Path, litellm: str, port: int, up: int) -> Proc:
    d = work / "litellm"
    d.mkdir(parents=True, exist_ok=True)
    conf = d / "config.yaml"
    conf.write_text(LITELLM_CONF.format(up=up))
    # No outside calls: the model price list is the packaged one, no telemetry.
    env = dict(os.environ, HOME=str(d), LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False",
               LITELLM_LOG="ERROR", NO_DOCS="True")
    env.pop("DATABASE_URL", None)
    return Proc("litellm", [litellm, "--config", str(conf), "--host", "127.0.0.1", "--port", str(port),
                            "--num_workers", "1"], core, env=env, cwd=d)


def ensure_tools(skip_build: bool) -> dict[str, str]:
    if shutil.which("taskset") is None:
        raise SystemExit("taskset is needed (util-linux)")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("two cores are needed: one for the load, one for the system under test")
    nginx = debian_server("nginx", "nginx-light", "/usr/sbin/nginx")
    caddy = debian_server("caddy", "caddy", "/usr/bin/caddy")
    oha = TOOLS / "bin" / "oha"
    if not oha.exists():
        log(f"building oha {OHA_VERSION} from crates.io into {TOOLS}")
        env = dict(os.environ, CARGO_TARGET_DIR=str(TOOLS / "target"))
        # Every call here is plain HTTP, but oha needs one TLS stack to build: the system's
        # OpenSSL (libssl-dev) builds quickest.
        if not Path("/usr/include/openssl/ssl.h").exists():
            run(["apt-get", "install", "-y", "-q", "libssl-dev", "pkg-config"], stdout=subprocess.DEVNULL)
        run(
            ["cargo", "install", "oha", "--version", OHA_VERSION, "--locked", "--no-default-features",
             "--features", "native-tls", "--root", str(TOOLS)],
            env=env,
        )
    if not skip_build:
        log("building credgate in release mode")
        run(["cargo", "build", "--release", "-p", "credgate", "--bin", "credgate"], cwd=REPO,
            env=dict(os.environ, CARGO_TARGET_DIR=str(TARGET)))
    floor_target = TARGET.parent / "floor"
    if not skip_build:
        log("building the bare hyper proxy (bench/floor)")
        run(["cargo", "build", "--release", "--manifest-path", str(REPO / "bench" / "floor" / "Cargo.toml")],
            env=dict(os.environ, CARGO_TARGET_DIR=str(floor_target)))
    floor = floor_target / "release" / "credgate-bench-floor"
    credgate = TARGET / "release" / "credgate"
    for built in (credgate, floor):
        if not built.exists():
            raise SystemExit(f"{built} is missing: build it or drop --skip-build")
    return {"nginx": nginx, "caddy": caddy, "oha": str(oha), "credgate": str(credgate), "floor": str(floor)}


def versions(tools: dict[str, str]) -> dict[str, str]:
    def out(cmd: list[str]) -> str:
        p = subprocess.run(cmd, capture_output=True, text=True)
        return (p.stdout + p.stderr).strip().splitlines()[0] if (p.stdout + p.stderr).strip() else "?"

    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{os.sysconf('SC_PHYS_PAGES') * PAGE // 2**30} GiB",
        "kernel": platform.release(),
        "credgate": f"{rev}{' (with uncommitted changes)' if dirty else ''}",
        "rustc": out(["rustc", "-V"]),
        "nginx": out([tools["nginx"], "-v"]),
        "oha": out([tools["oha"], "--version"]),
        "postgres": out(["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc", "show server_version", "postgres"]),
    }


# ---------------------------------------------------------------------------------------------
# Processes and their cost


class Proc:
    """A child process pinned to a core; its CPU time and memory are read from /proc."""

    def __init__(self, name: str, cmd: list[str], core: str, env: Optional[dict[str, str]] = None, cwd: Optional[Path] = None):
        self.name = name
        self.log = tempfile.NamedTemporaryFile(prefix=f"credgate-bench-{name}-", suffix=".log", delete=False)
        self.p = subprocess.Popen(
            ["taskset", "-c", core, *cmd], stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
            start_new_session=True,
        )

    def pids(self) -> list[int]:
        """The process and its descendants (nginx's workers)."""
        found = [self.p.pid]
        i = 0
        while i < len(found):
            with contextlib.suppress(OSError):
                kids = Path(f"/proc/{found[i]}/task/{found[i]}/children").read_text().split()
                found.extend(int(k) for k in kids)
            i += 1
        return found

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / CLK_TCK

    def cpu_ns(self) -> int:
        """CPU time to the nanosecond, summed over live threads (/proc/<pid>/task/*/schedstat):
        fine enough for one download, where the clock-tick figure above is not."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for task in Path(f"/proc/{pid}/task").iterdir():
                    with contextlib.suppress(OSError, ValueError, IndexError):
                        total += int((task / "schedstat").read_text().split()[0])
        return total

    def rss_kib(self) -> int:
        return sum(_status_kib(pid, "VmRSS") for pid in self.pids())

    def peak_rss_kib(self) -> int:
        return sum(_status_kib(pid, "VmHWM") for pid in self.pids())

    def stop(self) -> None:
        if self.p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()


def _status_kib(pid: int, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class PostgresCost:
    """PostgreSQL's own processes: pinned to the system-under-test core while S5b runs, and
    their CPU time counted with credgate's, since the durable audit is part of the call."""

    def __init__(self) -> None:
        self.pids: list[int] = []
        with contextlib.suppress(Exception):
            out = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout.split()
            self.pids = [int(p) for p in out]

    def pin(self, cores: str) -> None:
        for pid in self.pids:
            subprocess.run(["taskset", "-a", "-p", "-c", cores, str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def cpu_seconds(self) -> float:
        total = 0
        out = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout.split()
        for pid in out:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        return total / CLK_TCK


# ---------------------------------------------------------------------------------------------
# The upstreams and the proxies


NGINX_COMMON = """
user root;
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  sendfile on;
  tcp_nodelay on;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  {body}
}}
"""

UPSTREAM_CONF = """
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{ return 200 "ok\\n"; }}
    location = /big {{ root {www}; default_type application/octet-stream; }}
    # A fake OpenAI: one fixed chat completion, for S8 (LiteLLM parses what it forwards).
    location = /v1/chat/completions {{ default_type application/json; return 200 '{completion}'; }}
  }}
  # The same answer over TLS, for forward-proxy mode (S7): inside a tunnel credgate calls https.
  server {{
    listen 127.0.0.1:{tls_port} ssl backlog=4096;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    keepalive_requests 1000000;
    location / {{ return 200 "ok\\n"; }}
  }}
"""


def make_tls(work: Path) -> dict[str, Path]:
    """A throwaway CA and a certificate for localhost, for the TLS upstream of S7."""
    d = work / "tls"
    d.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run(["openssl", "req", "-x509", *ec, "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-days", "2",
         "-subj", "/CN=credgate bench CA"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run(["openssl", "req", *ec, "-keyout", str(d / "up.key"), "-out", str(d / "up.csr"), "-subj", "/CN=localhost"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run(["openssl", "x509", "-req", "-in", str(d / "up.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
         "-CAcreateserial", "-out", str(d / "up.pem"), "-days", "2", "-extfile", str(d / "san.ext")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {"ca": d / "ca.pem", "cert": d / "up.pem", "key": d / "up.key"}

# The best plain proxy a user could pick instead: static header, pooled upstream connections,
# no access log. Streaming locations do not buffer, as a gateway in front of SSE must not.
PROXY_CONF = """
  upstream up {{ server 127.0.0.1:{up}; keepalive 256; }}
  upstream sse {{ server 127.0.0.1:{sse}; keepalive 16; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Authorization "Bearer bench-upstream-token";
    location / {{ proxy_pass http://up; }}
    location = /big {{ proxy_pass http://up; proxy_buffering off; }}
    location /sse {{ proxy_pass http://sse; proxy_buffering off; }}
  }}
"""


# Caddy doing nginx's job: the static header, pooled upstream connections (its default), no
# access log (its default), no admin endpoint, no automatic HTTPS.
CADDY_CONF = """
{{
  admin off
  auto_https off
}}
http://127.0.0.1:{port} {{
  reverse_proxy 127.0.0.1:{up} {{
    header_up Authorization "Bearer bench-upstream-token"
  }}
}}
"""


def start_caddy(core: str, work: Path, caddy: str, port: int, up: int) -> Proc:
    d = work / "caddy"
    d.mkdir(parents=True, exist_ok=True)
    conf = d / "Caddyfile"
    conf.write_text(CADDY_CONF.format(port=port, up=up))
    env = dict(os.environ, HOME=str(d), XDG_DATA_HOME=str(d), XDG_CONFIG_HOME=str(d))
    return Proc("caddy", [caddy, "run", "--config", str(conf), "--adapter", "caddyfile"], core, env=env)


def start_nginx(name: str, core: str, body: str, work: Path, nginx: str) -> Proc:
    d = work / name
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    conf = d / "nginx.conf"
    conf.write_text(NGINX_COMMON.format(dir=d, body=body))
    return Proc(name, [nginx, "-p", str(d), "-c", str(conf)], core)


SSE_SERVER = r"""
import asyncio, sys, time
EVENTS, GAP = int(sys.argv[2]), float(sys.argv[3])
async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                return
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
                         b"transfer-encoding: chunked\r\n\r\n")
            for i in range(EVENTS):
                line = b"data: %d %d\n\n" % (i, time.monotonic_ns())
                writer.write(b"%x\r\n%s\r\n" % (len(line), line))
                await writer.drain()
                await asyncio.sleep(GAP)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


@dataclass
class Credgate:
    proc: Proc
    port: int
    key: str
    grants: dict[str, str]
    label: str


def admin(port: int, token: str, method: str, path: str, body: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return dict(json.loads(r.read() or b"{}"))
    except urllib.error.HTTPError as e:
        raise SystemExit(f"admin {method} {path}: {e.code} {e.read().decode(errors='replace')}") from e


def start_credgate(label: str, binary: str, work: Path, up: int, sse: int, extra: list[str],
                   tls_up: Optional[int] = None) -> Credgate:
    port = free_port()
    data = work / f"credgate-{label}"
    args = [binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data), "--max-in-flight", "512", *extra]
    # Default settings otherwise (log level info included), as an operator would run it.
    proc = Proc(f"credgate-{label}", args, SUT_CORE)
    wait_port(port, f"credgate ({label})")
    token = (data / "admin-token").read_text().strip()
    agent = admin(port, token, "POST", "/admin/v1/principals", {"kind": "agent", "name": "bench"})["id"]
    key = admin(port, token, "POST", f"/admin/v1/principals/{agent}/keys", {})["key"]

    def grant(body: dict[str, Any], policy: dict[str, Any] | None = None) -> str:
        body = dict(body, allow_private_destinations=True, allow_insecure_http=True)
        secret = admin(port, token, "POST", "/admin/v1/secrets", body)["id"]
        return str(admin(port, token, "POST", f"/admin/v1/secrets/{secret}/grants",
                         {"principal_id": agent, "grant_policy": policy or {}})["grant_id"])

    base = f"http://127.0.0.1:{up}"
    grants = {
        "bearer": grant({"name": "bearer", "type": "bearer", "credential": {"token": "bench-upstream-token"}, "config": {"base_url": base}}),
        "wasm": grant({"name": "openai", "type": "openai", "credential": {"token": "bench-upstream-token"}, "config": {"base_url": base}}),
        "sigv4": grant({
            "name": "s3", "type": "aws_sigv4",
            "credential": {"access_key_id": "AKIDBENCHMARK", "secret_access_key": "bench/secret/key"},
            "config": {"base_url": base, "region": "us-east-1", "service": "s3"},
        }),
        # The same bearer secret with response bodies scrubbed: the cost of `redact_responses`.
        "redact": grant({"name": "redact", "type": "bearer", "credential": {"token": "bench-upstream-token"},
                         "config": {"base_url": base}, "redact_responses": True}),
        "sse": grant({"name": "sse", "type": "bearer", "credential": {"token": "bench-upstream-token"}, "config": {"base_url": f"http://127.0.0.1:{sse}"}}),
        # S2 under a rate limit it never reaches (a million calls a second): the cost of counting.
        "limited": grant({"name": "limited", "type": "bearer", "credential": {"token": "bench-upstream-token"}, "config": {"base_url": base}},
                         {"rate_limit": {"requests": 1000000, "per_seconds": 1}}),
    }
    if tls_up:
        # Forward-proxy mode (S7): the one grant that allows the TLS upstream's host.
        grants["forward"] = grant({"name": "forward", "type": "bearer", "credential": {"token": "bench-upstream-token"},
                                   "allowed_hosts": [f"localhost:{tls_up}"]})
    return Credgate(proc, port, key, grants, label)


# ---------------------------------------------------------------------------------------------
# Load


@dataclass
class Target:
    """One scenario: where the load goes and which process pays for it."""

    name: str
    title: str
    url: str
    sut: Optional[Proc]
    headers: list[str] = field(default_factory=list)
    method: str = "GET"
    body: Optional[str] = None
    extra_cpu: Optional[Callable[[], float]] = None
    runs: list[dict[str, float]] = field(default_factory=list)
    #: More oha arguments (the forward proxy and its credentials).
    oha_args: list[str] = field(default_factory=list)


def oha(tools: dict[str, str], t: Target, seconds: float, conns: int, rate: Optional[float] = None) -> dict[str, Any]:
    # The breakdown gives the refusals' own latency in the overload run.
    cmd = ["taskset", "-c", LOAD_CORE, tools["oha"], "--no-tui", "--output-format", "json", "-z", f"{seconds}s",
           "-c", str(conns), "--wait-ongoing-requests-after-deadline", "--stats-success-breakdown", "-m", t.method]
    if rate:
        cmd += ["-q", str(rate), "--latency-correction"]
    cmd += t.oha_args
    for h in t.headers:
        cmd += ["-H", h]
    if t.body is not None:
        cmd += ["-d", t.body]
    cmd.append(t.url)
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"oha failed on {t.name}: {out.stderr}")
    return dict(json.loads(out.stdout))


def errors_of(r: dict[str, Any]) -> int:
    bad = sum(n for code, n in r.get("statusCodeDistribution", {}).items() if not code.startswith("2"))
    return bad + sum(r.get("errorDistribution", {}).values())


def requests_of(r: dict[str, Any]) -> int:
    return sum(r.get("statusCodeDistribution", {}).values()) + sum(r.get("errorDistribution", {}).values())


def saturate(tools: dict[str, str], t: Target, seconds: float, conns: int) -> dict[str, float]:
    cpu0 = t.sut.cpu_seconds() if t.sut else 0.0
    extra0 = t.extra_cpu() if t.extra_cpu else 0.0
    r = oha(tools, t, seconds, conns)
    cpu = (t.sut.cpu_seconds() - cpu0) if t.sut else 0.0
    extra = (t.extra_cpu() - extra0) if t.extra_cpu else 0.0
    n = max(requests_of(r), 1)
    return {
        "rps": float(r["summary"]["requestsPerSec"]),
        "cpu_us": (cpu + extra) * 1e6 / n,
        "errors": float(errors_of(r)),
    }


def fixed_rate(tools: dict[str, str], t: Target, seconds: float, rate: float) -> dict[str, float]:
    """Latency at a fixed open-loop rate, and CPU per call at that rate: every proxy then does
    the same calls a second, so its peers are as idle for each (at saturation a faster proxy
    keeps its peers busier, and waking an idle peer costs the sender more on a virtual machine)."""
    # To the nanosecond (a few thousand calls: clock ticks would round to 10 ms).
    cpu0 = t.sut.cpu_ns() if t.sut else 0
    extra0 = t.extra_cpu() if t.extra_cpu else 0.0
    r = oha(tools, t, seconds, 32, rate)
    cpu = (t.sut.cpu_ns() - cpu0) / 1e9 if t.sut else 0.0
    extra = (t.extra_cpu() - extra0) if t.extra_cpu else 0.0
    p = r["latencyPercentiles"]
    return {"p50": p["p50"] * 1e6, "p99": p["p99"] * 1e6, "p999": p["p99.9"] * 1e6, "lat_errors": float(errors_of(r)),
            "rate_cpu_us": (cpu + extra) * 1e6 / max(requests_of(r), 1)}


# ---------------------------------------------------------------------------------------------
# Streaming


def stream_big(port: int, path: str, headers: dict[str, str], sut: Optional[Proc]) -> dict[str, float]:
    """Downloads the 100 MiB body; time to first byte, throughput, the proxy's RSS growth and its
    CPU time per MiB."""
    idle = sut.rss_kib() if sut else 0
    cpu_before = sut.cpu_ns() if sut else 0
    peak = [idle]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            if sut:
                peak[0] = max(peak[0], sut.rss_kib())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.perf_counter()
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    first = resp.read(1)
    ttfb = time.perf_counter() - t0
    total = len(first)
    while chunk := resp.read(1 << 20):
        total += len(chunk)
    elapsed = time.perf_counter() - t0
    cpu = (sut.cpu_ns() - cpu_before) / 1e9 if sut else 0.0
    stop.set()
    sampler.join()
    conn.close()
    if resp.status != 200 or total != BIG_MIB << 20:
        raise SystemExit(f"100 MiB download via port {port}: status {resp.status}, {total} bytes")
    return {"ttfb_ms": ttfb * 1e3, "mib_s": total / 2**20 / elapsed, "rss_growth_mib": (peak[0] - idle) / 1024,
            "cpu_ms_per_mib": cpu * 1e3 / (total / 2**20)}


def stream_sse(port: int, path: str, headers: dict[str, str], events: int) -> dict[str, float]:
    """Reads the event stream; time to the first event and how late each event arrives."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.perf_counter()
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    lags: list[float] = []
    first = 0.0
    buf = b""
    while len(lags) < events:
        chunk = resp.read1(65536)
        if not chunk:
            break
        now = time.monotonic_ns()
        if not lags:
            first = time.perf_counter() - t0
        buf += chunk
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            sent = int(ev.split()[-1])
            lags.append((now - sent) / 1e6)
    conn.close()
    if resp.status != 200 or len(lags) != events:
        raise SystemExit(f"event stream via port {port}: status {resp.status}, {len(lags)} of {events} events")
    lags.sort()
    return {"first_ms": first * 1e3, "lag_p50_ms": lags[len(lags) // 2], "lag_p99_ms": lags[int(len(lags) * 0.99)]}


# ---------------------------------------------------------------------------------------------
# Report


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt_int(v: float) -> str:
    return f"{v:,.0f}"


def measure(a: argparse.Namespace, tools: dict[str, str], targets: list[Target], rate: float, latency_seconds: float,
            label: str = "") -> None:
    """A warm-up, then the rounds: each target's saturation run and its run at `rate`,
    interleaved round by round, into each target's `runs`."""
    log(f"{label}warm-up")
    for t in targets:
        saturate(tools, t, 2.0, a.connections)
    for rnd in range(a.rounds):
        for t in targets:
            log(f"{label}round {rnd + 1}/{a.rounds}: {t.name} {t.title}")
            sat = saturate(tools, t, a.seconds, a.connections)
            lat = fixed_rate(tools, t, latency_seconds, rate)
            t.runs.append({**sat, **lat})


def summary(t: Target) -> dict[str, float]:
    """A target's medians over its rounds, its errors summed, its process's peak memory."""
    row = {k: med([r[k] for r in t.runs]) for k in t.runs[0]}
    row["errors"] = sum(r["errors"] + r["lat_errors"] for r in t.runs)
    row["peak_rss_mib"] = (t.sut.peak_rss_kib() if t.sut else 0) / 1024
    return row


def run_s8(a: argparse.Namespace, tools: dict[str, str], work: Path, procs: list[Proc], upstream: Proc, up_port: int,
           cg: Credgate) -> dict[str, dict[str, float]]:
    """S8: one chat completion per call, direct, through credgate's openai template and through
    LiteLLM. LiteLLM starts only now, so its background work never shares the core with the
    other scenarios."""
    port = free_port()
    litellm = start_litellm(SUT_CORE, work, tools["litellm"], port, up_port)
    procs.append(litellm)
    wait_port(port, "LiteLLM", timeout=180)
    json_body = "content-type: application/json"
    targets = [
        Target("S8d", "direct", f"http://127.0.0.1:{up_port}/v1/chat/completions", upstream, ["authorization: Bearer bench-upstream-token", json_body],
               "POST", CHAT_REQUEST),
        Target("S8c", "credgate, openai template", f"http://127.0.0.1:{cg.port}/v1/grants/{cg.grants['wasm']}/v1/chat/completions", cg.proc,
               [f"proxy-authorization: Bearer {cg.key}", json_body], "POST", CHAT_REQUEST),
        Target("S8l", f"LiteLLM {LITELLM_VERSION}, master key", f"http://127.0.0.1:{port}/v1/chat/completions",
               litellm, ["authorization: Bearer sk-bench-master", json_body], "POST", CHAT_REQUEST),
    ]
    # Twice as long at the latency rate: 50 calls a second give few samples for a p99.
    measure(a, tools, targets, S8_RATE, 2 * a.seconds, "S8 ")
    litellm.stop()
    return {t.title: summary(t) for t in targets}


def render_s8(s8: dict[str, dict[str, float]]) -> list[str]:
    direct = s8["direct"]
    litellm = next(r for name, r in s8.items() if name.startswith("LiteLLM"))
    out = ["", "## LiteLLM beside credgate (S8)", "",
           f"One OpenAI chat completion per call (`POST /v1/chat/completions`, the fake upstream answers a fixed "
           f"completion), each proxy alone on the system core: req/s and CPU at saturation, latency at {S8_RATE:g} req/s "
           "open-loop. LiteLLM runs one worker on its master key alone (no database: its Prisma engine binaries are not "
           "served by any registry reachable here), so it keeps no spend log; credgate audits every call as in S2.", "",
           "| path | req/s | × LiteLLM | CPU µs/call | × LiteLLM CPU | p50 µs | p99 µs | p50 − direct µs | peak RSS MiB | errors |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in s8.items():
        out.append(f"| {name} | {fmt_int(r['rps'])} | {r['rps'] / litellm['rps']:.1f} | {r['cpu_us']:,.1f} | "
                   f"{r['cpu_us'] / litellm['cpu_us']:.3f} | {r['p50']:,.0f} | {r['p99']:,.0f} | {r['p50'] - direct['p50']:+,.0f} | "
                   f"{r['peak_rss_mib']:.1f} | {r['errors']:.0f} |")
    out += ["", "CPU µs/call for the direct row is the upstream's; peak RSS is each process's over the whole run "
            "(credgate's includes every scenario above, S6's streams among them).", ""]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs to try the script; BENCHMARKS.md is not written")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each load run")
    ap.add_argument("--connections", type=int, default=64, help="connections at saturation")
    ap.add_argument("--rate", type=float, default=1000.0, help="open-loop rate for the latency runs")
    ap.add_argument("--skip-build", action="store_true", help="use the release binary already built")
    ap.add_argument("--no-postgres", action="store_true", help="leave S5b out")
    ap.add_argument("--litellm", action="store_true", help=f"add S8: LiteLLM {LITELLM_VERSION} beside credgate")
    ap.add_argument("--out", default=str(REPO / "BENCHMARKS.md"))
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.seconds = 1, 2.0

    tools = ensure_tools(a.skip_build)
    if a.litellm:
        tools["litellm"] = ensure_litellm()
    info = versions(tools)
    work = Path(tempfile.mkdtemp(prefix="credgate-bench-"))
    www = work / "www"
    www.mkdir()
    with open(www / "big", "wb") as f:
        f.write(os.urandom(1 << 20) * BIG_MIB)
    os.chmod(work, 0o755)

    procs: list[Proc] = []
    pg = PostgresCost()
    database_url = None
    try:
        up_port, sse_port, px_port = free_port(), free_port(), free_port()
        tls_port, fwd_port = free_port(), free_port()
        tls = make_tls(work)
        sse_events = 500 if not a.quick else 100
        upstream_conf = UPSTREAM_CONF.format(port=up_port, www=www, tls_port=tls_port, completion=CHAT_COMPLETION,
                                             cert=tls["cert"], key=tls["key"])
        upstream = start_nginx("upstream", LOAD_CORE, upstream_conf, work, tools["nginx"])
        procs.append(upstream)
        sse_script = work / "sse.py"
        sse_script.write_text(SSE_SERVER)
        procs.append(Proc("sse", [sys.executable, str(sse_script), str(sse_port), str(sse_events), "0.004"], LOAD_CORE))
        proxy = start_nginx("nginx", SUT_CORE, PROXY_CONF.format(port=px_port, up=up_port, sse=sse_port), work, tools["nginx"])
        procs.append(proxy)
        caddy_port, floor_port = free_port(), free_port()
        caddy = start_caddy(SUT_CORE, work, tools["caddy"], caddy_port, up_port)
        procs.append(caddy)
        floor = Proc("floor", [tools["floor"], f"127.0.0.1:{floor_port}", f"127.0.0.1:{up_port}", "bench-upstream-token"],
                     SUT_CORE)
        procs.append(floor)
        for port, what in ((up_port, "upstream nginx"), (tls_port, "TLS upstream nginx"), (sse_port, "SSE upstream"),
                           (px_port, "nginx proxy"), (caddy_port, "Caddy proxy"), (floor_port, "bare hyper proxy")):
            wait_port(port, what)

        cg = start_credgate("sqlite", tools["credgate"], work, up_port, sse_port,
                            ["--proxy-listen", f"127.0.0.1:{fwd_port}", "--upstream-ca-file", str(tls["ca"])], tls_port)
        procs.append(cg.proc)
        cg_fsync = start_credgate("fsync", tools["credgate"], work, up_port, sse_port, ["--fsync-commits"])
        procs.append(cg_fsync.proc)
        cg_pg = None
        if not a.no_postgres:
            run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", "DROP DATABASE IF EXISTS credgate_bench", "postgres"])
            run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", "CREATE DATABASE credgate_bench", "postgres"])
            database_url = "postgres://postgres@127.0.0.1:5432/credgate_bench"
            pg.pin(SUT_CORE)
            cg_pg = start_credgate("postgres", tools["credgate"], work, up_port, sse_port, ["--database-url", database_url])
            procs.append(cg_pg.proc)

        def via(c: Credgate, grant: str, path: str) -> str:
            return f"http://127.0.0.1:{c.port}/v1/grants/{c.grants[grant]}/{path}"

        auth = [f"proxy-authorization: Bearer {cg.key}"]
        targets = [
            Target("S0", "direct to the upstream", f"http://127.0.0.1:{up_port}/v1/models", upstream,
                   ["authorization: Bearer bench-upstream-token"]),
            Target("S1", "nginx, static bearer header", f"http://127.0.0.1:{px_port}/v1/models", proxy),
            Target("S1c", "Caddy, static bearer header", f"http://127.0.0.1:{caddy_port}/v1/models", caddy),
            Target("Sh", "bare hyper proxy, static bearer header", f"http://127.0.0.1:{floor_port}/v1/models", floor),
            Target("S2", "credgate, native bearer", via(cg, "bearer", "v1/models"), cg.proc, auth),
            Target("S2r", "credgate, native bearer, rate limit never hit", via(cg, "limited", "v1/models"), cg.proc, auth),
            Target("S3", "credgate, Wasm template (openai)", via(cg, "wasm", "v1/models"), cg.proc, auth),
            Target("S4", "credgate, SigV4, 1 KiB PUT", via(cg, "sigv4", "bench/object"), cg.proc, auth, "PUT", BODY_1K),
        ]
        targets.append(Target("S5", "credgate, --fsync-commits", via(cg_fsync, "bearer", "v1/models"), cg_fsync.proc,
                              [f"proxy-authorization: Bearer {cg_fsync.key}"]))
        if cg_pg:
            targets.append(Target("S5b", "credgate on PostgreSQL", via(cg_pg, "bearer", "v1/models"), cg_pg.proc,
                                  [f"proxy-authorization: Bearer {cg_pg.key}"], extra_cpu=pg.cpu_seconds))
        # Forward-proxy mode: oha through credgate's proxy (CONNECT, TLS ended with credgate's CA,
        # which oha is told not to check: verification is the client's cost, not credgate's).
        forward = ["-x", f"http://127.0.0.1:{fwd_port}", "--proxy-header", f"proxy-authorization: Bearer {cg.key}", "--insecure"]
        targets.append(Target("S7", "credgate, forward proxy (kept-alive tunnels)", f"https://localhost:{tls_port}/v1/models",
                              cg.proc, oha_args=forward))

        measure(a, tools, targets, a.rate, a.seconds)
        rows = {t.name: summary(t) for t in targets}

        log("S7: a new tunnel per call")
        s7 = next(t for t in targets if t.name == "S7")
        fresh = Target("S7new", "new tunnel per call", s7.url, cg.proc, oha_args=[*s7.oha_args, "--disable-keepalive"])
        tunnel_runs = [saturate(tools, fresh, a.seconds, a.connections) for _ in range(a.rounds)]
        rows["S7new"] = {k: med([r[k] for r in tunnel_runs]) for k in tunnel_runs[0]}

        log("S6: streaming")
        big_paths = [
            ("direct", up_port, "/big", {}, upstream),
            ("nginx", px_port, "/big", {}, proxy),
            ("credgate", cg.port, f"/v1/grants/{cg.grants['bearer']}/big", {"proxy-authorization": f"Bearer {cg.key}"}, cg.proc),
            ("credgate, redact_responses", cg.port, f"/v1/grants/{cg.grants['redact']}/big",
             {"proxy-authorization": f"Bearer {cg.key}"}, cg.proc),
        ]
        big: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in big_paths}
        for _ in range(a.rounds):
            for name, port, path, headers, sut in big_paths:
                big[name].append(stream_big(port, path, headers, sut))
        sse_paths = [
            ("direct", sse_port, "/sse", {}),
            ("nginx", px_port, "/sse", {}),
            ("credgate", cg.port, f"/v1/grants/{cg.grants['sse']}/sse", {"proxy-authorization": f"Bearer {cg.key}"}),
        ]
        sse: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in sse_paths}
        for _ in range(a.rounds):
            for name, port, path, headers in sse_paths:
                sse[name].append(stream_sse(port, path, headers, sse_events))

        log("overload: twice S2's saturation rate, then back to the latency rate")
        s2 = next(t for t in targets if t.name == "S2")
        idle_rss = cg.proc.rss_kib()
        peak = [idle_rss]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], cg.proc.rss_kib())
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        over = oha(tools, s2, a.seconds * 2, 2048, rows["S2"]["rps"] * 2)
        stop.set()
        sampler.join()
        after = oha(tools, s2, a.seconds, 32, a.rate)
        codes = over.get("statusCodeDistribution", {})
        overload = {
            "offered": rows["S2"]["rps"] * 2,
            "served_ok": codes.get("200", 0) / over["summary"]["total"],
            "shed": codes.get("503", 0),
            "other_errors": errors_of(over) - codes.get("503", 0),
            "total": requests_of(over),
            "peak_rss_growth_mib": (peak[0] - idle_rss) / 1024,
            "after_p50_us": after["latencyPercentiles"]["p50"] * 1e6,
            "after_p99_us": after["latencyPercentiles"]["p99"] * 1e6,
            "after_errors": errors_of(after),
        }
        fast = over.get("latencyPercentilesNotSuccessful") or {}
        served = over.get("latencyPercentilesSuccessful") or {}
        overload["shed_p50_us"] = fast["p50"] * 1e6 if "p50" in fast else float("nan")
        overload["served_p50_us"] = served["p50"] * 1e6 if "p50" in served else float("nan")

        s8: dict[str, dict[str, float]] = {}
        if a.litellm:
            s8 = run_s8(a, tools, work, procs, upstream, up_port, cg)
    finally:
        for p in reversed(procs):
            p.stop()
        if database_url:
            pg.pin(f"0-{(os.cpu_count() or 2) - 1}")
            subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", "DROP DATABASE IF EXISTS credgate_bench", "postgres"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)

    report = render(a, info, targets, rows, big, sse, overload, sse_events, s8)
    print(report)
    if not a.quick:
        # The hand-written analysis at the end of the file stays; the measured part is replaced.
        out = Path(a.out)
        old = out.read_text() if out.exists() else ""
        kept = old[old.index(ANALYSIS):] if ANALYSIS in old else ""
        out.write_text(report + ("\n" + kept if kept else ""))
        log(f"wrote {a.out}")


def render(a: argparse.Namespace, info: dict[str, str], targets: list[Target], rows: dict[str, dict[str, float]],
           big: dict[str, list[dict[str, float]]], sse: dict[str, list[dict[str, float]]], overload: dict[str, float],
           sse_events: int, s8: dict[str, dict[str, float]]) -> str:
    s0, s1 = rows["S0"], rows["S1"]
    out = ["# Benchmarks", ""]
    out.append(f"Measured {time.strftime('%Y-%m-%d')} with `python3 bench/run.py` ({a.rounds} rounds, {a.seconds:g} s per run, "
               f"{a.connections} connections at saturation, {a.rate:g} req/s open-loop for latency, latency corrected for "
               "coordinated omission). Load generator and upstreams on core 0, the system under test on core 1 "
               "(PostgreSQL too, in S5b). Medians over the rounds.")
    out.append("")
    for k, v in info.items():
        out.append(f"- {k}: {v}")
    out += ["", "## Request path", "",
            "| | scenario | req/s | × S1 | × S0 | p50 µs | p99 µs | p99.9 µs | p50 − S0 µs | CPU µs/req | CPU × S1 | CPU µs/req at the latency rate | peak RSS MiB | errors |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for t in targets:
        r = rows[t.name]
        out.append(
            f"| {t.name} | {t.title} | {fmt_int(r['rps'])} | {r['rps'] / s1['rps']:.2f} | {r['rps'] / s0['rps']:.2f} | "
            f"{r['p50']:.0f} | {r['p99']:.0f} | {r['p999']:.0f} | {r['p50'] - s0['p50']:+.0f} | {r['cpu_us']:.1f} | "
            f"{r['cpu_us'] / s1['cpu_us']:.2f} | {r['rate_cpu_us']:.1f} | {r['peak_rss_mib']:.1f} | {r['errors']:.0f} |")
    out += ["", "CPU µs/req is the user+system time of the process under test (S0: the upstream; S1: nginx's master and "
            "worker; S1c: Caddy; Sh: the bare hyper proxy; S5b: credgate plus every PostgreSQL process) divided by the requests of the saturation run; "
            f"at the latency rate, by the requests of the {a.rate:g} req/s run, where every proxy makes the same calls a second "
            "(at saturation a faster proxy keeps its peers busier, and on a virtual machine waking an idle peer costs the sender more).", ""]
    if "S7" in rows and "S7new" in rows:
        s7, fresh = rows["S7"], rows["S7new"]
        out += [f"S7 is S2's call through the forward proxy: the client opens a tunnel (`CONNECT`), credgate ends its TLS "
                f"with a leaf certificate from its own CA and calls the upstream over TLS (nginx, `ssl`), {a.connections} "
                f"tunnels kept alive. With a new tunnel for every call (CONNECT, a TLS handshake with the cached leaf "
                f"certificate, one request), credgate served {fmt_int(fresh['rps'])} calls per second at "
                f"{fresh['cpu_us']:.1f} µs of CPU each: a new tunnel costs {fresh['cpu_us'] - s7['cpu_us']:.1f} µs of "
                "credgate's CPU more than a call in a kept-alive one.", ""]

    out += ["## Streaming (S6)", "",
            f"| path | 100 MiB: first byte ms | MiB/s | proxy RSS growth MiB | proxy CPU ms/MiB | SSE ({sse_events} events, 4 ms apart): first event ms | lag p50 ms | lag p99 ms |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in big:
        b = {k: med([r[k] for r in big[name]]) for k in big[name][0]}
        growth = "–" if name == "direct" else f"{b['rss_growth_mib']:.1f}"
        cpu = "–" if name == "direct" else f"{b['cpu_ms_per_mib']:.2f}"
        if name in sse:
            e = {k: med([r[k] for r in sse[name]]) for k in sse[name][0]}
            events = f"{e['first_ms']:.2f} | {e['lag_p50_ms']:.2f} | {e['lag_p99_ms']:.2f}"
        else:
            events = "– | – | –"
        out.append(f"| {name} | {b['ttfb_ms']:.2f} | {b['mib_s']:,.0f} | {growth} | {cpu} | {events} |")
    plain = med([r["cpu_ms_per_mib"] for r in big["credgate"]])
    scrubbed = med([r["cpu_ms_per_mib"] for r in big["credgate, redact_responses"]])
    out += ["", f"`redact_responses` (response bodies scrubbed as they stream) costs {scrubbed - plain:.3f} ms of credgate's "
            f"CPU per MiB over the same download unscrubbed ({scrubbed:.3f} against {plain:.3f} ms/MiB; the body is random "
            "bytes); response headers are scrubbed on every call, and are part of S2."]

    if s8:
        out += render_s8(s8)

    o = overload
    out += ["", "## Past saturation", "",
            f"S2 offered {fmt_int(o['offered'])} req/s open-loop (twice its saturation rate) over 2048 connections, "
            f"credgate at `--max-in-flight 512`: {fmt_int(o['total'])} requests, {o['served_ok']:,.0f} answered 200 per second, "
            f"{fmt_int(o['shed'])} shed with `overloaded` (p50 of the refusals {o['shed_p50_us']:.0f} µs, of the answered calls "
            f"{o['served_p50_us']:.0f} µs; both include the wait in the kernel's accept and socket queues), "
            f"{fmt_int(o['other_errors'])} other errors; credgate's RSS grew {o['peak_rss_growth_mib']:.1f} MiB. "
            f"Right after, at {a.rate:g} req/s: p50 {o['after_p50_us']:.0f} µs, p99 {o['after_p99_us']:.0f} µs, "
            f"{o['after_errors']:.0f} errors.", ""]

    def check(label: str, ok: bool, detail: str) -> str:
        return f"| {label} | {detail} | {'met' if ok else '**not met**'} |"

    s2 = rows["S2"]
    cg_big = {k: med([r[k] for r in big["credgate"]]) for k in big["credgate"][0]}
    ng_big = {k: med([r[k] for r in big["nginx"]]) for k in big["nginx"][0]}
    cg_sse = med([r["first_ms"] for r in sse["credgate"]])
    ng_sse = med([r["first_ms"] for r in sse["nginx"]])
    out += ["## Targets", "", "| target | measured | |", "|---|---|---|"]
    out.append(check("S2 ≥ 0.9× nginx req/s", s2["rps"] >= 0.9 * s1["rps"], f"{s2['rps'] / s1['rps']:.2f}×"))
    out.append(check("S2 ≤ 1.2× nginx CPU/req", s2["cpu_us"] <= 1.2 * s1["cpu_us"], f"{s2['cpu_us'] / s1['cpu_us']:.2f}×"))
    out.append(check("S2 p50 ≤ S0 + 50 µs at 1,000 req/s", s2["p50"] - s0["p50"] <= 50, f"{s2['p50'] - s0['p50']:+.0f} µs"))
    if "S2r" in rows:
        out.append(check("S2r ≤ S2 + 2 µs CPU/req (a rate limit never hit)", rows["S2r"]["cpu_us"] - s2["cpu_us"] <= 2.0,
                         f"{rows['S2r']['cpu_us'] - s2['cpu_us']:+.1f} µs"))
    if "S7" in rows:
        out.append(check("S7 ≤ 1.15× S2 CPU/req", rows["S7"]["cpu_us"] <= 1.15 * s2["cpu_us"],
                         f"{rows['S7']['cpu_us'] / s2['cpu_us']:.2f}×"))
    # Round 2's targets, against credgate's own floor (Sh, the bare hyper proxy) and nginx.
    if "Sh" in rows:
        sh = rows["Sh"]
        out.append(check("S2 ≤ 2× the bare hyper proxy's CPU/req", s2["cpu_us"] <= 2 * sh["cpu_us"],
                         f"{s2['cpu_us'] / sh['cpu_us']:.2f}× ({s2['cpu_us']:.1f} against {sh['cpu_us']:.1f} µs; "
                         f"{s2['rate_cpu_us'] / sh['rate_cpu_us']:.2f}× at {a.rate:g} req/s)"))
    out.append(check("S2 p99 ≤ 1.5× nginx's at the latency rate", s2["p99"] <= 1.5 * s1["p99"], f"{s2['p99'] / s1['p99']:.2f}×"))
    out.append(check("S2 added p50 ≤ nginx's added p50 + 50 µs", s2["p50"] - s1["p50"] <= 50,
                     f"{s2['p50'] - s0['p50']:+.0f} against {s1['p50'] - s0['p50']:+.0f} µs"))
    for name, limit in (("S3", 8.0), ("S4", 12.0)):
        if name in rows:
            out.append(check(f"{name} − S2 ≤ {limit:g} µs CPU/req", rows[name]["cpu_us"] - s2["cpu_us"] <= limit,
                             f"{rows[name]['cpu_us'] - s2['cpu_us']:+.1f} µs"))
    for name, ratio in (("S3", 0.95), ("S4", 0.9), ("S5", 0.85)):
        if name in rows:
            out.append(check(f"{name} ≥ {ratio}× S2 req/s", rows[name]["rps"] >= ratio * s2["rps"], f"{rows[name]['rps'] / s2['rps']:.2f}×"))
    ttfb_gap = max(cg_big["ttfb_ms"] - ng_big["ttfb_ms"], cg_sse - ng_sse)
    out.append(check("S6 first byte within 1 ms of nginx", ttfb_gap <= 1.0, f"{ttfb_gap:+.2f} ms (worst of 100 MiB and SSE)"))
    out.append(check("S6 RSS growth < 10 MiB over 100 MiB", cg_big["rss_growth_mib"] < 10, f"{cg_big['rss_growth_mib']:.1f} MiB"))
    # Fast: a refusal takes well under the time of an answered call in the same run.
    out.append(check("overload: fast errors, bounded memory, recovers",
                     o["shed"] > 0 and o["other_errors"] == 0 and o["after_errors"] == 0 and o["peak_rss_growth_mib"] < 256
                     and o["shed_p50_us"] < 0.5 * o["served_p50_us"],
                     f"{fmt_int(o['shed'])} shed at p50 {o['shed_p50_us'] / 1e3:.1f} ms (answered: {o['served_p50_us'] / 1e3:.1f} ms), "
                     f"{fmt_int(o['other_errors'])} other errors, +{o['peak_rss_growth_mib']:.0f} MiB, {o['after_errors']:.0f} errors after"))
    total_errors = sum(r.get("errors", 0) for r in rows.values())
    out.append(check("no errors under load", total_errors == 0, f"{total_errors:.0f}"))
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    main()
