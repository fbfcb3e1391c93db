"""A query in the query language at 100,000 photos with every channel present, and where its time goes.

    python benchmarks/bench_fusion.py [--photos 100000] [--bundle DIR] [--queries 200] [--json FILE]

A library of --photos catalog rows is built once under .bench/fusion/ (git-ignored): dates spread over
2015-2024, synthetic 512-d clustered vectors, text read in 30 % of the photos, places for 60 %, captions on
5 % (with their text-tower embeddings stored, as the daemon stores them). Each timed query has two words, a
date and an exclusion (「2019年夏天 海边 日落 -人」), run through photod.search.finder.find with one resident
searcher and catalog, as the TUI runs it: parse, the words channel (FTS over names, captions, text, places),
the look (text tower, FAISS, the exclusion's own search and cutoff), captions by meaning, fusion. Beside it,
interleaved, the same words as one plain text query (benchmarks.common.plain_look: tokenize, encode, search,
join), the search before the query language.

--bundle: a real exported bundle's text tower (e.g. .bench/models/vit-b-16-int8 from benchmarks/common.py;
the issue's figure is for ViT-B-16 int8); default a tiny ONNX text tower over the real vocabulary, which
measures everything but a full-size BERT. Targets: p50 <= 50 ms, p99 <= 120 ms at 100,000 photos.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.common import cpu_summary, plain_look  # noqa: E402
from photod.config import make_root  # noqa: E402
from photod.store import signals, vectors  # noqa: E402
from photod.store.catalog import Catalog, PhotoMeta  # noqa: E402

BENCH = REPO / ".bench" / "fusion"
TODAY = dt.date(2026, 12, 3)
QUERIES = [
    "2019年夏天 海边 日落 -人",
    "2018年 猫 沙发 -狗",
    "2020年春节 全家福 红色 -文字",
    "2017年7月 雪山 湖 -车",
    "2021年秋天 枫叶 小路 -人",
    "2016年 生日 蛋糕 -蜡烛",
    "2022年冬天 城市 夜景 -雨",
    "2019年 海鲜 菜单 -饮料",
]
TEXTS = [
    "欢迎光临",
    "今日海鲜特价",
    "出口",
    "停车场",
    "菜单",
    "营业时间 9:00-21:00",
    "谢谢惠顾",
    "禁止吸烟",
    "三亚湾",
    "SALE 50% OFF",
    "Exit",
    "北京南站",
    "生日快乐",
]
PLACES = [
    (
        "海南 三亚 天涯区",
        "Tianya, Sanya, Hainan, China",
        ["三亚", "三亚市", "天涯区", "海南", "海南省", "中国", "Sanya", "Tianya", "Hainan", "China"],
    ),
    ("北京 东城区", "Dongcheng, Beijing, China", ["北京", "北京市", "东城区", "中国", "Beijing", "Dongcheng", "China"]),
    ("日本 东京", "Tokyo, Japan", ["东京", "日本", "Tokyo", "Japan"]),
    (
        "浙江 杭州 西湖区",
        "Xihu, Hangzhou, Zhejiang, China",
        ["杭州", "西湖区", "浙江", "中国", "Hangzhou", "Zhejiang", "China"],
    ),
]
CAPTIONS = ["小白在沙发上睡觉", "我家的白猫", "全家福", "生日派对", "海边散步", "去三亚度假", "奶奶的院子"]


def build(n: int, bundle_dir: Path | None) -> tuple[Path, str]:
    """The library, built once: rows, vectors, text, places, captions and their embeddings."""
    from photod.model import bundle as bundles
    from photod.model import registry
    from photod.model.encoder import TextEncoder
    from photod.model.tokenizer import DEFAULT_CONTEXT_LENGTH
    from tests.support.onnxkit import make_bundle, unit_vectors

    data_dir = BENCH / f"{n}" / ("tiny" if bundle_dir is None else bundle_dir.name)
    done = data_dir / "built.json"
    if done.exists():
        return data_dir, json.loads(done.read_text())["model"]
    data_dir.mkdir(parents=True, exist_ok=True)
    if bundle_dir is None:
        bundle_dir = data_dir / "src-bundle"
        make_bundle(bundle_dir, embed_dim=512, image_size=32, context_length=DEFAULT_CONTEXT_LENGTH, name="tiny512")
    src = bundles.Bundle.load(bundle_dir)
    registry.install_bundle(bundle_dir, data_dir, src.name, replace=True)
    bundle = registry.use_bundle(data_dir, src.name)
    rng = random.Random(0)
    with Catalog.in_data_dir(data_dir) as cat:
        root = cat.add_root(make_root(data_dir / "drive", label="drive"))
        cat.update_root(root.id, online=1)
        ids = []
        with cat.transaction():
            for i in range(n):
                day = dt.date(2015, 1, 1) + dt.timedelta(days=i * 3650 // n)
                pid, _ = cat.upsert_file(root.id, f"{day.year}/{day:%m}/IMG_{i:06d}.jpg", 1000 + i, 10**18 + i)
                cat.mark_staged(pid, PhotoMeta(taken_at=f"{day.isoformat()}T12:00:00"), f"hash-{i}")
                ids.append(pid)
        data = unit_vectors(n, bundle.embed_dim, seed=7, clusters=1000)
        for start in range(0, n, 5000):
            vectors.store_vectors(cat, bundle.image_id, ids[start : start + 5000], data[start : start + 5000])
        signals.store_text(
            cat,
            [
                signals.FoundText(pid, "bench", tuple((t, 0.9, 0, 0, 10, 10) for t in rng.sample(TEXTS, 2)))
                for pid in ids
                if rng.random() < 0.3
            ],
        )
        places = [(pid, rng.choice(PLACES)) for pid in ids if rng.random() < 0.6]
        signals.store_places(
            cat,
            [
                signals.FoundPlace(pid, "bench", 18.25, 109.5, "CN", zh, en, tuple(names))
                for pid, (zh, en, names) in places
            ],
        )
        with cat.transaction():
            for pid in ids:
                if rng.random() < 0.05:
                    cat.add_caption(pid, rng.choice(CAPTIONS), "user")
        encoder = TextEncoder(bundle, threads=2)
        rows = signals.captions_without_vectors(cat, bundle.text_id, limit=n)
        embedded = dict(zip(CAPTIONS, encoder.encode(CAPTIONS)))
        signals.store_caption_vectors(
            cat, bundle.text_id, [cid for cid, _ in rows], np.stack([embedded[text] for _, text in rows])
        )
    model = f"{src.name} ({src.arch}, {src.precision}, dim {src.embed_dim})"
    done.write_text(json.dumps({"photos": n, "model": model}))
    return data_dir, model


def percentiles(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def forget_texts(searcher) -> None:
    """The searcher's remembered text embeddings and exclusion cutoffs dropped, so that the next query runs as
    if typed for the first time; also for a tree from before Searcher.forget_texts (bench_fusion_ab.py runs
    this against older trees)."""
    if hasattr(searcher, "forget_texts"):
        searcher.forget_texts()
    else:
        searcher._texts.clear()
        searcher._bars.clear()


def run(data_dir: Path, n_queries: int) -> dict:
    from photod.search.finder import Query, find
    from photod.search.searcher import Searcher

    searcher = Searcher(data_dir, threads=2)
    catalog = Catalog.in_data_dir(data_dir)
    opened = (lambda: contextlib.nullcontext(catalog)), (lambda: contextlib.nullcontext(searcher))
    find(Query(text=QUERIES[0], today=TODAY), *opened)  # loads the model, the index and the caption vectors
    fused, plain, stages, shown, hidden = [], [], {}, [], []
    for i in range(n_queries):
        text = QUERIES[i % len(QUERIES)]
        # Every query as if typed for the first time: the searcher remembers the embeddings and cutoffs of
        # texts it saw, and the eight queries repeat.
        forget_texts(searcher)
        t0 = time.perf_counter()
        outcome = find(Query(text=text, k=20, today=TODAY), *opened)
        fused.append((time.perf_counter() - t0) * 1000)
        for stage, seconds in outcome.stages.items():
            stages.setdefault(stage, []).append(seconds * 1000)
        shown.append(len(outcome.results))
        hidden.append(outcome.hidden)
        words = " ".join(w for w in text.split() if not w.startswith("-") and "年" not in w)
        forget_texts(searcher)
        t0 = time.perf_counter()
        plain_look(searcher, words, k=20)
        plain.append((time.perf_counter() - t0) * 1000)
    searcher.close()
    catalog.close()
    total = sum(np.median(v) for v in stages.values())
    return {
        "query language": percentiles(fused),
        "plain text query": percentiles(plain),
        "stages_p50_ms": {s: round(float(np.median(v)), 2) for s, v in stages.items()},
        "stage_share": {s: round(float(np.median(v)) / total, 3) for s, v in stages.items()},
        "results_mean": round(float(np.mean(shown)), 1),
        "hidden_mean": round(float(np.mean(hidden)), 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=100_000)
    ap.add_argument("--bundle", type=Path, default=None)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    data_dir, model = build(args.photos, args.bundle)
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu_summary(),
        "photos": args.photos,
        "model": model,
        **run(data_dir, args.queries),
    }
    print(f"{report['cpu']}\n{args.photos:,} photos, {model}")
    print("| query | p50 ms | p99 ms |\n|---|---:|---:|")
    for label in ("query language", "plain text query"):
        print(f"| {label} | {report[label]['p50_ms']} | {report[label]['p99_ms']} |")
    print(
        "stages (p50 ms, share): "
        + ", ".join(f"{s} {v} ({report['stage_share'][s]:.0%})" for s, v in report["stages_p50_ms"].items())
    )
    print(f"results shown {report['results_mean']} of 20 asked, weaker hidden {report['hidden_mean']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
