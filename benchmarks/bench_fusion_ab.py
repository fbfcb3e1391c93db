"""Two versions of photod on bench_fusion.py's queries, side by side: one resident process each, asked in turn,
query by query, so that both meet the same load from other work (on a shared machine a run minutes apart does
not compare).

    git archive bd69c6c photod | tar -x -C /tmp/old      # any tree holding a photod/ package
    python benchmarks/bench_fusion_ab.py /tmp/old .  [--queries 200] [--bundle .bench/models/vit-b-16-int8]

Each query is run as bench_fusion.py runs it (as if typed for the first time); the order alternates from query
to query. Prints p50/p99 wall time, p50 CPU time of the process (every thread's), each stage's p50, and how
many pages came out identical (rows, reasons and scores included). The library is bench_fusion.py's, built
with it first. Start the two in both orders (A B, then B A): the one started second has measured faster.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def worker(tree: Path, bundle: str) -> None:
    sys.path.insert(0, str(tree))
    import photod

    assert Path(photod.__file__).resolve().is_relative_to(tree), photod.__file__
    sys.path.insert(1, str(REPO))
    from benchmarks.bench_fusion import BENCH, QUERIES, TODAY, forget_texts
    from photod.search.finder import Query, find
    from photod.search.searcher import Searcher
    from photod.store.catalog import Catalog

    data_dir = BENCH / "100000" / bundle
    if not (data_dir / "built.json").exists():
        raise SystemExit(f"{data_dir} is not built: run benchmarks/bench_fusion.py first")
    searcher = Searcher(data_dir, threads=2)
    catalog = Catalog.in_data_dir(data_dir)
    opened = (lambda: contextlib.nullcontext(catalog)), (lambda: contextlib.nullcontext(searcher))
    find(Query(text=QUERIES[0], today=TODAY), *opened)
    print("ready", flush=True)
    for line in sys.stdin:
        i = int(line)
        forget_texts(searcher)
        t0, c0 = time.perf_counter(), time.process_time()
        outcome = find(Query(text=QUERIES[i % len(QUERIES)], k=20, today=TODAY), *opened)
        print(
            json.dumps(
                {
                    "ms": (time.perf_counter() - t0) * 1000,
                    "cpu": (time.process_time() - c0) * 1000,
                    "stages": {k: v * 1000 for k, v in outcome.stages.items()},
                    "page": json.dumps(outcome.results, sort_keys=True, ensure_ascii=False),
                }
            ),
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--bundle", default="vit-b-16-int8", help="the bundle folder's name bench_fusion.py built for")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker.resolve(), args.bundle)
        return 0
    procs = {}
    for label, tree in (("A", args.a), ("B", args.b)):
        proc = subprocess.Popen(
            [sys.executable, __file__, "a", "b", "--worker", str(tree.resolve()), "--bundle", args.bundle],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd="/",
        )
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"{tree}: the worker did not start")
        procs[label] = proc
    rows: dict[str, list[dict]] = {label: [] for label in procs}
    same, loads = 0, []
    for i in range(args.queries):
        got = {}
        for label in ("A", "B") if i % 2 == 0 else ("B", "A"):
            procs[label].stdin.write(f"{i}\n")
            procs[label].stdin.flush()
            got[label] = json.loads(procs[label].stdout.readline())
            rows[label].append(got[label])
        same += got["A"]["page"] == got["B"]["page"]
        loads.append(os.getloadavg()[0])
    for proc in procs.values():
        proc.stdin.close()
        proc.wait()
    print(
        f"{args.queries} queries, load average {np.mean(loads):.2f} ({min(loads):.2f} to {max(loads):.2f}),"
        f" identical pages {same}/{args.queries}"
    )
    for label, tree in (("A", args.a), ("B", args.b)):
        ms = [r["ms"] for r in rows[label]]
        stages = {k: np.median([r["stages"].get(k, 0.0) for r in rows[label]]) for k in rows[label][0]["stages"]}
        print(
            f"{label} {tree}: p50 {np.median(ms):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms, CPU p50"
            f" {np.median([r['cpu'] for r in rows[label]]):.1f} ms | "
            + ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
        )
    ratio = [b["ms"] / a["ms"] for a, b in zip(rows["A"], rows["B"])]
    print(f"B/A per query: median {np.median(ratio):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
