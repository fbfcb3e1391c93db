"""One benchmark script run for two versions of photod in turn, round after round, and its figures as ratios.

    git worktree add --detach /tmp/old BASE-COMMIT        # any checkout holding photod/ and benchmarks/
    python benchmarks/bench_ab.py /tmp/old . --rounds 3 -- bench_scan.py --files 20000 --json
    python benchmarks/bench_ab.py /tmp/old . -- bench_query.py --sizes 10000 --kinds exact --json {json}

Each round runs the script once from each tree (its own copy of the script, importing its own photod), the
order alternating from round to round, so that both meet the same load from other work: on a shared 2-core
machine two runs minutes apart do not compare. The script must print its figures as JSON: on stdout, or into
the file given where `{json}` stands. Every number the two trees both report is shown as the median over
the rounds of each, and B / A (below 1: B is faster, for a time).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.common import cpu_summary  # noqa: E402


def run_once(tree: Path, script: list[str]) -> dict:
    """The script's figures, run from `tree` with that tree's photod first on the path."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        args = [a.replace("{json}", str(out)) for a in script[1:]]
        env = {**os.environ, "PYTHONPATH": str(tree)}
        done = subprocess.run(
            [sys.executable, str(tree / "benchmarks" / script[0]), *args],
            cwd=REPO,  # caches under .bench/ are shared by both trees
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"{tree}: {script[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return json.loads(out.read_text() if "{json}" in " ".join(script) else done.stdout)


def numbers(figures: object, prefix: str = "") -> dict[str, float]:
    """Every number in a JSON document, keyed by its path (a.b.0.c)."""
    if isinstance(figures, bool):
        return {}
    if isinstance(figures, (int, float)):
        return {prefix: float(figures)}
    items = figures.items() if isinstance(figures, dict) else enumerate(figures) if isinstance(figures, list) else ()
    out: dict[str, float] = {}
    for key, value in items:
        out.update(numbers(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path, help="the baseline tree")
    ap.add_argument("b", type=Path, help="the tree measured against it")
    ap.add_argument("--rounds", type=int, default=3)
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        ap.error("give the benchmark after --: -- SCRIPT.py ARGS (a script in the trees' benchmarks/)")
    split = argv.index("--")
    args, script = ap.parse_args(argv[:split]), argv[split + 1 :]
    trees = (args.a.resolve(), args.b.resolve())
    runs: dict[Path, list[dict[str, float]]] = {tree: [] for tree in trees}
    for i in range(args.rounds):
        for tree in trees if i % 2 == 0 else trees[::-1]:
            runs[tree].append(numbers(run_once(tree, script)))
            print(f"round {i + 1}: {tree.name or tree} done", file=sys.stderr)
    print(f"CPU: {cpu_summary()}; load average {os.getloadavg()[0]:.1f}; {args.rounds} rounds of {' '.join(script)}")
    print(f"A = {trees[0]}\nB = {trees[1]}\n")
    print("| figure | A (median) | B (median) | B / A |\n| --- | ---: | ---: | ---: |")
    a_runs, b_runs = runs[trees[0]], runs[trees[1]]
    for key in a_runs[0]:
        if all(key in r for r in a_runs + b_runs):
            a = statistics.median(r[key] for r in a_runs)
            b = statistics.median(r[key] for r in b_runs)
            ratio = f"{b / a:.3f}" if a else "-"
            print(f"| {key} | {a:g} | {b:g} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
