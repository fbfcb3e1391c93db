"""Ranking measured on a labelled world (tests/support/rankworld.py): exclusions, the per-query cutoff, and
fusion of channels, each against the relevant sets the world was drawn with.

The figures each test measures are printed (pytest -s shows them) and asserted against the acceptance bounds.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

pytest.importorskip("cn_clip", reason="needs the finetune extra (torch, cn_clip): the world's model is trained")

import torch  # noqa: E402
from cn_clip.clip import utils as cn_utils  # noqa: E402

from photod.config import Config, StageConfig, WorkersConfig, make_root  # noqa: E402
from photod.finetune.export import import_checkpoint  # noqa: E402
from photod.index.indexer import Indexer  # noqa: E402
from photod.index.vectorindex import VectorIndex  # noqa: E402
from photod.ingest.ingester import Ingester  # noqa: E402
from photod.model import registry  # noqa: E402
from photod.search.finder import Query, find  # noqa: E402
from photod.search.searcher import Searcher  # noqa: E402
from photod.service.signals import SignalWorker  # noqa: E402
from photod.store import signals  # noqa: E402
from photod.store.catalog import Catalog, open_catalog  # noqa: E402
from photod.store.stage import Stage  # noqa: E402
from tests.support import rankworld as rw  # noqa: E402

VOCAB = Path(cn_utils.__file__).parent / "vocab.txt"
PER_KIND = {"红色": 24, "黄色": 24, "绿色": 24, "蓝色": 24, "紫色": 4}  # 100 photos; few are purple
SANYA = (18.2528, 109.5119)  # 三亚市区
BEIJING = (39.9042, 116.4074)


class World:
    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.kind: dict[int, rw.Kind] = {}
        self.sanya: set[int] = set()
        self.xiaobai: set[int] = set()
        self.seafood: set[int] = set()

    def ids(self, test) -> set[int]:
        return {pid for pid, kind in self.kind.items() if test(kind)}

    def find(self, text: str, *, k: int = 500, show_all: bool = False, model: bool = True) -> list[int]:
        cfg = Config(data_dir=self.data_dir)

        def searcher():
            return Searcher.from_config(cfg) if model else _Nothing()

        outcome = find(Query(text=text, k=k, show_all=show_all), lambda: open_catalog(cfg), searcher)
        return [r["id"] for r in outcome.results]


class _Nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    torch.set_num_threads(2)
    work = tmp_path_factory.mktemp("rankworld")
    ckpt, vision, text = rw.train_model(work / "model", VOCAB)
    data_dir = work / "data"
    bundle = import_checkpoint(ckpt, data_dir, vision_config=vision, text_config=text, precision="fp32", name="w")
    registry.use_bundle(data_dir, bundle.name)
    w = World(data_dir)
    rng = random.Random(7)
    root = work / "photos"
    files = []
    for kind in rw.KINDS:
        for i in range(PER_KIND[kind.colour]):
            rel = f"{len(files) % 4}/p{len(files):04d}.jpg"  # names say nothing of what they show
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            rw.draw(kind, 64, rng).save(root / rel, "JPEG", quality=92)
            files.append((kind, i, rel))
    cfg = Config(data_dir=data_dir)
    with Catalog.in_data_dir(data_dir) as cat, Stage(data_dir) as stage:
        r = cat.add_root(make_root(root))
        cat.set_root_online(r.id)
        for kind, i, rel in files:
            st = (root / rel).stat()
            pid, _ = cat.upsert_file(r.id, rel, st.st_size, st.st_mtime_ns)
            w.kind[pid] = kind
            # A third of each kind was taken in 三亚, a third in 北京; a quarter is captioned 小白; a quarter has
            # 海鲜 written in it (different quarters, so that each query needs its two channels).
            if i % 3 == 0:
                w.sanya.add(pid)
            if i % 4 == 1:
                cat.add_caption(pid, "小白" if i % 8 == 1 else "小白在睡觉", "user")
                w.xiaobai.add(pid)
            if i % 4 == 2 or i % 8 == 5:  # some of 小白's photos, too
                signals.store_text(cat, [signals.FoundText(pid, "engine-1", (("今日海鲜特价", 0.9, 0, 0, 9, 9),))])
                w.seafood.add(pid)
        ingester = Ingester(cat, stage, StageConfig(size=64), workers=1)
        ingester.drain(limit=1000)
        with cat.transaction():  # GPS as EXIF would have given it (the drawn JPEGs have none)
            for pid in w.kind:
                lat, lon = SANYA if pid in w.sanya else BEIJING
                cat.conn.execute("UPDATE photos SET gps_lat = ?, gps_lon = ? WHERE id = ?", (lat, lon, pid))
        Indexer(
            cat, stage, bundle, VectorIndex(data_dir, bundle.image_id), WorkersConfig(batch_size=16, encode_threads=2)
        ).run_once()
        worker = SignalWorker(cfg, cat, ingester, None)
        while worker.place_batch():
            pass
        assert cat.scalar("SELECT count(*) FROM photo_places WHERE label_zh LIKE '%三亚%'") == len(w.sanya)
    return w


def _share(found, wanted: set[int]) -> float:
    return len(set(found) & wanted) / max(1, len(wanted))


@pytest.mark.parametrize(
    "query, relevant",
    [
        ("暖色", lambda k: k.tone == "暖色"),  # many: half the library
        ("红色", lambda k: k.colour == "红色"),  # a quarter
        ("紫色", lambda k: k.colour == "紫色"),  # few: 4 of 100
    ],
)
def test_the_cutoff_keeps_the_relevant_and_hides_the_rest(world, query, relevant):
    wanted = world.ids(relevant)
    shown = world.find(query)
    unwanted = set(world.kind) - wanted
    kept, hidden = _share(shown, wanted), 1 - _share(shown, unwanted)
    print(
        f"\ncutoff {query}: {len(wanted)} relevant of {len(world.kind)}; kept {kept:.2f}, hid {hidden:.2f} "
        f"of the irrelevant"
    )
    assert kept >= 0.90 and hidden >= 0.80
    assert len(world.find(query, show_all=True)) == len(world.kind)  # --all: everything, ranked


@pytest.mark.parametrize(
    "query, relevant, excluded",
    [
        ("暖色 -红色", lambda k: k.tone == "暖色", lambda k: k.colour == "红色"),
        ("冷色 -蓝色", lambda k: k.tone == "冷色", lambda k: k.colour == "蓝色"),
    ],
)
def test_an_exclusion_removes_what_matches_it_and_keeps_the_rest(world, query, relevant, excluded):
    rest = world.ids(lambda k: relevant(k) and not excluded(k))
    matching = world.ids(lambda k: relevant(k) and excluded(k))
    shown = world.find(query)
    removed, kept = 1 - _share(shown, matching), _share(shown, rest)
    print(f"\nexclusion {query}: removed {removed:.2f} of {len(matching)}, kept {kept:.2f} of {len(rest)}")
    assert removed >= 0.95 and kept >= 0.90


def test_an_excluded_word_drops_photos_that_hold_it(world):
    """By the words channel alone (no model): 小白's photos, without those with 海鲜 written in them."""
    shown = world.find("小白 -海鲜", model=False)
    assert world.xiaobai & world.seafood and not set(shown) & world.seafood
    assert set(shown) == world.xiaobai - world.seafood


def _recall_at_10(found: list[int], wanted: set[int]) -> float:
    return len(set(found[:10]) & wanted) / min(10, len(wanted))


# Queries that need two channels: a place, a caption or text in the photo, and a look.
TWO_CHANNELS = [
    ("三亚 红色", "红色", lambda w: w.sanya, lambda k: k.colour == "红色"),
    ("小白 蓝色", "蓝色", lambda w: w.xiaobai, lambda k: k.colour == "蓝色"),
    ("海鲜 绿色", "绿色", lambda w: w.seafood, lambda k: k.colour == "绿色"),
    ("三亚 黄色", "黄色", lambda w: w.sanya, lambda k: k.colour == "黄色"),
    ("小白 暖色", "暖色", lambda w: w.xiaobai, lambda k: k.tone == "暖色"),
]


def test_fusion_beats_the_best_single_channel(world):
    fused, words, look = [], [], []
    for query, look_words, by_words, by_look in TWO_CHANNELS:
        wanted = by_words(world) & world.ids(by_look)
        fused.append(_recall_at_10(world.find(query), wanted))
        words.append(_recall_at_10(world.find(query, show_all=True, model=False), wanted))
        look.append(_recall_at_10(world.find(look_words, show_all=True), wanted))

    def mean(xs):
        return sum(xs) / len(xs)

    print(
        f"\nmean recall@10 over {len(TWO_CHANNELS)} two-channel queries: fused {mean(fused):.2f}, "
        f"words alone {mean(words):.2f}, look alone {mean(look):.2f}"
    )
    assert mean(fused) > max(mean(words), mean(look)) + 0.1


def test_each_result_says_why(world):
    cfg = Config(data_dir=world.data_dir)
    outcome = find(Query(text="三亚 红色", k=5), lambda: open_catalog(cfg), lambda: Searcher.from_config(cfg))
    top = outcome.results[0]
    assert {m["channel"] for m in top["matched"]} >= {"place", "image"}
    assert outcome.understood == ["地点 三亚"]
