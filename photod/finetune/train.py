"""The training loop: contrastive fine-tuning of cn_clip's CLIP on a photod dataset.

One readable loop, top to bottom:

    for each optimizer step:
        lr <- warm-up then cosine decay of the step number
        batch(es) <- the epoch's seeded permutation of the pairs, cut in batches
        loss <- symmetric cross-entropy between image and text embeddings, scaled by the model's logit_scale
        backward (through the autocast/GradScaler of the precision in use), AdamW step
        clamp logit_scale to [0, ln 100], as cn_clip does
        every `save_every` steps: checkpoint (atomically)

Modes:
- `lit` (locked-image tuning): the image tower is frozen (no gradients, eval mode) and only the text tower
  and logit scale learn. Image vectors already in the index stay valid: nothing is re-encoded.
- `full`: both towers learn; the library is re-encoded when the model is installed.

Loss: CLIP's symmetric cross-entropy, with one change for personal captions: pairs in a batch that share
their text (ten photos captioned 小白) or their photo are positives of each other, not negatives, and the
target spreads evenly over them. With all texts and photos distinct this is exactly CLIP's loss.

Accumulation (`accum_steps` > 1) follows cn_clip: the embeddings of every micro-batch are first computed
without gradients, then each micro-batch is recomputed with gradients and its loss taken against all the
others, so the contrastive loss sees the whole accumulated batch as negatives, as a big batch would.

Resume: a checkpoint holds weights, optimizer, GradScaler, step and every RNG state; the data order is a
function of (seed, epoch) and the schedule a function of the step, so a resumed run takes the same steps
an uninterrupted one would and ends with the same weights (bit for bit on CPU).

On CPU it runs in fp32, slowly; on a GPU, bf16 autocast where supported, else fp16 with a GradScaler.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
import random
import time
import warnings
from dataclasses import asdict, dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, Iterator

import lmdb
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from photod import durable
from photod.errors import FinetuneError
from photod.model.preprocess import CLIP_MEAN, CLIP_STD, image_transform
from photod.model.tokenizer import DEFAULT_CONTEXT_LENGTH, Tokenizer
from photod.store.stage import decode_value

log = logging.getLogger(__name__)

MODES = ("lit", "full")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
LATEST = "latest.pt"
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's clamp: temperature never below 0.01
# Settings a resumed run must share with the run that wrote the checkpoint, or it would not be the same run.
_RESUME_KEYS = (
    "mode",
    "epochs",
    "max_steps",
    "batch_size",
    "accum_steps",
    "lr",
    "weight_decay",
    "warmup_steps",
    "seed",
    "context_length",
)


@dataclass
class TrainConfig:
    """Everything that decides what training does. Defaults suit a few hundred personal captions."""

    mode: str = "lit"
    epochs: int = 10
    max_steps: int | None = None  # when set, wins over epochs
    batch_size: int = 32
    accum_steps: int = 1
    lr: float = 2e-5
    weight_decay: float = 0.01
    warmup_steps: int | None = None  # None: 10% of the steps
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    precision: str = "auto"
    grad_checkpointing: bool = False
    seed: int = 0
    save_every: int = 100  # steps between checkpoints; 0: only at the end
    context_length: int = DEFAULT_CONTEXT_LENGTH
    device: str = "auto"
    num_workers: int = 0
    progress: bool = True
    name: str = "photod-finetune"

    def check(self) -> None:
        if self.mode not in MODES:
            raise FinetuneError(f"unknown finetune mode {self.mode!r}", "use lit (default) or full")
        if self.precision not in PRECISIONS:
            raise FinetuneError(f"unknown precision {self.precision!r}", f"use one of {', '.join(PRECISIONS)}")
        for key in ("epochs", "batch_size", "accum_steps"):
            if getattr(self, key) < 1:
                raise FinetuneError(f"{key} must be at least 1, not {getattr(self, key)}")
        if self.batch_size < 2:
            raise FinetuneError("batch_size must be at least 2: a contrastive loss needs negatives")
        if not self.lr > 0:
            raise FinetuneError(f"the learning rate must be positive, not {self.lr}")


@dataclass
class TrainResult:
    steps: int
    total_steps: int
    seconds: float
    images_per_second: float
    final_loss: float | None
    losses: list[float] = field(default_factory=list)
    checkpoint: Path | None = None
    interrupted: bool = False
    device: str = "cpu"
    precision: str = "fp32"
    peak_memory_bytes: int | None = None


# ---- data ----------------------------------------------------------------------------------------------


def prepare_text(text: str) -> str:
    """The text as cn_clip's data pipeline hands it to the tokenizer: lower case, curly quotes straight."""
    return text.lower().replace("\u201c", '"').replace("\u201d", '"')


class PairDataset(torch.utils.data.Dataset):
    """The (image, text) pairs of one split of a Chinese-CLIP LMDB dataset, as model inputs.

    Item: (image float32 (3, S, S), token ids int64 (context_length,), image_id, text_id). Images go
    through photod.model.preprocess (Chinese-CLIP's eval transform, bit for bit); no random augmentation, so the
    data a step sees depends only on the order, which the trainer seeds.
    """

    def __init__(
        self,
        lmdb_dir: str | os.PathLike,
        tokenizer: Tokenizer,
        image_size: int,
        context_length: int = DEFAULT_CONTEXT_LENGTH,
        mean=CLIP_MEAN,
        std=CLIP_STD,
    ):
        self.lmdb_dir = Path(lmdb_dir)
        self.tokenizer = tokenizer
        self.image_size = image_size
        self.context_length = context_length
        self.mean, self.std = mean, std
        pairs_env = _open_env(self.lmdb_dir / "pairs")
        try:
            with pairs_env.begin() as txn:
                n = int(txn.get(b"num_samples"))
                self.pairs = [pickle.loads(txn.get(str(i).encode())) for i in range(n)]
        finally:
            pairs_env.close()
        self._imgs: lmdb.Environment | None = None  # opened lazily: once per DataLoader worker process

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        image_id, text_id, text = self.pairs[index]
        if self._imgs is None:
            self._imgs = _open_env(self.lmdb_dir / "imgs")
        with self._imgs.begin() as txn:
            value = txn.get(str(image_id).encode())
        if value is None:
            raise FinetuneError(
                f"dataset {self.lmdb_dir}: image {image_id} of pair {index} is missing",
                "build or export the dataset again",
            )
        with Image.open(BytesIO(decode_value(value))) as img:
            pixels = image_transform(img, self.image_size, self.mean, self.std)
        tokens = self.tokenizer.tokenize(prepare_text(text), self.context_length)[0]
        return torch.from_numpy(pixels), torch.from_numpy(tokens), int(image_id), int(text_id)


def _open_env(path: Path) -> lmdb.Environment:
    if not (path / "data.mdb").is_file():
        raise FinetuneError(f"{path} is not an LMDB environment", "build or export the dataset again")
    return lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The batches of one epoch: a permutation seeded by (seed, epoch), cut in `batch_size` pieces.

    A last piece of one pair is dropped (a lone pair has no negatives); with fewer pairs than a batch the
    whole set is one batch.
    """
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=gen).tolist()
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    return [b for b in batches if len(b) >= 2]


def _collate(items: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    images, texts, image_ids, text_ids = zip(*items)
    return torch.stack(images), torch.stack(texts), torch.tensor(image_ids), torch.tensor(text_ids)


# ---- model set-up ----------------------------------------------------------------------------------------


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FinetuneError(
            f"device {name} was asked for but torch sees no CUDA GPU", "run on the GPU box, or pass --device cpu (slow)"
        )
    return torch.device(name)


def pick_precision(name: str, device: torch.device) -> str:
    """fp32 on CPU; on a GPU bf16 where supported, else fp16."""
    if device.type != "cuda":
        if name in ("bf16", "fp16"):
            log.warning("mixed precision %s is for GPUs; training on %s in fp32", name, device)
        return "fp32"
    if name == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return name


def set_trainable(model: torch.nn.Module, mode: str) -> None:
    """lit: the image tower frozen, everything else learns. full: everything learns."""
    for p in model.parameters():
        p.requires_grad = True
    if mode == "lit":
        for p in model.visual.parameters():
            p.requires_grad = False


def set_train_mode(model: torch.nn.Module, mode: str) -> None:
    model.train()
    if mode == "lit":
        # A frozen tower also keeps its BatchNorm statistics (ResNet towers) and runs without dropout.
        model.visual.eval()


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; biases, norm gains and the logit scale (every tensor of fewer than 2 dims) get no decay."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "logit_scale" in name else decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=cfg.betas,
        eps=cfg.eps,
    )


def lr_at(step: int, base_lr: float, warmup: int, total: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 0 at `total` (cn_clip's schedule)."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    if total <= warmup:
        return base_lr
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup))) * base_lr


# ---- loss ----------------------------------------------------------------------------------------------


def contrastive_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    logit_scale: torch.Tensor,
    image_ids: torch.Tensor,
    text_ids: torch.Tensor,
) -> torch.Tensor:
    """Symmetric cross-entropy over a batch of L2-normalised embeddings; pairs sharing a text or a photo
    are positives of each other (see the module docstring)."""
    logits = logit_scale * image_features.float() @ text_features.float().t()
    positive = (text_ids[:, None] == text_ids[None, :]) | (image_ids[:, None] == image_ids[None, :])
    target = positive.float()
    target = target / target.sum(dim=1, keepdim=True)  # symmetric, so rows serve both directions
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def trim_padding(tokens: torch.Tensor) -> torch.Tensor:
    """Drop the columns that are padding in every row. Padding is masked out of BERT's attention and the
    positions are absolute, so the embeddings do not change; short captions train several times faster."""
    used = int((tokens != 0).any(dim=0).nonzero().max()) + 1 if tokens.numel() else 0
    return tokens[:, : max(used, 1)]


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


# ---- the trainer ---------------------------------------------------------------------------------------


class Trainer:
    """Trains `model` (cn_clip CLIP) on one split folder (`lmdb/train`) of a photod dataset."""

    def __init__(
        self,
        model: torch.nn.Module,
        train_dir: str | os.PathLike,
        cfg: TrainConfig,
        checkpoint_dir: str | os.PathLike,
        *,
        tokenizer: Tokenizer,
        image_size: int,
        mean=CLIP_MEAN,
        std=CLIP_STD,
    ):
        cfg.check()
        self.cfg = cfg
        self.device = pick_device(cfg.device)
        self.precision = pick_precision(cfg.precision, self.device)
        if self.device.type == "cpu":
            log.warning("training on the CPU: this works but is slow; a GPU box is much faster")
        self.checkpoint_dir = Path(checkpoint_dir)
        self.data = PairDataset(train_dir, tokenizer, image_size, cfg.context_length, mean, std)
        if len(self.data) < 2:
            raise FinetuneError(
                f"the training split {train_dir} has {len(self.data)} pairs; at least 2 are needed",
                "caption more photos",
            )
        self.model = model.to(self.device).float()
        set_trainable(self.model, cfg.mode)
        if cfg.grad_checkpointing:
            self.model.set_grad_checkpointing(True)
            if cfg.mode == "lit":
                self.model.visual.set_grad_checkpointing(False)  # frozen: it keeps no activations anyway
        self.optimizer = make_optimizer(self.model, cfg)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        self.batches_per_epoch = len(epoch_batches(len(self.data), cfg.batch_size, cfg.seed, 0))
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / cfg.accum_steps)
        self.total_steps = cfg.max_steps or cfg.epochs * self.steps_per_epoch
        self.warmup = cfg.warmup_steps if cfg.warmup_steps is not None else max(1, self.total_steps // 10)
        self.step = 0

    # -- autocast --

    def _autocast(self):
        if self.precision == "fp32":
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=torch.bfloat16 if self.precision == "bf16" else torch.float16)

    def _encode_images(self, images: torch.Tensor) -> torch.Tensor:
        if self.cfg.mode == "lit":
            with torch.no_grad():  # frozen tower: no graph, no activation memory
                return _normalise(self.model.encode_image(images))
        return _normalise(self.model.encode_image(images))

    def _encode_texts(self, texts: torch.Tensor) -> torch.Tensor:
        return _normalise(self.model.encode_text(trim_padding(texts)))

    # -- one optimizer step --

    def _train_step(self, micro: list[tuple[torch.Tensor, ...]]) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        image_ids = torch.cat([m[2] for m in micro]).to(self.device)
        text_ids = torch.cat([m[3] for m in micro]).to(self.device)
        if len(micro) == 1:
            images, texts = micro[0][0], micro[0][1]
            with self._autocast():
                img, txt = self._encode_images(images), self._encode_texts(texts)
                loss = contrastive_loss(img, txt, self.model.logit_scale.exp(), image_ids, text_ids)
            self.scaler.scale(loss).backward()
        else:
            # Gradient cache: all embeddings without a graph first, then each micro-batch with one.
            with torch.no_grad(), self._autocast():
                cached_img = [self._encode_images(m[0]) for m in micro]
                cached_txt = [self._encode_texts(m[1]) for m in micro]
            for j, (images, texts, _i, _t) in enumerate(micro):
                with self._autocast():
                    img_j = cached_img[j] if self.cfg.mode == "lit" else self._encode_images(images)
                    txt_j = self._encode_texts(texts)
                    img = torch.cat(cached_img[:j] + [img_j] + cached_img[j + 1 :])
                    txt = torch.cat(cached_txt[:j] + [txt_j] + cached_txt[j + 1 :])
                    loss = contrastive_loss(img, txt, self.model.logit_scale.exp(), image_ids, text_ids)
                self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        return float(loss.detach())

    def _loader(self, batches: list[list[int]], epoch: int) -> Iterator[tuple[torch.Tensor, ...]]:
        # The loader gets its own generator: it draws a seed from it when iterated, and a draw from the
        # global RNG would shift dropout masks between an interrupted run (which starts a fresh loader
        # mid-epoch) and an uninterrupted one.
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        loader = torch.utils.data.DataLoader(
            self.data,
            batch_sampler=batches,
            collate_fn=_collate,
            num_workers=self.cfg.num_workers,
            generator=gen,
            pin_memory=self.device.type == "cuda",
        )
        for images, texts, image_ids, text_ids in loader:
            yield (
                images.to(self.device, non_blocking=True),
                texts.to(self.device, non_blocking=True),
                image_ids,
                text_ids,
            )

    # -- the loop --

    def fit(self, resume: bool = True, stop_after: int | None = None) -> TrainResult:
        """Train to the end (or until `stop_after` steps in all, which saves a checkpoint and returns: an
        interruption). With `resume`, a checkpoint in `checkpoint_dir` is picked up where it left off."""
        cfg = self.cfg
        self._start(resume)
        losses: list[float] = []
        images_seen, t0 = 0, time.perf_counter()
        with self._progress_bar() as bar, _quiet_checkpointing():
            for micro in self._steps():
                lr = lr_at(self.step, cfg.lr, self.warmup, self.total_steps)
                for g in self.optimizer.param_groups:
                    g["lr"] = lr
                step_start = time.perf_counter()
                loss = self._train_step(micro)
                self.step += 1
                n_images = sum(len(m[0]) for m in micro)
                images_seen += n_images
                losses.append(loss)
                bar.update(1)
                img_s = n_images / max(time.perf_counter() - step_start, 1e-9)
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", img_s=f"{img_s:.1f}")
                if cfg.save_every and self.step % cfg.save_every == 0:
                    self.save(self.checkpoint_dir / LATEST)
                if stop_after is not None and self.step >= stop_after:
                    break  # an interruption, unless that was the last step anyway
        seconds = time.perf_counter() - t0
        path = self.save(self.checkpoint_dir / LATEST)
        peak = torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else None
        self.model.eval()
        return TrainResult(
            steps=self.step,
            total_steps=self.total_steps,
            seconds=seconds,
            images_per_second=images_seen / seconds if seconds > 0 else 0.0,
            final_loss=losses[-1] if losses else None,
            losses=losses,
            checkpoint=path,
            interrupted=self.step < self.total_steps,
            device=str(self.device),
            precision=self.precision,
            peak_memory_bytes=peak,
        )

    def _start(self, resume: bool) -> None:
        """Seed, pick up the checkpoint when resuming, and put the towers in their training modes."""
        _seed_everything(self.cfg.seed)
        if resume and (self.checkpoint_dir / LATEST).is_file():
            self.load(self.checkpoint_dir / LATEST)
        set_train_mode(self.model, self.cfg.mode)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def _progress_bar(self) -> tqdm:
        cfg = self.cfg
        return tqdm(
            total=self.total_steps,
            initial=self.step,
            unit="step",
            disable=not cfg.progress,
            desc=f"finetune {cfg.mode}",
            dynamic_ncols=True,
        )

    def _steps(self) -> Iterator[list[tuple[torch.Tensor, ...]]]:
        """The micro-batches of each step still to take, in the order an uninterrupted run takes them: each
        epoch's seeded batches, `accum_steps` to a step. The caller advances `self.step` between steps."""
        cfg = self.cfg
        while self.step < self.total_steps:
            epoch, offset = divmod(self.step, self.steps_per_epoch)
            batches = epoch_batches(len(self.data), cfg.batch_size, cfg.seed, epoch)
            groups = [batches[i : i + cfg.accum_steps] for i in range(0, len(batches), cfg.accum_steps)][offset:]
            # Only the batches still to come are loaded: a resumed epoch skips the done ones for free.
            loader = self._loader([b for g in groups for b in g], epoch)
            for group in groups:
                if self.step >= self.total_steps:
                    return
                yield [next(loader) for _ in group]

    # -- checkpoints --

    def save(self, path: Path) -> Path:
        """Write a resumable checkpoint in cn_clip's format (plus optimizer, scaler, RNG), atomically."""
        state = {
            "epoch": self.step // self.steps_per_epoch,
            "step": self.step,
            "name": self.cfg.name,
            "state_dict": model_state_dict(self.model),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": _rng_state(),
            "config": _plain_config(self.cfg),
        }
        atomic_save(state, path)
        return path

    def load(self, path: Path) -> None:
        """Restore a checkpoint `save` wrote; refuses one written with other settings."""
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        saved = ckpt.get("config", {})
        mine = _plain_config(self.cfg)
        differ = [k for k in _RESUME_KEYS if saved.get(k) != mine.get(k)]
        if differ:
            raise FinetuneError(
                f"the checkpoint {path} was written with other settings ({', '.join(differ)}); "
                "it cannot be resumed with these",
                "run with the same settings, or start afresh (remove the checkpoint or pass --fresh)",
            )
        state = {k.removeprefix("module."): v for k, v in ckpt["state_dict"].items()}
        self.model.load_state_dict(state)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        _set_rng_state(ckpt["rng"])
        self.step = int(ckpt["step"])
        log.info("resuming %s at step %d of %d", path, self.step, self.total_steps)


@contextlib.contextmanager
def _quiet_checkpointing() -> Iterator[None]:
    """Silence the warnings cn_clip's gradient checkpointing raises on every step."""
    with warnings.catch_warnings():
        # cn_clip calls torch.utils.checkpoint without use_reentrant; its default is what it wants.
        warnings.filterwarnings("ignore", message=".*use_reentrant.*")
        # ... and checkpoints its layers even in the no-grad pass of the gradient cache.
        warnings.filterwarnings("ignore", message=".*None of the inputs have requires_grad.*")
        yield


def model_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights as cn_clip's distributed trainer saves them: keys prefixed "module."."""
    return {"module." + k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def save_model_checkpoint(
    model: torch.nn.Module, path: str | os.PathLike, *, name: str = "photod-finetune", epoch: int = 0, step: int = 0
) -> Path:
    """The hand-back checkpoint: {"epoch", "step", "name", "state_dict"}, as official cn_clip files are."""
    return atomic_save({"epoch": epoch, "step": step, "name": name, "state_dict": model_state_dict(model)}, Path(path))


def atomic_save(obj: Any, path: Path) -> Path:
    """torch.save, atomically: a crash leaves the old file or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with durable.open_atomic(path) as f:
        torch.save(obj, f)
    return path


def _plain_config(cfg: TrainConfig) -> dict[str, Any]:
    data = asdict(cfg)
    data["betas"] = list(cfg.betas)
    return data


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        # As tensors and plain numbers, so the checkpoint loads with weights_only=True.
        "numpy": [
            torch.from_numpy(np_state[1].astype(np.int64)),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
