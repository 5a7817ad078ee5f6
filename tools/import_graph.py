#!/usr/bin/env python3
"""The import graph of gateway/src between its top-level modules, from `crate::` paths in code
(comments and doc links left out). Prints every circle (a strongly connected set of modules);
`-v` also prints each module's arrows. Exits 1 when there is a circle.

    python3 tools/import_graph.py [-v]
"""
import collections
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gateway", "src")


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = collections.defaultdict(set)
    for folder, _, files in os.walk(SRC):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(folder, name)
            module = os.path.relpath(path, SRC).split(os.sep)[0].removesuffix(".rs")
            with open(path) as f:
                code = "\n".join(line for line in f if not line.strip().startswith("//"))
            for m in re.finditer(r"crate::([a-z_]+)", code):
                if m.group(1) != module:
                    edges[module].add(m.group(1))
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    edges = graph()
    if "-v" in sys.argv:
        for module in sorted(edges):
            print(f"{module} -> {', '.join(sorted(edges[module]))}")
    found = circles(edges)
    for group in found:
        print("circle:", " <-> ".join(group))
    if not found:
        print("no circles")
    sys.exit(1 if found else 0)
