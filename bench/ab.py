#!/usr/bin/env python3
"""Two builds of credgate side by side: one scenario, interleaved, the difference in a table.

    python3 bench/ab.py BEFORE AFTER                  # S2 (native bearer), 5 rounds
    python3 bench/ab.py BEFORE AFTER --grant wasm     # S3; sigv4 for S4
    python3 bench/ab.py BEFORE AFTER --fsync          # S5 (--fsync-commits)

BEFORE and AFTER are credgate binaries (copy `target/release/credgate` aside before rebuilding).
The same processes and pinning as `bench/run.py`: the upstream and the load on core 0, both
credgates on core 1 (the idle one costs nothing). Rounds run in ABBA order, so a drift of the
host's speed over the run falls on both builds alike; each figure is the median over the rounds,
and the per-round ratios show how far this host's noise goes. This host's speed drifts by ±5%
between runs: a change smaller than the spread of the ratios is not shown by the run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (bench/run.py: the processes, the upstream and the load)

PATHS = {"bearer": ("GET", "v1/models", None), "wasm": ("GET", "v1/models", None),
         "sigv4": ("PUT", "bench/object", bench.BODY_1K)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--grant", default="bearer", choices=sorted(PATHS))
    ap.add_argument("--fsync", action="store_true", help="both with --fsync-commits (S5)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each load run")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rate", type=float, default=1000.0, help="open-loop rate for the latency runs")
    a = ap.parse_args()

    oha = bench.TOOLS / "bin" / "oha"
    if not oha.exists():
        raise SystemExit(f"{oha} is missing: run bench/run.py once, it builds it")
    tools = {"nginx": bench.debian_server("nginx", "nginx-light", "/usr/sbin/nginx"), "oha": str(oha)}
    work = Path(tempfile.mkdtemp(prefix="credgate-ab-"))
    procs: list[bench.Proc] = []
    try:
        up = bench.free_port()
        upstream = bench.start_nginx("upstream", bench.LOAD_CORE,
                                     bench.UPSTREAM_CONF.format(port=up, www=work, tls_port=bench.free_port(),
                                                                completion=bench.CHAT_COMPLETION,
                                                                **bench.make_tls(work)),
                                     work, tools["nginx"])
        procs.append(upstream)
        bench.wait_port(up, "upstream nginx")
        extra = ["--fsync-commits"] if a.fsync else []
        method, path, body = PATHS[a.grant]
        targets = {}
        for label, binary in (("A", a.before), ("B", a.after)):
            cg = bench.start_credgate(label, binary, work, up, up, extra)
            procs.append(cg.proc)
            url = f"http://127.0.0.1:{cg.port}/v1/grants/{cg.grants[a.grant]}/{path}"
            targets[label] = bench.Target(label, binary, url, cg.proc, [f"proxy-authorization: Bearer {cg.key}"],
                                          method, body)
        bench.log("warm-up")
        for t in targets.values():
            bench.saturate(tools, t, 2.0, a.connections)
        for rnd in range(a.rounds):
            for label in ("AB" if rnd % 2 == 0 else "BA"):
                t = targets[label]
                bench.log(f"round {rnd + 1}/{a.rounds}: {label}")
                sat = bench.saturate(tools, t, a.seconds, a.connections)
                lat = bench.fixed_rate(tools, t, a.seconds, a.rate)
                t.runs.append({**sat, **lat})
    finally:
        for p in reversed(procs):
            p.stop()

    cols = [("rps", "req/s"), ("cpu_us", "CPU µs/call"), ("rate_cpu_us", f"CPU µs/call at {a.rate:g}/s"),
            ("p50", f"p50 µs at {a.rate:g}/s"), ("p99", f"p99 µs at {a.rate:g}/s")]
    A, B = targets["A"].runs, targets["B"].runs
    print(f"\n{a.grant}{' --fsync-commits' if a.fsync else ''}, {a.rounds} rounds of {a.seconds:g} s, ABBA order")
    print(f"A: {a.before}\nB: {a.after}\n")
    print("| | " + " | ".join(title for _, title in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for label, runs in (("A", A), ("B", B)):
        print(f"| {label} | " + " | ".join(f"{statistics.median(r[k] for r in runs):,.1f}" for k, _ in cols) + " |")
    print("| B ÷ A | " + " | ".join(
        f"{statistics.median(b[k] for b in B) / max(statistics.median(x[k] for x in A), 1e-9):.3f}" for k, _ in cols)
        + " |")
    print("| B ÷ A, each round | " + " | ".join(
        " ".join(f"{b[k] / max(x[k], 1e-9):.2f}" for x, b in zip(A, B)) for k, _ in cols) + " |")
    errors = sum(r["errors"] + r["lat_errors"] for r in A + B)
    if errors:
        print(f"\n{errors:.0f} errors: the figures are not comparable")


if __name__ == "__main__":
    main()
