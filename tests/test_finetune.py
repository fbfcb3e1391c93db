"""Fine-tuning end to end on a synthetic library: dataset, training, resume, evaluation parity with cn_clip,
and the hand-back of a bundle.

A small model of cn_clip's own classes is first trained on some concepts (red, green and blue shapes), then
fine-tuned on captions of others (yellow, purple, orange and white shapes) that it has never seen.
"""

from __future__ import annotations

import json
import math
import runpy
import sys
import tarfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from cn_clip.clip import utils as cn_utils

from photod.errors import FinetuneError
from photod.finetune.checkpoint import load_model
from photod.finetune.dataset import build_dataset, export_dataset, open_dataset, read_texts
from photod.finetune.evaluate import Features, chance_hit, evaluate_features, evaluate_model, write_cnclip_files
from photod.finetune.export import import_checkpoint
from photod.finetune.run import finetune
from photod.finetune.train import (
    PairDataset,
    TrainConfig,
    Trainer,
    contrastive_loss,
    lr_at,
    pick_precision,
    save_model_checkpoint,
)
from photod.model import bundle as bundles
from photod.model import registry
from photod.model.tokenizer import Tokenizer
from photod.store.catalog import Catalog
from tests.support import synthetic as syn
from tests.support.smallmodels import build_small_checkpoint

VOCAB = Path(cn_utils.__file__).parent / "vocab.txt"
KNOWN = syn.concepts(["红色", "绿色", "蓝色"])
NEW = syn.concepts(["黄色", "紫色", "橙色", "白色"])
FT = dict(
    epochs=10,
    lr=2e-3,
    batch_size=24,
    valid_fraction=0.25,
    seed=0,
    progress=False,
    save_every=0,
    bundle_precision="fp32",
)


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.from_vocab(VOCAB)


@pytest.fixture(scope="module")
def base(tmp_path_factory, tokenizer):
    """A small ViT model trained (both towers) on the KNOWN concepts: (checkpoint, vision cfg, text cfg)."""
    root = tmp_path_factory.mktemp("base")
    ckpt, vision, text = build_small_checkpoint(root / "random", "vit", seed=0)
    info = syn.make_dataset(root / "pretrain", KNOWN, 8, size=64, valid_per_concept=1)
    model = load_model(ckpt, vision_config=vision, text_config=text).model
    cfg = TrainConfig(mode="full", max_steps=40, batch_size=24, lr=2e-3, save_every=0, progress=False)
    trainer = Trainer(model, info.lmdb_dir("train"), cfg, root / "checkpoints", tokenizer=tokenizer, image_size=64)
    trainer.fit(resume=False)
    return save_model_checkpoint(trainer.model, root / "base.pt"), vision, text


@pytest.fixture(scope="module")
def library(tmp_path_factory, base):
    """A data dir with photos of the NEW concepts, captioned, staged, and the base model installed."""
    root = tmp_path_factory.mktemp("library")
    lib = syn.make_library(root / "data", root / "photos", NEW, 6, size=64)
    ckpt, vision, text = base
    import_checkpoint(ckpt, lib.data_dir, vision_config=vision, text_config=text, precision="fp32", name="base")
    return lib


@pytest.fixture(scope="module")
def lit_run(library):
    """One lit fine-tune of the active (base) bundle, shared by the tests that inspect its outcome."""
    return finetune(library.data_dir, mode="lit", name="lit-1", **FT)


def _onnx_text(bundle: bundles.Bundle, tokenizer: Tokenizer, texts: list[str]) -> np.ndarray:
    sess = ort.InferenceSession(str(bundle.text_path), providers=["CPUExecutionProvider"])
    return sess.run(None, {bundles.TEXT_INPUT: tokenizer.tokenize(texts, bundle.context_length)})[0]


# ---- acceptance: fine-tuning learns new words ------------------------------------------------------------


def test_lit_finetune_learns_new_captions_and_keeps_image_vectors(library, lit_run, tokenizer):
    r = lit_run
    print("\n" + r.table())
    assert r.improved and r.installed
    assert r.after.mean_recall > r.before.mean_recall + 10
    assert r.after.mean_recall > r.after.chance_mean_recall + 10
    base_bundle = bundles.Bundle.load(registry.models_dir(library.data_dir) / "base")
    active = registry.active_bundle(library.data_dir)
    assert active.name == "lit-1" and active.model_id == r.bundle.model_id
    # The image tower is the base's, byte for byte: every stored image vector stays valid.
    assert active.image_id == base_bundle.image_id and not r.reencode
    assert active.files["image.onnx"] == base_bundle.files["image.onnx"]
    assert active.text_id != base_bundle.text_id
    before, after = (_onnx_text(b, tokenizer, ["黄色的圆形"]) for b in (base_bundle, active))
    assert float(before[0] @ after[0]) < 0.99  # the text side did change
    report = json.loads(r.report.read_text(encoding="utf-8"))
    assert report["before"]["mean_recall"] == pytest.approx(r.before.mean_recall)
    assert report["after"]["mean_recall"] == pytest.approx(r.after.mean_recall)
    assert report["installed"] and report["bundle"]["image_id"] == base_bundle.image_id
    for phase in ("eval-before", "eval-after"):
        assert json.loads((r.work_dir / phase / "recall.json").read_text())["texts"] == r.before.texts
    # The hand-back checkpoint is cn_clip's format and loads as the model that was evaluated.
    saved = torch.load(r.checkpoint, weights_only=True)
    assert set(saved) == {"epoch", "step", "name", "state_dict"}
    assert all(k.startswith("module.") for k in saved["state_dict"])


def test_a_worse_model_is_not_installed_unless_forced(library, lit_run):
    # From the fine-tuned model, a wild learning rate wrecks the text tower.
    wild = dict(FT, epochs=1, lr=0.5, warmup_steps=0)
    worse = finetune(library.data_dir, base=lit_run.bundle, mode="lit", name="wild", **wild)
    assert worse.after.mean_recall < worse.before.mean_recall
    assert not worse.improved and not worse.installed and worse.bundle is None
    assert registry.active_name(library.data_dir) == "lit-1"
    assert not (registry.models_dir(library.data_dir) / "wild").exists()
    assert worse.checkpoint.is_file()  # kept, for a person who wants it anyway
    forced = finetune(library.data_dir, base=lit_run.bundle, mode="lit", name="wild", force=True, **wild)
    try:
        assert forced.installed and registry.active_name(library.data_dir) == "wild"
    finally:  # the library is shared by this module's tests: leave lit-1 active, as found
        registry.use_bundle(library.data_dir, "lit-1")
        registry.remove_bundle(library.data_dir, "wild")


def test_full_finetune_on_an_exported_dataset_file(library, base, tmp_path):
    """The GPU-box round trip: export the dataset to one file, train elsewhere, get a bundle back."""
    ckpt, vision, text = base
    dataset_file = export_dataset(library.data_dir, tmp_path / "labels.tar", valid_fraction=0.25, seed=0)
    elsewhere = tmp_path / "gpu-box"
    r = finetune(
        elsewhere,
        base=ckpt,
        vision_config=vision,
        text_config=text,
        dataset=dataset_file,
        mode="full",
        name="full-1",
        **FT,
    )
    print("\n" + r.table())
    assert r.improved and r.installed
    assert r.after.mean_recall > r.before.mean_recall + 10
    assert r.after.mean_recall > r.after.chance_mean_recall + 10
    assert registry.active_name(elsewhere) == "full-1"
    base_bundle = bundles.Bundle.load(registry.models_dir(library.data_dir) / "base")
    assert r.bundle.image_id != base_bundle.image_id and r.reencode  # both towers learned


# ---- dataset ----------------------------------------------------------------------------------------------


def test_dataset_is_cnclip_format_with_disjoint_split(library, tmp_path, tokenizer):
    from cn_clip.training.data import LMDBDataset

    info = build_dataset(library.data_dir, tmp_path / "ds", valid_fraction=0.25, seed=3)
    train_ids = {i for e in read_texts(info, "train") for i in e["image_ids"]}
    valid_ids = {i for e in read_texts(info, "valid") for i in e["image_ids"]}
    all_ids = {pid for ids in library.photos.values() for pid in ids}
    assert train_ids | valid_ids == all_ids and not train_ids & valid_ids
    assert sorted(valid_ids) == info.valid_photo_ids and len(valid_ids) == round(0.25 * len(all_ids))
    assert info.splits["train"].pairs == len(train_ids)  # one caption per photo here
    # cn_clip's own training dataset reads it, and sees what photod's trainer sees.
    theirs = LMDBDataset(str(info.lmdb_dir("train")), split="train", max_txt_length=52, resolution=64)
    ours = PairDataset(info.lmdb_dir("train"), tokenizer, 64)
    assert len(theirs) == len(ours) == info.splits["train"].pairs
    for i in (0, len(ours) - 1):
        image, text, eos = theirs[i]
        my_image, my_text, image_id, text_id = ours[i]
        assert torch.equal(text, my_text) and int(my_text[eos]) == tokenizer.sep_id
        assert torch.allclose(image, my_image, atol=1e-6)
        assert library.concept_of(image_id).caption in [
            e["text"] for e in read_texts(info, "train") if e["text_id"] == text_id
        ]
    # Another seed, another split; the same seed, the same split.
    again = build_dataset(library.data_dir, tmp_path / "ds2", valid_fraction=0.25, seed=3)
    other = build_dataset(library.data_dir, tmp_path / "ds3", valid_fraction=0.25, seed=4)
    assert again.valid_photo_ids == info.valid_photo_ids != other.valid_photo_ids


def test_dataset_file_round_trip_and_refusals(library, tmp_path):
    out = export_dataset(library.data_dir, tmp_path / "x.tar", valid_fraction=0.25, seed=1)
    info = open_dataset(out, tmp_path / "unpacked")
    assert info.splits["valid"].images == round(0.25 * len(library.paths)) and info.seed == 1
    bogus = tmp_path / "bogus.tar"
    with tarfile.open(bogus, "w") as tar:
        tar.add(out, arcname="something-else")
    with pytest.raises(FinetuneError, match="not a photod dataset"):
        open_dataset(bogus, tmp_path / "u2")
    empty = tmp_path / "empty-data"
    with Catalog.in_data_dir(empty):
        pass
    from photod.store.stage import Stage

    Stage(empty).close()
    with pytest.raises(FinetuneError, match="at least"):
        build_dataset(empty, tmp_path / "none")


# ---- training ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    return syn.make_dataset(tmp_path_factory.mktemp("tiny") / "ds", syn.concepts(["红色", "黄色"]), 4, size=64)


def _trainer(base, tiny_dataset, tokenizer, ckdir, **overrides) -> Trainer:
    ckpt, vision, text = base
    model = load_model(ckpt, vision_config=vision, text_config=text).model
    cfg = TrainConfig(
        **{
            **dict(mode="full", max_steps=6, batch_size=6, accum_steps=2, lr=1e-3, save_every=2, progress=False),
            **overrides,
        }
    )
    return Trainer(model, tiny_dataset.lmdb_dir("train"), cfg, ckdir, tokenizer=tokenizer, image_size=64)


def test_interrupted_training_resumes_to_the_same_weights(base, tiny_dataset, tokenizer, tmp_path):
    whole = _trainer(base, tiny_dataset, tokenizer, tmp_path / "whole")
    done = whole.fit(resume=False)
    assert done.steps == 6 and not done.interrupted

    first = _trainer(base, tiny_dataset, tokenizer, tmp_path / "split")
    part = first.fit(resume=False, stop_after=3)  # killed after step 3; the last save was at step 2
    assert part.interrupted and part.steps == 3
    ckpt = torch.load(tmp_path / "split" / "latest.pt", weights_only=True)
    assert ckpt["step"] == 3 and {"optimizer", "rng", "scaler", "state_dict"} <= set(ckpt)

    second = _trainer(base, tiny_dataset, tokenizer, tmp_path / "split")
    rest = second.fit(resume=True)
    assert rest.steps == 6 and rest.losses == done.losses[3:]
    want, got = whole.model.state_dict(), second.model.state_dict()
    assert all(torch.equal(want[k], got[k]) for k in want)

    with pytest.raises(FinetuneError, match="other settings"):
        _trainer(base, tiny_dataset, tokenizer, tmp_path / "split", lr=5e-4).fit(resume=True)


def test_lit_freezes_the_image_tower_and_checkpointing_changes_nothing(base, tiny_dataset, tokenizer, tmp_path):
    plain = _trainer(base, tiny_dataset, tokenizer, tmp_path / "a", mode="lit", max_steps=2, save_every=0)
    image_before = {k: v.clone() for k, v in plain.model.visual.state_dict().items()}
    plain.fit(resume=False)
    assert all(torch.equal(image_before[k], v) for k, v in plain.model.visual.state_dict().items())
    assert not any(p.requires_grad for p in plain.model.visual.parameters())
    ckpt = _trainer(
        base, tiny_dataset, tokenizer, tmp_path / "b", mode="lit", max_steps=2, save_every=0, grad_checkpointing=True
    )
    ckpt.fit(resume=False)
    a, b = plain.model.state_dict(), ckpt.model.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert not torch.equal(
        a["text_projection"], load_model(base[0], vision_config=base[1], text_config=base[2]).model.text_projection
    )


def test_loss_is_clip_loss_for_distinct_pairs_and_spares_shared_captions():
    gen = torch.Generator().manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(5, 8, generator=gen), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(5, 8, generator=gen), dim=-1)
    scale = torch.tensor(10.0)
    ids = torch.arange(5)
    logits = scale * img @ txt.t()
    clip = (torch.nn.functional.cross_entropy(logits, ids) + torch.nn.functional.cross_entropy(logits.t(), ids)) / 2
    assert torch.allclose(contrastive_loss(img, txt, scale, ids, ids), clip)
    # Two photos with one caption (text id 0 twice): which photo's copy of the caption is which cannot
    # matter, so swapping the two text embeddings leaves the loss unchanged; CLIP's plain loss changes.
    shared = torch.tensor([0, 0, 1, 2, 3])
    swapped = txt[[1, 0, 2, 3, 4]]
    assert torch.allclose(
        contrastive_loss(img, txt, scale, ids, shared), contrastive_loss(img, swapped, scale, ids, shared)
    )
    assert not torch.allclose(
        contrastive_loss(img, txt, scale, ids, ids), contrastive_loss(img, swapped, scale, ids, ids)
    )


def test_schedule_and_precision():
    assert lr_at(0, 1.0, 4, 20) == pytest.approx(0.25)
    assert lr_at(3, 1.0, 4, 20) == pytest.approx(1.0)
    assert lr_at(12, 1.0, 4, 20) == pytest.approx(0.5)
    assert lr_at(20, 1.0, 4, 20) == pytest.approx(0.0)
    assert pick_precision("auto", torch.device("cpu")) == "fp32"
    assert pick_precision("bf16", torch.device("cpu")) == "fp32"
    with pytest.raises(FinetuneError, match="mode"):
        TrainConfig(mode="half").check()


# ---- evaluation: the same numbers as cn_clip's scripts -----------------------------------------------------


def _cnclip_scores(tmp: Path, features: Features) -> tuple[dict, list[float]]:
    """Run cn_clip's make_topk_predictions.py (its .cuda() calls made no-ops: there is no GPU here) and
    its evaluation.compute_score on our feature files."""
    from cn_clip.eval import evaluation

    pred = tmp / "cnclip_predictions.jsonl"
    script = Path(evaluation.__file__).with_name("make_topk_predictions.py")
    argv, cuda = sys.argv, torch.Tensor.cuda
    sys.argv = [
        "make_topk_predictions.py",
        "--image-feats",
        str(tmp / "image_feats.jsonl"),
        "--text-feats",
        str(tmp / "text_feats.jsonl"),
        "--top-k",
        "10",
        "--output",
        str(pred),
    ]
    torch.Tensor.cuda = lambda self, *a, **k: self
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv, torch.Tensor.cuda = argv, cuda
    predictions = {}
    for line in pred.read_text().splitlines():
        obj = json.loads(line)
        predictions[obj["text_id"]] = obj["image_ids"]
    return predictions, evaluation.compute_score(str(tmp / "ground_truth.jsonl"), str(pred))


def _check_parity(tmp: Path, features: Features) -> None:
    ours, predictions = evaluate_features(features)
    write_cnclip_files(tmp, features, predictions, ours)
    their_predictions, (mean, r1, r5, r10) = _cnclip_scores(tmp, features)
    assert their_predictions == predictions
    assert (ours.mean_recall, ours.r1, ours.r5, ours.r10) == pytest.approx((mean, r1, r5, r10), abs=1e-9)


def test_recall_equals_cnclip_on_model_features(base, tokenizer, tmp_path):
    ckpt, vision, text = base
    model = load_model(ckpt, vision_config=vision, text_config=text).model
    # 12 concepts, 2 held-out photos each: 24 images, one text line with two right answers per concept.
    info = syn.make_dataset(
        tmp_path / "ds", syn.concepts(["红色", "绿色", "蓝色", "黄色"]), 3, size=64, valid_per_concept=2
    )
    from photod.finetune.evaluate import encode_features

    features = encode_features(model, info, "valid", tokenizer=tokenizer, image_size=64)
    assert len(features.image_ids) == 24 and all(len(v) == 2 for v in features.ground_truth.values())
    _check_parity(tmp_path, features)
    result = evaluate_model(model, info, "valid", out_dir=tmp_path / "files", tokenizer=tokenizer, image_size=64)
    assert result.mean_recall == pytest.approx(evaluate_features(features)[0].mean_recall)


def test_recall_equals_cnclip_with_ties_and_several_answers(tmp_path):
    gen = np.random.default_rng(0)
    image_feats = gen.normal(size=(14, 4)).astype(np.float32)
    image_feats[5] = image_feats[2]  # exact ties: the earlier image must rank first, as in cn_clip
    image_feats[9] = image_feats[2]
    image_feats /= np.linalg.norm(image_feats, axis=1, keepdims=True)
    text_feats = np.stack([image_feats[2], image_feats[7], -image_feats[0]]).astype(np.float32)
    features = Features(
        image_ids=[30 + i for i in range(14)],
        image_feats=image_feats,
        text_ids=[1, 2, 3],
        text_feats=text_feats,
        ground_truth={1: [39], 2: [37, 31], 3: [30]},
    )
    ours, predictions = evaluate_features(features)
    assert predictions[1][:3] == [32, 35, 39]
    assert (ours.r1, ours.r5) == pytest.approx((100 / 3, 200 / 3))
    _check_parity(tmp_path, features)


def test_chance_recall():
    assert chance_hit(10, 1, 1) == pytest.approx(0.1)
    assert chance_hit(10, 2, 5) == pytest.approx(1 - math.comb(8, 5) / math.comb(10, 5))
    assert chance_hit(5, 1, 10) == 1.0
