"""`photod finetune`: labels -> dataset -> recall before -> train -> recall after -> bundle -> install.

    result = finetune(data_dir, base=None)          # the active model, lit mode, every label
    print(format_table(result.before, result.after))

It runs where the data dir is, or on a copy of it on a GPU box, or on a dataset file made with
`photod dataset export` (pass `dataset=`), in which case `data_dir` is just where the new bundle goes.

Training needs the base model's PyTorch weights, not its ONNX: the base is a checkpoint file (with its
arch or config files), or a bundle whose checkpoint is found beside it (`checkpoint.pt` in the bundle
folder) or at the path its manifest's `source` names (what `photod model import` records).

The model that comes out is installed only if its held-out mean recall beats the base model's, or with
`force`. In `lit` mode its image tower is the base's, unchanged, so the bundle keeps the base's image id and
every stored vector stays valid; in `full` mode the image tower changed and the library is re-encoded.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from photod.errors import FinetuneError, ModelError
from photod.finetune.checkpoint import build_model, load_configs, read_checkpoint
from photod.finetune.dataset import DatasetInfo, build_dataset, load_dataset, open_dataset
from photod.finetune.evaluate import Recall, evaluate_model, format_table
from photod.finetune.train import TrainConfig, Trainer, TrainResult, pick_device, save_model_checkpoint
from photod.model import bundle as bundles
from photod.model import registry
from photod.model.tokenizer import Tokenizer

log = logging.getLogger(__name__)

DEFAULT_LR = 5e-5


@dataclass
class BaseModel:
    """The model fine-tuning starts from: its weights file, how to build and feed it, and its vocabulary."""

    checkpoint: Path
    spec: bundles.ModelSpec
    vocab: Path
    precision: str = "int8"  # of the bundle exported from the result
    bundle: bundles.Bundle | None = None  # the bundle it came from, if any


@dataclass
class FinetuneResult:
    mode: str
    before: Recall
    after: Recall
    improved: bool
    installed: bool
    bundle: bundles.Bundle | None
    checkpoint: Path
    report: Path
    train: TrainResult
    dataset: DatasetInfo
    work_dir: Path
    reencode: bool  # the image tower changed: the library must be re-encoded with the new bundle

    def table(self) -> str:
        return format_table(self.before, self.after)


# ---- the base model --------------------------------------------------------------------------------------


def resolve_base(
    data_dir: str | os.PathLike,
    base: bundles.Bundle | str | os.PathLike | None = None,
    *,
    arch: str | None = None,
    vision_config: str | os.PathLike | None = None,
    text_config: str | os.PathLike | None = None,
) -> BaseModel:
    """The base model from a Bundle, a bundle name or folder, a checkpoint file, or (None) the active bundle."""
    if isinstance(base, bundles.Bundle):
        return _from_bundle(base)
    if base is None:
        active = registry.active_bundle(data_dir)
        if active is None:
            raise FinetuneError(
                "no base model: no model is active and none was given",
                "pass --base CHECKPOINT.pt --arch ViT-B-16, or import one with `photod model import`",
            )
        return _from_bundle(active)
    path = Path(base)
    if path.is_dir():
        return _from_bundle(bundles.Bundle.load(path))
    if not path.exists() and registry.models_dir(data_dir).joinpath(str(base)).is_dir():
        return _from_bundle(bundles.Bundle.load(registry.models_dir(data_dir) / str(base)))
    if not path.is_file():
        raise FinetuneError(
            f"base model {base} is neither a checkpoint file nor an installed model",
            "see `photod model list`, or give a Chinese-CLIP .pt file",
        )
    vision, text, name = load_configs(arch, vision_config, text_config)
    from cn_clip.clip import utils as cn_utils

    return BaseModel(
        checkpoint=path,
        spec=bundles.ModelSpec.from_configs(name, vision, text),
        vocab=Path(cn_utils.__file__).parent / "vocab.txt",
    )


def _from_bundle(b: bundles.Bundle) -> BaseModel:
    candidates = [b.path / bundles.CHECKPOINT_FILE] + ([Path(b.source)] if b.source else [])
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise FinetuneError(
            f"model {b.name} has no PyTorch checkpoint to train from (looked for "
            f"{', '.join(str(c) for c in candidates)})",
            f"copy the .pt file it was imported from next to it as {bundles.CHECKPOINT_FILE}, "
            "or pass --base FILE.pt --arch ...",
        )
    return BaseModel(checkpoint=found, spec=b.spec(), vocab=b.vocab_path, precision=b.precision, bundle=b)


def load_base_model(base: BaseModel):
    """cn_clip's CLIP with the base weights, fp32, eval mode."""
    state, _info = read_checkpoint(base.checkpoint)
    model = build_model(base.spec.vision_config, base.spec.text_config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(
            f"checkpoint {base.checkpoint} does not fit the {base.spec.arch} architecture: {str(exc).splitlines()[0]}",
            "give the matching --arch or config files",
        ) from None
    return model.eval()


# ---- the run ---------------------------------------------------------------------------------------------


def finetune(
    data_dir: str | os.PathLike,
    *,
    base: bundles.Bundle | str | os.PathLike | None = None,
    arch: str | None = None,
    vision_config: str | os.PathLike | None = None,
    text_config: str | os.PathLike | None = None,
    dataset: str | os.PathLike | None = None,
    work_dir: str | os.PathLike | None = None,
    mode: str = "lit",
    epochs: int = 10,
    max_steps: int | None = None,
    lr: float | None = None,
    batch_size: int = 32,
    accum_steps: int = 1,
    warmup_steps: int | None = None,
    weight_decay: float = 0.01,
    precision: str = "auto",
    grad_checkpointing: bool = False,
    valid_fraction: float = 0.2,
    seed: int = 0,
    sources: Iterable[str] | None = None,
    feedback: bool = True,
    save_every: int = 100,
    device: str = "auto",
    num_workers: int = 0,
    bundle_precision: str | None = None,
    name: str | None = None,
    force: bool = False,
    install: bool = True,
    resume: bool = True,
    progress: bool = True,
) -> FinetuneResult:
    """Fine-tune the base model on the labels of `data_dir` (or on `dataset`) and hand back a bundle.

    Writes everything under `work_dir` (default `<data_dir>/finetune/<name>`): dataset/, checkpoints/
    (resumable), eval-before/ and eval-after/ (cn_clip-format features, predictions, recall.json),
    finetuned.pt (cn_clip checkpoint of the result) with vision.json/text.json, and report.json.
    The new bundle `<name>` is exported and made active when the held-out mean recall improved or with
    `force` (and `install`). Raises FinetuneError/ModelError/LabelError with nothing installed on failure.
    """
    data_dir = Path(data_dir)
    run_name = registry.check_name(name or f"finetune-{mode}-{time.strftime('%Y%m%d-%H%M%S')}")
    work = Path(work_dir) if work_dir is not None else data_dir / "finetune" / run_name
    work.mkdir(parents=True, exist_ok=True)
    base_model = resolve_base(data_dir, base, arch=arch, vision_config=vision_config, text_config=text_config)
    spec = base_model.spec
    cfg = TrainConfig(
        mode=mode,
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        accum_steps=accum_steps,
        lr=lr if lr is not None else DEFAULT_LR,
        weight_decay=weight_decay,
        warmup_steps=warmup_steps,
        precision=precision,
        grad_checkpointing=grad_checkpointing,
        seed=seed,
        save_every=save_every,
        context_length=spec.context_length,
        device=device,
        num_workers=num_workers,
        progress=progress,
        name=run_name,
    )
    cfg.check()
    info = _dataset(
        data_dir, dataset, work, resume, valid_fraction=valid_fraction, seed=seed, sources=sources, feedback=feedback
    )
    tokenizer = Tokenizer.from_vocab(base_model.vocab)
    feed = dict(
        tokenizer=tokenizer,
        image_size=spec.image_size,
        context_length=spec.context_length,
        mean=spec.mean,
        std=spec.std,
    )
    dev = pick_device(device)

    model = load_base_model(base_model).to(dev)
    before = evaluate_model(model, info, "valid", out_dir=work / "eval-before", device=dev, **feed)
    trainer = Trainer(
        model,
        info.lmdb_dir("train"),
        cfg,
        work / "checkpoints",
        tokenizer=tokenizer,
        image_size=spec.image_size,
        mean=spec.mean,
        std=spec.std,
    )
    trained = trainer.fit(resume=resume)
    after = evaluate_model(trainer.model, info, "valid", out_dir=work / "eval-after", device=dev, **feed)
    log.info("held-out recall before and after fine-tuning:\n%s", format_table(before, after))

    checkpoint = save_model_checkpoint(
        trainer.model,
        work / "finetuned.pt",
        name=run_name,
        epoch=trained.steps // max(1, trainer.steps_per_epoch),
        step=trained.steps,
    )
    vision_path, text_path = _write_configs(work, base_model)
    improved = after.mean_recall > before.mean_recall
    bundle = None
    if improved or force:
        if not improved:
            log.warning(
                "held-out mean recall did not improve (%.1f -> %.1f); installing anyway (force)",
                before.mean_recall,
                after.mean_recall,
            )
        bundle = _export(
            checkpoint,
            data_dir,
            base_model,
            vision_path,
            text_path,
            run_name,
            bundle_precision or base_model.precision,
            activate=install,
        )
    else:
        log.warning(
            "held-out mean recall did not improve (%.1f -> %.1f): the model is NOT installed; "
            "its checkpoint is %s (install anyway with --force)",
            before.mean_recall,
            after.mean_recall,
            checkpoint,
        )
    installed = bundle is not None and install
    base_image_id = base_model.bundle.image_id if base_model.bundle else None
    reencode = bundle is not None and bundle.image_id != base_image_id
    result = FinetuneResult(
        mode=mode,
        before=before,
        after=after,
        improved=improved,
        installed=installed,
        bundle=bundle,
        checkpoint=checkpoint,
        report=work / "report.json",
        train=trained,
        dataset=info,
        work_dir=work,
        reencode=reencode,
    )
    _write_report(result, cfg, base_model)
    return result


def _dataset(data_dir: Path, dataset: str | os.PathLike | None, work: Path, resume: bool, **options) -> DatasetInfo:
    """The dataset to train on: a given one, the one a resumed run used, or a fresh one from the labels."""
    if dataset is not None:
        return open_dataset(dataset, work / "unpacked")
    built = work / "dataset"
    if resume and (work / "checkpoints" / "latest.pt").is_file() and built.is_dir():
        # A resumed run must see the data it started with, not labels added since.
        return load_dataset(built)
    return build_dataset(data_dir, built, **options)


def _write_configs(work: Path, base: BaseModel) -> tuple[Path, Path]:
    vision, text = work / "vision.json", work / "text.json"
    vision_cfg = dict(base.spec.vision_config)
    if isinstance(vision_cfg.get("vision_layers"), list):
        vision_cfg["vision_layers"] = json.dumps(vision_cfg["vision_layers"])  # cn_clip's file spelling
    vision.write_text(json.dumps(vision_cfg, indent=2) + "\n", encoding="utf-8")
    text.write_text(json.dumps(base.spec.text_config, indent=2) + "\n", encoding="utf-8")
    return vision, text


def _export(
    checkpoint: Path,
    data_dir: Path,
    base: BaseModel,
    vision_path: Path,
    text_path: Path,
    name: str,
    precision: str,
    activate: bool,
) -> bundles.Bundle:
    from photod.finetune.export import import_checkpoint  # onnx and onnxruntime: only when a bundle is made

    return import_checkpoint(
        checkpoint,
        data_dir,
        vision_config=vision_path,
        text_config=text_path,
        precision=precision,
        name=name,
        activate=activate,
        replace=True,
        source=str(checkpoint.resolve()),
    )


def _write_report(result: FinetuneResult, cfg: TrainConfig, base: BaseModel) -> None:
    train = asdict(result.train)
    train["losses"] = [round(x, 5) for x in train["losses"]]
    train["checkpoint"] = str(train["checkpoint"]) if train["checkpoint"] else None
    report = {
        "mode": result.mode,
        "base": {
            "checkpoint": str(base.checkpoint),
            "arch": base.spec.arch,
            "bundle": base.bundle.name if base.bundle else None,
            "image_id": base.bundle.image_id if base.bundle else None,
        },
        "dataset": result.dataset.to_json() | {"path": str(result.dataset.path)},
        "before": result.before.to_json(),
        "after": result.after.to_json(),
        "improved": result.improved,
        "installed": result.installed,
        "reencode": result.reencode,
        "bundle": None
        if result.bundle is None
        else {
            "name": result.bundle.name,
            "model_id": result.bundle.model_id,
            "image_id": result.bundle.image_id,
            "text_id": result.bundle.text_id,
            "path": str(result.bundle.path),
        },
        "checkpoint": str(result.checkpoint),
        "train": train,
        "config": asdict(cfg) | {"betas": list(cfg.betas)},
    }
    result.report.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
