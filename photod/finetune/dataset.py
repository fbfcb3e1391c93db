"""The training set: labelled photos from the stage, written as a Chinese-CLIP LMDB dataset.

Layout (cn_clip's `datasets/NAME/` layout, so its own scripts train and evaluate on it unchanged):

    DIR/photod_dataset.json          what this is: splits, counts, seed, where it came from
    DIR/train_texts.jsonl            {"text_id": int, "text": str, "image_ids": [photo ids]} a line
    DIR/valid_texts.jsonl            the held-out split's texts: cn_clip's evaluation ground truth
    DIR/lmdb/train/imgs, pairs       LMDB envs exactly as cn_clip's build_lmdb_dataset.py writes them:
    DIR/lmdb/valid/imgs, pairs         imgs:  str(photo id) -> urlsafe base64 JPEG, b"num_images" -> count
                                       pairs: str(index) -> pickle((image_id, text_id, text)),
                                              b"num_samples" -> count

Image ids are photo ids and the JPEGs are the stage's own bytes (already small and upright). The same text
has the same text_id in both splits; a text given to several photos is one line with several image ids,
which is how cn_clip's evaluation counts a hit on any of them.

The held-out split is drawn by photo, seeded: a photo is in train or in valid, never both, so the recall
measured on valid is recall on photos the model never saw.

`export_dataset` packs the folder into one tar file to carry to a GPU box; `open_dataset` reads either.
This module needs no torch.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
import shutil
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import lmdb

from photod import durable
from photod.errors import FinetuneError
from photod.labels.captions import Label, labelled_pairs
from photod.store.catalog import Catalog
from photod.store.stage import Stage, encode_value

log = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "photod_dataset.json"
SPLITS = ("train", "valid")
TAR_ROOT = "photod-dataset"
MIN_PHOTOS = 4  # fewer labelled photos than this leaves nothing to learn from or to measure on


@dataclass
class SplitInfo:
    images: int = 0
    texts: int = 0
    pairs: int = 0


@dataclass
class DatasetInfo:
    """A dataset folder and what its manifest says."""

    path: Path
    splits: dict[str, SplitInfo]
    seed: int
    valid_fraction: float
    source: str = ""
    created_at: str = ""
    skipped_unstaged: int = 0
    valid_photo_ids: list[int] = field(default_factory=list)

    def lmdb_dir(self, split: str) -> Path:
        """The folder holding the split's `imgs` and `pairs` envs (cn_clip's --train-data/--val-data)."""
        return self.path / "lmdb" / split

    def texts_file(self, split: str) -> Path:
        return self.path / f"{split}_texts.jsonl"

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("path")
        return {"format": FORMAT, **data}


def split_photos(photo_ids: Iterable[int], valid_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, valid) photo ids: a seeded shuffle of the sorted ids, the first share held out.

    At least one photo lands on each side when there are two or more.
    """
    ids = sorted(set(photo_ids))
    if not 0.0 <= valid_fraction < 1.0:
        raise FinetuneError(f"the held-out fraction must be in [0, 1), not {valid_fraction}")
    random.Random(seed).shuffle(ids)
    n_valid = round(len(ids) * valid_fraction)
    if valid_fraction > 0 and len(ids) >= 2:
        n_valid = min(max(n_valid, 1), len(ids) - 1)
    valid, train = sorted(ids[:n_valid]), sorted(ids[n_valid:])
    return train, valid


def build_dataset(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    valid_fraction: float = 0.2,
    seed: int = 0,
    sources: Iterable[str] | None = None,
    feedback: bool = True,
) -> DatasetInfo:
    """Write the labelled, staged photos of `data_dir` as a Chinese-CLIP dataset in `out_dir` (replaced).

    sources: which caption sources to use (user, import, folder, feedback); all when None.
    feedback: count search results marked right as (query, photo) pairs.
    """
    data_dir = Path(data_dir)
    with Catalog.in_data_dir(data_dir) as catalog:
        labels = labelled_pairs(catalog, sources=sources, feedback=feedback)
    stage = Stage(data_dir, readonly=True)
    try:
        staged = stage.keys()
        usable = [lab for lab in labels if lab.photo_id in staged]
        skipped = len({lab.photo_id for lab in labels} - staged)
        if skipped:
            log.warning(
                "%d labelled photos are not staged yet and are left out (start the daemon to stage them)", skipped
            )
        photos = {lab.photo_id for lab in usable}
        if len(photos) < MIN_PHOTOS:
            raise FinetuneError(
                f"only {len(photos)} labelled, staged photos in {data_dir}: at least {MIN_PHOTOS} are needed",
                "caption more photos with `photod label add` or `photod label import`",
            )
        train_ids, valid_ids = split_photos(photos, valid_fraction, seed)
        info = write_dataset(
            out_dir,
            usable,
            set(valid_ids),
            stage.get_jpeg,
            seed=seed,
            valid_fraction=valid_fraction,
            source=str(data_dir),
        )
    finally:
        stage.close()
    info.skipped_unstaged = skipped
    _write_manifest(info)
    log.info(
        "dataset %s: %s",
        info.path,
        ", ".join(f"{s} {i.images} photos / {i.texts} texts / {i.pairs} pairs" for s, i in info.splits.items()),
    )
    return info


def write_dataset(
    out_dir: str | os.PathLike,
    labels: list[Label],
    valid_ids: set[int],
    jpeg_of: Callable[[int], bytes | None],
    *,
    seed: int = 0,
    valid_fraction: float = 0.2,
    source: str = "",
) -> DatasetInfo:
    """Write labels (photos in `valid_ids` held out) and their JPEGs as a dataset folder; replaces `out_dir`."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    text_ids: dict[str, int] = {}
    for lab in labels:
        text_ids.setdefault(lab.text, len(text_ids))
    splits = {}
    # Written beside its final place and renamed in: a crash never leaves half a dataset under its name.
    with durable.staged_dir(out) as tmp:
        for split in SPLITS:
            chosen = [lab for lab in labels if (lab.photo_id in valid_ids) == (split == "valid")]
            splits[split] = _write_split(tmp, split, chosen, text_ids, jpeg_of)
        info = DatasetInfo(
            path=out,
            splits=splits,
            seed=seed,
            valid_fraction=valid_fraction,
            source=source,
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            valid_photo_ids=sorted(valid_ids & {lab.photo_id for lab in labels}),
        )
        (tmp / MANIFEST).write_text(json.dumps(info.to_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return info


def _write_split(
    root: Path, split: str, labels: list[Label], text_ids: dict[str, int], jpeg_of: Callable[[int], bytes | None]
) -> SplitInfo:
    """One split: its texts.jsonl, then its pairs and imgs LMDBs in build_lmdb_dataset.py's order."""
    by_text: dict[str, list[int]] = {}
    for lab in labels:
        ids = by_text.setdefault(lab.text, [])
        if lab.photo_id not in ids:
            ids.append(lab.photo_id)
    entries = sorted(((text_ids[t], t, ids) for t, ids in by_text.items()))
    with open(root / f"{split}_texts.jsonl", "w", encoding="utf-8") as f:
        for text_id, text, ids in entries:
            f.write(json.dumps({"text_id": text_id, "text": text, "image_ids": ids}, ensure_ascii=False) + "\n")

    images: dict[int, bytes] = {}
    for _tid, _text, ids in entries:
        for pid in ids:
            if pid not in images:
                jpeg = jpeg_of(pid)
                if jpeg is None:
                    raise FinetuneError(
                        f"photo {pid} vanished from the stage while the dataset was written", "run the command again"
                    )
                images[pid] = encode_value(jpeg)
    lmdb_dir = root / "lmdb" / split
    lmdb_dir.mkdir(parents=True)
    map_size = 2 * sum(len(v) for v in images.values()) + (64 << 20)
    n_pairs = 0
    env = lmdb.open(str(lmdb_dir / "pairs"), map_size=(32 << 20) + 512 * max(1, len(labels)) * 4)
    with env.begin(write=True) as txn:
        for text_id, text, ids in entries:
            for pid in ids:
                txn.put(str(n_pairs).encode(), pickle.dumps((pid, text_id, text)))
                n_pairs += 1
        txn.put(b"num_samples", str(n_pairs).encode())
    env.close()
    env = lmdb.open(str(lmdb_dir / "imgs"), map_size=map_size)
    with env.begin(write=True) as txn:
        for pid, value in images.items():
            txn.put(str(pid).encode(), value)
        txn.put(b"num_images", str(len(images)).encode())
    env.close()
    return SplitInfo(images=len(images), texts=len(entries), pairs=n_pairs)


def _write_manifest(info: DatasetInfo) -> None:
    (info.path / MANIFEST).write_text(json.dumps(info.to_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def load_dataset(path: str | os.PathLike) -> DatasetInfo:
    """A dataset folder's manifest, checked against the files that must be there."""
    path = Path(path)
    try:
        data = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FinetuneError(
            f"{path} is not a photod dataset (no {MANIFEST})", "make one with `photod dataset export OUT`"
        ) from None
    except (OSError, ValueError) as exc:
        raise FinetuneError(f"cannot read {path / MANIFEST}: {exc}") from None
    if data.get("format") != FORMAT:
        raise FinetuneError(f"dataset {path} has format {data.get('format')!r}; this photod reads {FORMAT}")
    splits = {name: SplitInfo(**s) for name, s in data["splits"].items()}
    info = DatasetInfo(
        path=path,
        splits=splits,
        seed=data["seed"],
        valid_fraction=data["valid_fraction"],
        source=data.get("source", ""),
        created_at=data.get("created_at", ""),
        skipped_unstaged=data.get("skipped_unstaged", 0),
        valid_photo_ids=data.get("valid_photo_ids", []),
    )
    for split in SPLITS:
        for sub in ("imgs", "pairs"):
            if not (info.lmdb_dir(split) / sub / "data.mdb").is_file():
                raise FinetuneError(f"dataset {path} lacks lmdb/{split}/{sub}", "export the dataset again")
    return info


def export_dataset(data_dir: str | os.PathLike, out_file: str | os.PathLike, **options) -> Path:
    """`photod dataset export OUT`: the dataset of `data_dir` as ONE tar file (written atomically).

    options go to build_dataset (valid_fraction, seed, sources, feedback).
    """
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="photod-dataset-") as tmp:
        info = build_dataset(data_dir, Path(tmp) / TAR_ROOT, **options)
        # Not compressed: the images are JPEGs already.
        with durable.staged_file(out) as part, tarfile.open(part, "w") as tar:
            tar.add(info.path, arcname=TAR_ROOT)
    log.info("dataset exported to %s (%.1f MiB)", out, out.stat().st_size / 2**20)
    return out


def open_dataset(path: str | os.PathLike, work_dir: str | os.PathLike) -> DatasetInfo:
    """A dataset from a folder, or from a file `export_dataset` wrote (unpacked into `work_dir`)."""
    path = Path(path)
    if path.is_dir():
        return load_dataset(path)
    if not path.is_file():
        raise FinetuneError(f"dataset {path} does not exist")
    try:
        with tarfile.open(path, "r") as tar:
            names = tar.getnames()
            if not names or any(n != TAR_ROOT and not n.startswith(TAR_ROOT + "/") for n in names):
                raise FinetuneError(f"{path} is not a photod dataset file", "make one with `photod dataset export OUT`")
            dest = Path(work_dir)
            dest.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(dest / TAR_ROOT, ignore_errors=True)
            tar.extractall(dest, filter="data")  # refuses absolute paths, links out, devices
    except tarfile.TarError as exc:
        raise FinetuneError(
            f"{path} is not a readable dataset file: {exc}", "copy it again; make one with `photod dataset export OUT`"
        ) from None
    return load_dataset(dest / TAR_ROOT)


def read_texts(info: DatasetInfo, split: str) -> list[dict]:
    """The split's texts.jsonl entries: text_id, text, image_ids."""
    with open(info.texts_file(split), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def image_ids(info: DatasetInfo, split: str) -> list[int]:
    """The split's image ids in LMDB key order: the order cn_clip's feature extraction visits them."""
    env = lmdb.open(str(info.lmdb_dir(split) / "imgs"), readonly=True, lock=False, readahead=False)
    try:
        with env.begin() as txn:
            return [int(k) for k in txn.cursor().iternext(keys=True, values=False) if k != b"num_images"]
    finally:
        env.close()
