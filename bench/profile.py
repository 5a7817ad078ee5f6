#!/usr/bin/env python3
"""Where one scenario's CPU goes: credgate under a saturation load, profiled from outside.

    python3 bench/profile.py                  # S2 (native bearer): perf profile and system calls
    python3 bench/profile.py --grant wasm     # S3 (the openai template); sigv4 for S4
    python3 bench/profile.py --skip-strace    # the profile alone

The same processes and pinning as `bench/run.py` (the upstream and the load on core 0,
credgate on core 1, built with `bench/run.py` first). It records the credgate process with
`perf record --call-graph dwarf` during a saturation run, then prints the share of credgate's
CPU under each part of a call (inclusive: a sample counts for every part on its stack), and,
over a fixed number of calls under `strace -c -f`, the system calls per call. Needs perf and
strace (Debian's linux-perf and strace).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (bench/run.py: the processes, the upstream and the load)

# The parts of a call, as frame patterns. Inclusive, so they overlap (the audit's journal
# write is under both the audit and the file writes).
PARTS = [
    ("socket sends (the peer's loopback delivery and wake-up included)", r"tcp_sendmsg"),
    ("  of which waking the peer", r"sock_def_readable"),
    ("socket receives", r"tcp_recvmsg"),
    ("file writes (the audit journal)", r"^ksys_write$|^vfs_write$"),
    ("the call's audit on the request path", r"credgate::audit"),
    ("  of which the event's JSON", r"AuditEvent::body"),
    ("SQLite (the indexer's thread)", r"^sqlite3"),
    ("  of which WAL checkpoints", r"sqlite3WalCheckpoint|walCheckpoint"),
    ("the plugin (Wasm templates)", r"credgate::plugin"),
    ("  of which instantiation", r"instantiate|InstancePre"),
    ("SigV4 signing", r"aws_sigv4|credgate::inject::sigv4"),
    ("decryption of the credential", r"credential::decrypt"),
    ("hyper's HTTP/1 server (parse, encode)", r"role::Server"),
    ("hyper's HTTP/1 client (parse, encode)", r"role::Client"),
    ("the upstream client (pool, connection)", r"hyper_util::client"),
    ("tracing (spans, log lines)", r"^tracing|tracing_subscriber"),
    ("metrics", r"prometheus|credgate::metrics"),
    ("allocation (mimalloc)", r"^_?mi_"),
    ("copies (memmove)", r"memmove|memcpy"),
]

# Frames that only carry work for their caller: what `--callers` looks past.
PLUMBING = re.compile(r"^_?mi_|^__rust_|^alloc::|^core::|^<alloc::|^<core::|^std::|^<std::|^hashbrown|"
                      r"^<hashbrown|^__memmove|^__memcpy|^memcpy|^memmove|^malloc|^free|^realloc|^\[unknown\]|"
                      r"drop_in_place|^<T as |^bytes::|^<bytes::|^_ZN|^mimalloc")


def samples(script: str) -> tuple[list[list[str]], collections.Counter[str]]:
    """Each sample's frames (leaf first) and the threads' sample counts, from `perf script`."""
    out: list[list[str]] = []
    threads: collections.Counter[str] = collections.Counter()
    frames: list[str] | None = None
    for line in script.splitlines():
        if not line.strip():
            if frames is not None:
                out.append(frames)
            frames = None
        elif not line[0].isspace():
            threads[line.split()[0]] += 1
            frames = []
        elif frames is not None:
            m = re.match(r"\s*[0-9a-f]+ (.*) \((.*)\)\s*$", line)
            if m:
                frames.append(m.group(1))
    if frames is not None:
        out.append(frames)
    return out, threads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grant", default="bearer", choices=["bearer", "wasm", "sigv4", "limited", "redact"],
                    help="which of bench/run.py's grants to call (bearer: S2, wasm: S3, sigv4: S4)")
    ap.add_argument("--seconds", type=float, default=8.0, help="length of the recording")
    ap.add_argument("--calls", type=int, default=20000, help="calls made under strace")
    ap.add_argument("--skip-strace", action="store_true")
    ap.add_argument("--callers", action="append", default=[], metavar="REGEX",
                    help="also list the nearest credgate (or hyper, axum, tokio…) frames above samples that match "
                         "REGEX: who allocates, say, with '^_?mi_'")
    a = ap.parse_args()
    for tool in ("perf", *(() if a.skip_strace else ("strace",))):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed")

    tools = bench.ensure_tools(skip_build=True)
    work = Path(tempfile.mkdtemp(prefix="credgate-profile-"))
    os.chmod(work, 0o755)
    (work / "www").mkdir()
    procs: list[bench.Proc] = []
    try:
        up, tls_port, sse = bench.free_port(), bench.free_port(), bench.free_port()
        tls = bench.make_tls(work)
        conf = bench.UPSTREAM_CONF.format(port=up, www=work / "www", tls_port=tls_port, completion=bench.CHAT_COMPLETION,
                                          cert=tls["cert"], key=tls["key"])
        procs.append(bench.start_nginx("upstream", bench.LOAD_CORE, conf, work, tools["nginx"]))
        bench.wait_port(up, "upstream nginx")
        cg = bench.start_credgate("profile", tools["credgate"], work, up, sse, [])
        procs.append(cg.proc)
        sigv4 = a.grant == "sigv4"
        target = bench.Target(
            a.grant, a.grant, f"http://127.0.0.1:{cg.port}/v1/grants/{cg.grants[a.grant]}/{'bench/object' if sigv4 else 'v1/models'}",
            cg.proc, [f"proxy-authorization: Bearer {cg.key}"], "PUT" if sigv4 else "GET", bench.BODY_1K if sigv4 else None)
        bench.saturate(tools, target, 3.0, 64)

        data = work / "perf.data"
        perf = subprocess.Popen(["perf", "record", "-F", "2000", "-g", "--call-graph", "dwarf,32768", "-p", str(cg.proc.p.pid),
                                 "-o", str(data), "--", "sleep", str(a.seconds)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        load = bench.saturate(tools, target, a.seconds + 2.0, 64)
        perf.wait()
        script = subprocess.run(["perf", "script", "-i", str(data), "-F", "comm,tid,ip,sym,dso"],
                                capture_output=True, text=True).stdout
        found, threads = samples(script)
        n = max(len(found), 1)
        print(f"# {a.grant}: {load['rps']:,.0f} req/s at {load['cpu_us']:.1f} µs of CPU a call; {len(found):,} samples\n")
        print("| thread | share |\n|---|---:|")
        for name, count in threads.most_common(6):
            print(f"| {name} | {100 * count / n:.1f}% |")
        print("\n| part of a call | share of credgate's CPU | µs a call |\n|---|---:|---:|")
        for label, pattern in PARTS:
            rx = re.compile(pattern)
            share = sum(1 for frames in found if any(rx.search(f) for f in frames)) / n
            if share > 0:
                print(f"| {label} | {100 * share:.1f}% | {share * load['cpu_us']:.1f} |")

        for pattern in a.callers:
            rx = re.compile(pattern)
            owners: collections.Counter[str] = collections.Counter()
            for frames in found:
                at = next((i for i, f in enumerate(frames) if rx.search(f)), None)
                if at is None:
                    continue
                # The first frame above the match that is not plumbing (allocators, copies,
                # the standard library's collections and formatting, drop glue).
                owner = next((f for f in frames[at + 1:] if not PLUMBING.search(f)), "(none)")
                owners[owner] += 1
            total = sum(owners.values())
            print(f"\n| nearest caller of `{pattern}` | share of credgate's CPU | µs a call |\n|---|---:|---:|")
            for owner, count in owners.most_common(15):
                print(f"| `{owner[:110]}` | {100 * count / n:.1f}% | {count / n * load['cpu_us']:.2f} |")
            print(f"| all | {100 * total / n:.1f}% | {total / n * load['cpu_us']:.1f} |")

        if not a.skip_strace:
            counts = work / "strace.txt"
            trace = subprocess.Popen(["strace", "-c", "-f", "-o", str(counts), "-p", str(cg.proc.p.pid)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            cmd = ["taskset", "-c", bench.LOAD_CORE, tools["oha"], "--no-tui", "-n", str(a.calls), "-c", "64", "-m", target.method]
            for h in target.headers:
                cmd += ["-H", h]
            if target.body is not None:
                cmd += ["-d", target.body]
            subprocess.run([*cmd, target.url], stdout=subprocess.DEVNULL, check=True)
            time.sleep(1.0)
            trace.send_signal(2)
            trace.wait()
            print(f"\n| system call | per call (over {a.calls:,} calls) |\n|---|---:|")
            for line in counts.read_text().splitlines():
                cols = line.split()
                # % time, seconds, usecs/call, calls, [errors,] name
                if len(cols) >= 5 and cols[3].isdigit() and cols[-1] != "total":
                    calls = int(cols[3])
                    if calls / a.calls >= 0.01:
                        print(f"| {cols[-1]} | {calls / a.calls:.2f} |")
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
