#!/usr/bin/env python3
"""Lists the import cycles between the core's rooms (top-level modules under src-tauri/src).

A room is a top-level module (`calls`, `realtime`, `store`, ...; `services.rs` with `services/`).
Every `crate::ROOM` path in a room's files (in `use` lines and inline paths) is an edge to ROOM.
Prints the edges that take part in a cycle, with the files that make them, and exits 1 if there
is any cycle; `--max N` exits 0 while there are at most N such edges (for a ratchet while the
known cycles are being removed: issue "One owner per fact").
"""
import os
import re
import sys
from collections import defaultdict

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src-tauri", "src")
PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")


def room_of(rel):
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first


def edges():
    found = defaultdict(set)
    for dirpath, _, files in os.walk(ROOT):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, ROOT)
            src = room_of(rel)
            if src in ("lib", "main"):
                continue
            with open(path, encoding="utf-8") as f:
                text = f.read()
            # Tests may reach across rooms; only the shipped code's layering counts.
            text = text.split("#[cfg(test)]")[0]
            for target in PATH.findall(text):
                if target != src:
                    found[(src, target)].add(rel)
    return found


def reaches(graph, start, goal):
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node in seen:
            continue
        seen.add(node)
        todo.extend(graph[node])
    return False


def main():
    limit = 0
    if len(sys.argv) == 3 and sys.argv[1] == "--max":
        limit = int(sys.argv[2])
    found = edges()
    graph = defaultdict(set)
    for (a, b) in found:
        graph[a].add(b)
    cyclic = sorted((a, b) for (a, b) in found if reaches(graph, b, a))
    for a, b in cyclic:
        print(f"{a} -> {b}: {', '.join(sorted(found[(a, b)]))}")
    print(f"{len(cyclic)} edges in cycles between rooms (allowed: {limit})")
    sys.exit(0 if len(cyclic) <= limit else 1)


if __name__ == "__main__":
    main()
