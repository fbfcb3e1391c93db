"""Held-out text-to-image recall, computed as Chinese-CLIP's own evaluation computes it.

cn_clip evaluates retrieval in three steps, and so does this module:

1. features: every image of the split's `imgs` LMDB, in the LMDB's key order, and every text of the
   split's `texts.jsonl`, in file order, L2-normalised (eval/extract_features.py);
2. top-k: for each text, the inner product with every image in float32, images sorted by score,
   highest first, ties kept in image order (a stable sort), the first k kept (eval/make_topk_predictions.py);
3. recall: a text scores a hit at k when ANY of its ground-truth images (the `image_ids` of its jsonl
   line) is among its first k predictions; R@k is the share of texts with a hit; mean recall is the mean
   of R@1, R@5 and R@10; all in percent (eval/evaluation.py).

One difference: cn_clip's scorer refuses a split of fewer than 10 images; here k is capped at the number of
images, so a tiny split still gets figures (R@10 is then 100 by construction, which `chance` shows).

`write_cnclip_files` writes the features, predictions and scores in cn_clip's file formats, so its scripts
can be run on the very same numbers.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from io import BytesIO
from pathlib import Path
from typing import Sequence

import lmdb
import numpy as np
import torch
from PIL import Image

from photod.finetune.dataset import DatasetInfo, read_texts
from photod.finetune.train import prepare_text
from photod.model.preprocess import CLIP_MEAN, CLIP_STD, preprocess_batch
from photod.model.tokenizer import DEFAULT_CONTEXT_LENGTH, Tokenizer
from photod.store.stage import decode_value

log = logging.getLogger(__name__)

KS = (1, 5, 10)


@dataclass
class Recall:
    """Text-to-image recall on one split, in percent, with what a random ranking would score."""

    r1: float
    r5: float
    r10: float
    mean_recall: float
    texts: int
    images: int
    chance_mean_recall: float

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Features:
    image_ids: list[int]
    image_feats: np.ndarray  # float32 (n_images, d), L2-normalised
    text_ids: list[int]
    text_feats: np.ndarray  # float32 (n_texts, d), L2-normalised
    ground_truth: dict[int, list[int]]


# ---- step 1: features ------------------------------------------------------------------------------------


def split_images(info: DatasetInfo, split: str) -> tuple[list[int], list[bytes]]:
    """(image ids, JPEG bytes) of a split, in LMDB key order, skipping the b"num_images" entry."""
    env = lmdb.open(str(info.lmdb_dir(split) / "imgs"), readonly=True, lock=False, readahead=False)
    try:
        with env.begin() as txn:
            items = [(int(k), decode_value(bytes(v))) for k, v in txn.cursor() if k != b"num_images"]
    finally:
        env.close()
    return [i for i, _ in items], [j for _, j in items]


@torch.no_grad()
def encode_features(
    model: torch.nn.Module,
    info: DatasetInfo,
    split: str = "valid",
    *,
    tokenizer: Tokenizer,
    image_size: int,
    context_length: int = DEFAULT_CONTEXT_LENGTH,
    mean=CLIP_MEAN,
    std=CLIP_STD,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
) -> Features:
    """Step 1: the split's image and text embeddings from `model` (cn_clip CLIP), L2-normalised."""
    model.eval()
    device = torch.device(device)
    image_ids, jpegs = split_images(info, split)
    image_feats = []
    for start in range(0, len(jpegs), batch_size):
        images = []
        for jpeg in jpegs[start : start + batch_size]:
            with Image.open(BytesIO(jpeg)) as img:
                img.load()
                images.append(img.copy())
        batch = torch.from_numpy(preprocess_batch(images, image_size, mean, std)).to(device)
        image_feats.append(_unit(model.encode_image(batch)))
    entries = read_texts(info, split)
    text_feats = []
    for start in range(0, len(entries), batch_size):
        texts = [prepare_text(str(e["text"])) for e in entries[start : start + batch_size]]
        tokens = torch.from_numpy(tokenizer.tokenize(texts, context_length)).to(device)
        text_feats.append(_unit(model.encode_text(tokens)))
    dim = int(model.text_projection.shape[1])
    return Features(
        image_ids=image_ids,
        image_feats=torch.cat(image_feats).float().cpu().numpy() if image_feats else np.zeros((0, dim), np.float32),
        text_ids=[int(e["text_id"]) for e in entries],
        text_feats=torch.cat(text_feats).float().cpu().numpy() if text_feats else np.zeros((0, dim), np.float32),
        ground_truth={int(e["text_id"]): [int(i) for i in e["image_ids"]] for e in entries},
    )


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


# ---- step 2: top-k -------------------------------------------------------------------------------------------


def topk_predictions(
    image_ids: Sequence[int], image_feats: np.ndarray, text_ids: Sequence[int], text_feats: np.ndarray, k: int = 10
) -> dict[int, list[int]]:
    """Step 2: text id -> the ids of its k best images, best first; equal scores keep image order."""
    images = torch.from_numpy(np.ascontiguousarray(image_feats, dtype=np.float32))
    ids = np.asarray(image_ids)
    k = min(k, len(ids))
    out: dict[int, list[int]] = {}
    for text_id, feat in zip(text_ids, text_feats):
        # One text at a time, (1, d) @ (d, n) in float32, as cn_clip scores them: the same arithmetic gives
        # the same floats, hence the same order even among near-ties.
        scores = (torch.from_numpy(np.asarray(feat, dtype=np.float32))[None, :] @ images.t())[0].numpy()
        order = np.argsort(-scores, kind="stable")[:k]
        out[int(text_id)] = [int(i) for i in ids[order]]
    return out


# ---- step 3: recall ----------------------------------------------------------------------------------------


def recall(predictions: dict[int, list[int]], ground_truth: dict[int, list[int]], n_images: int) -> Recall:
    """Step 3: R@1/5/10 and their mean, in percent, over every text of the ground truth."""
    if not ground_truth:
        return Recall(0.0, 0.0, 0.0, 0.0, 0, n_images, 0.0)
    hits = {k: 0 for k in KS}
    for text_id, truth in ground_truth.items():
        predicted = predictions[text_id]
        wanted = set(truth)
        for k in KS:
            if any(i in wanted for i in predicted[:k]):
                hits[k] += 1
    n = len(ground_truth)
    r = {k: 100.0 * hits[k] / n for k in KS}
    chance = [100.0 * np.mean([chance_hit(n_images, len(set(t)), k) for t in ground_truth.values()]) for k in KS]
    return Recall(
        r1=r[1],
        r5=r[5],
        r10=r[10],
        mean_recall=sum(r.values()) / len(KS),
        texts=n,
        images=n_images,
        chance_mean_recall=float(np.mean(chance)),
    )


def chance_hit(n_images: int, n_true: int, k: int) -> float:
    """Probability that a random ranking of n images puts one of n_true right ones in its first k."""
    k = min(k, n_images)
    if n_true <= 0 or n_images <= 0:
        return 0.0
    if n_images - n_true < k:
        return 1.0
    return 1.0 - math.comb(n_images - n_true, k) / math.comb(n_images, k)


def evaluate_features(features: Features) -> tuple[Recall, dict[int, list[int]]]:
    """Steps 2 and 3 on computed features: (recall, predictions)."""
    predictions = topk_predictions(
        features.image_ids, features.image_feats, features.text_ids, features.text_feats, k=max(KS)
    )
    return recall(predictions, features.ground_truth, len(features.image_ids)), predictions


def evaluate_model(
    model: torch.nn.Module,
    info: DatasetInfo,
    split: str = "valid",
    *,
    out_dir: str | os.PathLike | None = None,
    **encode_options,
) -> Recall:
    """Recall of `model` on a split; with `out_dir`, cn_clip-format files and recall.json are written there."""
    features = encode_features(model, info, split, **encode_options)
    result, predictions = evaluate_features(features)
    if out_dir is not None:
        write_cnclip_files(Path(out_dir), features, predictions, result)
    log.info(
        "%s split: R@1 %.1f  R@5 %.1f  R@10 %.1f  mean %.1f  (%d texts, %d images)",
        split,
        result.r1,
        result.r5,
        result.r10,
        result.mean_recall,
        result.texts,
        result.images,
    )
    return result


# ---- files and tables ----------------------------------------------------------------------------------------


def write_cnclip_files(out_dir: Path, features: Features, predictions: dict[int, list[int]], result: Recall) -> None:
    """image_feats.jsonl, text_feats.jsonl, predictions.jsonl and ground_truth.jsonl as cn_clip writes and
    reads them, and recall.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "image_feats.jsonl", "w", encoding="utf-8") as f:
        for image_id, feat in zip(features.image_ids, features.image_feats):
            f.write(json.dumps({"image_id": image_id, "feature": feat.tolist()}) + "\n")
    with open(out_dir / "text_feats.jsonl", "w", encoding="utf-8") as f:
        for text_id, feat in zip(features.text_ids, features.text_feats):
            f.write(json.dumps({"text_id": text_id, "feature": feat.tolist()}) + "\n")
    with open(out_dir / "predictions.jsonl", "w", encoding="utf-8") as f:
        for text_id in features.text_ids:
            f.write(json.dumps({"text_id": text_id, "image_ids": predictions[text_id]}) + "\n")
    with open(out_dir / "ground_truth.jsonl", "w", encoding="utf-8") as f:
        for text_id, ids in features.ground_truth.items():
            f.write(json.dumps({"text_id": text_id, "image_ids": ids}) + "\n")
    (out_dir / "recall.json").write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")


def format_table(before: Recall, after: Recall | None = None) -> str:
    """Before/after recall as a small text table."""
    rows = [("R@1", "r1"), ("R@5", "r5"), ("R@10", "r10"), ("mean recall", "mean_recall")]
    head = f"{'held-out':<12}{'before':>9}" + (f"{'after':>9}{'change':>9}" if after else "")
    lines = [head, "-" * len(head)]
    for label, key in rows:
        b = getattr(before, key)
        line = f"{label:<12}{b:>9.1f}"
        if after:
            a = getattr(after, key)
            line += f"{a:>9.1f}{a - b:>+9.1f}"
        lines.append(line)
    lines.append(
        f"({before.texts} texts, {before.images} photos; a random ranking scores "
        f"{before.chance_mean_recall:.1f} mean recall)"
    )
    return "\n".join(lines)
