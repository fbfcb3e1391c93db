"""Query latency of the vector index at 10k, 100k (and 1M) synthetic 512-d vectors, and of a text query end
to end (tokenize, text encode, search, catalog join) on a real catalog of 100,000 synthetic photos.

    python benchmarks/bench_query.py [--sizes 10000,100000,1000000] [--kinds exact,hnsw,ivf]
                                     [--ef 64,128,256] [--nprobe 8,16,32,64] [--hnsw-m 32] [--ef-construction 128]
                                     [--nlist N] [--queries 300] [--no-build | --build-only]
                                     [--bundle DIR] [--e2e-size 100000] [--no-e2e] [--json FILE]

Vectors are unit vectors grouped around 1,000 centres (image embeddings of a real library cluster by
subject), queries come from the same distribution. For each size and kind: p50/p99 of one single-query
search (k=10), and recall@10 against a float32 brute force (the exact index itself stores float16). Built
approximate indexes and the 100k catalog are cached under .bench/ (git-ignored): building HNSW over a million
vectors takes a long time on two cores.

The end-to-end text query uses --bundle's text tower when given (a real exported Chinese-CLIP bundle); by
default a tiny ONNX text tower over the real vocabulary (tests/support/onnxkit.py), which measures tokenizing,
ONNX Runtime overhead, search and catalog join, but not the cost of a full-size BERT.
Targets in the issue: text query end to end p50 <= 50 ms at 100k; approximate search alone p99 <= 10 ms
with recall@10 >= 0.95 at 1M.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import faiss
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.common import plain_look  # noqa: E402
from photod.config import IndexConfig  # noqa: E402
from photod.index.vectorindex import VectorIndex, _ivf_lists, _ivf_probes  # noqa: E402
from photod.store import vectors, wordsearch  # noqa: E402
from photod.store.wordsearch import Filters  # noqa: E402

DIM = 512
CENTRES = 1000
BENCH = REPO / ".bench" / "query"
BUILD_THREADS = 2
SEARCH_THREADS = 1
QUERY_TEXTS = [
    "海边的日落",
    "我家的猫在沙发上",
    "穿红衣服的小女孩在草地上",
    "雪山",
    "生日蛋糕和蜡烛",
    "a dog on the beach",
    "夜晚的城市灯光",
    "婚礼 2019 三亚",
    "一碗热腾腾的拉面",
    "秋天的枫叶",
]


def synthetic(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    """n clustered unit vectors; generated in chunks so a million never needs two float32 copies."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(12345).standard_normal((CENTRES, dim)).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 50_000):
        m = min(50_000, n - start)
        x = centres[rng.integers(0, CENTRES, m)] + 0.6 * rng.standard_normal((m, dim)).astype(np.float32)
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def percentiles(times: list[float]) -> dict[str, float]:
    ms = np.array(times) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def time_search(index: VectorIndex, queries: np.ndarray, k: int = 10) -> tuple[dict, np.ndarray]:
    index.search(queries[:5], k)  # warm caches
    times, found = [], []
    for q in queries:
        t0 = time.perf_counter()
        _, ids = index.search(q[None], k)
        times.append(time.perf_counter() - t0)
        found.append(ids[0])
    return percentiles(times), np.array(found)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return round(float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)])), 4)


def index_folder(kind: str, n: int, hnsw_m: int = 32, ef_construction: int = 128, nlist: int | None = None) -> Path:
    """Where a built index is cached; photod's default parameters keep the short name."""
    if kind == "hnsw" and (hnsw_m, ef_construction) != (32, 128):
        return BENCH / f"hnsw-{n}-m{hnsw_m}-efc{ef_construction}"
    if kind == "ivf" and nlist is not None:
        return BENCH / f"ivf-{n}-nlist{nlist}"
    return BENCH / f"{kind}-{n}"


def cached_index(
    kind: str,
    n: int,
    data: np.ndarray | None,
    ids: np.ndarray | None,
    *,
    hnsw_m: int = 32,
    ef_construction: int = 128,
    nlist: int | None = None,
    build: bool = True,
) -> tuple[VectorIndex | None, float | None]:
    """An index of `kind` over the data, built once and kept under .bench/ (build seconds, or None if cached).

    IVF is trained as photod trains it (64 sampled vectors per list, photod's list count for n unless
    `nlist` is given). With build=False a missing index gives (None, None)."""
    folder = index_folder(kind, n, hnsw_m, ef_construction, nlist)
    index = VectorIndex(folder, f"bench-{kind}", IndexConfig(kind=kind), hnsw_m=hnsw_m, ef_construction=ef_construction)
    path = folder / "raw.faiss"
    info = folder / "build.json"
    if path.exists():
        index._install(faiss.read_index(str(path)), kind, DIM)
        built = json.loads(info.read_text())["build_s"] if info.exists() else None
        return index, built
    if not build:
        return None, None
    search_threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(BUILD_THREADS)  # building is batched: both cores help
    t0 = time.perf_counter()
    if kind == "ivf":
        lists = nlist or _ivf_lists(n)
        sample = np.random.default_rng(0).permutation(n)[: min(n, 64 * lists)]
        index._create("ivf", DIM, train=data[np.sort(sample)], nlist=lists)
    elif kind == "hnsw":
        index._create("hnsw", DIM)
    for start in range(0, n, 50_000):
        index.add(ids[start : start + 50_000], data[start : start + 50_000])
        if kind == "hnsw":
            print(f"  {kind} {n:,}: {start + 50_000:,} added after {time.perf_counter() - t0:.0f} s", flush=True)
    built = time.perf_counter() - t0
    faiss.omp_set_num_threads(search_threads)
    folder.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index._index, str(folder / "raw.faiss.tmp"))  # renamed once complete
    (folder / "raw.faiss.tmp").rename(path)
    info.write_text(
        json.dumps({"build_s": round(built, 1), "threads": BUILD_THREADS, "built_at": time.strftime("%Y-%m-%d %H:%M")})
    )
    return index, built


def exact_truth(data: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Ids (1-based, as the benchmark indexes number them) of the exact top-k, by a batched float32 scan."""
    flat = faiss.IndexFlatIP(data.shape[1])
    flat.add(data)
    _, found = flat.search(queries, k)
    return found + 1


def bench_sizes(
    sizes: list[int],
    kinds: list[str],
    efs: list[int],
    n_queries: int,
    *,
    nprobes: list[int],
    hnsw_m: int = 32,
    ef_construction: int = 128,
    nlist: int | None = None,
    exact_queries: int = 100,
    build: bool = True,
) -> list[dict]:
    rows = []
    queries = synthetic(n_queries, seed=999)
    for n in sizes:
        data = synthetic(n, seed=n)
        ids = np.arange(1, n + 1, dtype=np.int64)
        faiss.omp_set_num_threads(BUILD_THREADS)
        truth = exact_truth(data, queries)  # recall is measured against float32 brute force
        faiss.omp_set_num_threads(SEARCH_THREADS)
        if "exact" in kinds:
            exact = VectorIndex(BENCH, "bench-exact", IndexConfig(kind="exact"))
            exact.add(ids, data)
            lat, found = time_search(exact, queries[:exact_queries])
            rows.append(
                {"size": n, "kind": "exact (fp16 flat)", **lat, "recall@10": recall(found, truth), "build_s": None}
            )
            print(
                f"{n:>9,}  exact          p50 {lat['p50_ms']:7.2f} ms  p99 {lat['p99_ms']:7.2f} ms"
                f"  recall@10 {rows[-1]['recall@10']:.4f}",
                flush=True,
            )
            del exact
        for kind in kinds:
            if kind == "exact":
                continue
            if kind == "ivf" and n < 10_000:
                continue
            index, built = cached_index(
                kind, n, data, ids, hnsw_m=hnsw_m, ef_construction=ef_construction, nlist=nlist, build=build
            )
            if index is None:
                print(f"{n:>9,}  {kind}: not built yet (skipped)", flush=True)
                continue
            if kind == "hnsw":
                settings = [("ef", ef) for ef in efs]
                params = f"M={hnsw_m} efC={ef_construction}"
            else:
                lists = index._index.nlist
                settings = [("nprobe", p) for p in (nprobes or [_ivf_probes(lists)])]
                params = f"nlist={lists}"
            for name, value in settings:
                setattr(index, "ef_search" if name == "ef" else "nprobe", value)
                lat, found = time_search(index, queries)
                r = recall(found, truth)
                label = f"{kind} {params} {name}={value}"
                rows.append(
                    {
                        "size": n,
                        "kind": label,
                        **lat,
                        "recall@10": r,
                        "build_s": None if built is None else round(built, 1),
                    }
                )
                print(
                    f"{n:>9,}  {label:<34} p50 {lat['p50_ms']:7.2f} ms  p99 {lat['p99_ms']:7.2f} ms"
                    f"  recall@10 {r:.4f}" + (f"  (built in {built:.0f} s)" if built else ""),
                    flush=True,
                )
            del index
        del data
    return rows


def e2e_library(size: int, bundle_dir: Path | None) -> tuple[Path, str]:
    """A data dir with `size` synthetic photos, their vectors and an active bundle; built once."""
    from photod.model import bundle as bundles
    from photod.model import registry
    from photod.model.tokenizer import DEFAULT_CONTEXT_LENGTH
    from photod.store.catalog import Catalog
    from tests.support.onnxkit import add_photos, make_bundle

    data_dir = BENCH / f"e2e-{size}" / ("tiny" if bundle_dir is None else bundle_dir.name)
    done = data_dir / "built.json"
    if done.exists():
        info = json.loads(done.read_text())
        return data_dir, info["model"]
    data_dir.mkdir(parents=True, exist_ok=True)
    if bundle_dir is None:
        bundle_dir = data_dir / "src-bundle"
        make_bundle(bundle_dir, embed_dim=DIM, image_size=32, context_length=DEFAULT_CONTEXT_LENGTH, name="tiny512")
    src = bundles.Bundle.load(bundle_dir)
    registry.install_bundle(bundle_dir, data_dir, src.name, replace=True)
    bundle = registry.use_bundle(data_dir, src.name)
    t0 = time.perf_counter()
    with Catalog.in_data_dir(data_dir) as cat:
        ids = []
        for part in range(0, size, 10_000):
            ids += add_photos(
                cat,
                data_dir / "roots" / f"r{part // 50_000}",
                min(10_000, size - part),
                label=f"drive{part // 50_000}",
                camera=["Canon EOS R5", "iPhone 14"][part // 10_000 % 2],
                taken_at=f"{2015 + part // 10_000:04d}-06-01T12:00:00",
            )
        data = synthetic(size, seed=7, dim=bundle.embed_dim)
        for start in range(0, size, 5_000):
            vectors.store_vectors(cat, bundle.image_id, ids[start : start + 5_000], data[start : start + 5_000])
    model = f"{src.name} ({src.arch}, {src.precision}, dim {src.embed_dim})"
    done.write_text(json.dumps({"size": size, "model": model, "build_s": time.perf_counter() - t0}))
    return data_dir, model


def bench_e2e(size: int, bundle_dir: Path | None, n_queries: int) -> dict:
    from photod.search.searcher import Searcher

    data_dir, model = e2e_library(size, bundle_dir)
    searcher = Searcher(data_dir, threads=2)
    t0 = time.perf_counter()
    plain_look(searcher, QUERY_TEXTS[0], k=20)  # loads the model and the index (built and saved on first run)
    first = time.perf_counter() - t0
    out = {"size": size, "model": model, "first_query_s": round(first, 2)}
    drive1 = Filters(root_id=searcher.catalog.find_root("drive1").id, after="2017-01-01")
    for label, kw in (("text", {}), ("text + root + date filter", {"filters": drive1})):
        times = []
        for i in range(n_queries):
            text = QUERY_TEXTS[i % len(QUERY_TEXTS)]
            t0 = time.perf_counter()
            results = plain_look(searcher, text, k=20, **kw)
            times.append(time.perf_counter() - t0)
            assert len(results) == 20
        out[label] = percentiles(times)
    # the parts of a plain text query, to show where the time goes
    enc, srch, join = [], [], []
    index = searcher.index()
    for i in range(n_queries):
        t0 = time.perf_counter()
        q = searcher.encode_text(QUERY_TEXTS[i % len(QUERY_TEXTS)])
        t1 = time.perf_counter()
        scores, ids = index.search(q, 36)
        t2 = time.perf_counter()
        hits = searcher._join(scores[0], ids[0])
        wordsearch.search_name(searcher.catalog, ids=[h.id for h in hits[:20]], limit=None)
        t3 = time.perf_counter()
        enc.append(t1 - t0), srch.append(t2 - t1), join.append(t3 - t2)
    out["parts_p50_ms"] = {
        k: percentiles(v)["p50_ms"] for k, v in (("tokenize+encode", enc), ("search", srch), ("join", join))
    }
    searcher.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--kinds", default="exact,hnsw,ivf")
    ap.add_argument("--ef", default="64,128,256", help="HNSW efSearch values to try")
    ap.add_argument("--nprobe", default="", help="IVF nprobe values to try (default: photod's, nlist/8)")
    ap.add_argument("--hnsw-m", type=int, default=32, help="HNSW M (photod's default 32)")
    ap.add_argument("--ef-construction", type=int, default=128, help="HNSW efConstruction (photod's default 128)")
    ap.add_argument("--nlist", type=int, default=None, help="IVF lists (default: photod's, 4 sqrt(n))")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--exact-queries", type=int, default=100, help="queries timed on the exact index")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="FAISS OpenMP threads for search (photod's Searcher uses 1: single queries)",
    )
    ap.add_argument("--no-build", action="store_true", help="skip approximate indexes not cached yet")
    ap.add_argument(
        "--build-only",
        action="store_true",
        help="build (and cache) the approximate indexes, measure nothing: for a background run",
    )
    ap.add_argument("--bundle", type=Path, default=None, help="a real bundle for the end-to-end text query")
    ap.add_argument("--e2e-size", type=int, default=100_000)
    ap.add_argument("--no-e2e", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    global SEARCH_THREADS
    SEARCH_THREADS = args.threads
    faiss.omp_set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    kinds = args.kinds.split(",")
    if args.build_only:
        for n in sizes:
            data = synthetic(n, seed=n)
            ids = np.arange(1, n + 1, dtype=np.int64)
            for kind in kinds:
                if kind != "exact":
                    _, built = cached_index(
                        kind, n, data, ids, hnsw_m=args.hnsw_m, ef_construction=args.ef_construction, nlist=args.nlist
                    )
                    print(f"{kind} {n:,}: {'cached' if built is None else f'built in {built:.0f} s'}", flush=True)
        return 0
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "dim": DIM,
        "threads": args.threads,
        "command": " ".join(sys.argv),
        "index": bench_sizes(
            sizes,
            kinds,
            [int(e) for e in args.ef.split(",")],
            args.queries,
            nprobes=[int(p) for p in args.nprobe.split(",") if p],
            hnsw_m=args.hnsw_m,
            ef_construction=args.ef_construction,
            nlist=args.nlist,
            exact_queries=args.exact_queries,
            build=not args.no_build,
        ),
    }
    if not args.no_e2e:
        e2e = bench_e2e(args.e2e_size, args.bundle, min(args.queries, 200))
        report["e2e"] = e2e
        print(
            f"end to end at {e2e['size']:,} ({e2e['model']}): text p50 {e2e['text']['p50_ms']} ms,"
            f" p99 {e2e['text']['p99_ms']} ms; with filters p50 {e2e['text + root + date filter']['p50_ms']} ms;"
            f" parts {e2e['parts_p50_ms']}"
        )
    print(markdown(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    return 0


def markdown(report: dict) -> str:
    """The figures as markdown tables."""
    lines = [
        f"Single-query search, k=10, {report['dim']}-d clustered vectors, {report['threads']} search thread(s);"
        " recall@10 against a float32 brute force.",
        "",
        "| vectors | index | p50 ms | p99 ms | recall@10 | build s |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in report["index"]:
        lines.append(
            f"| {r['size']:,} | {r['kind']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['recall@10']:.4f} |"
            f" {'' if r.get('build_s') is None else r['build_s']} |"
        )
    e2e = report.get("e2e")
    if e2e:
        parts = e2e["parts_p50_ms"]
        lines += [
            "",
            f"Text query end to end at {e2e['size']:,} photos ({e2e['model']}): tokenize, encode, search,"
            " catalog join; k=20.",
            "",
            "| query | p50 ms | p99 ms |",
            "|---|---:|---:|",
        ]
        for label in ("text", "text + root + date filter"):
            lines.append(f"| {label} | {e2e[label]['p50_ms']:.1f} | {e2e[label]['p99_ms']:.1f} |")
        lines.append("")
        lines.append("p50 of the parts: " + ", ".join(f"{k} {v:.2f} ms" for k, v in parts.items()))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
