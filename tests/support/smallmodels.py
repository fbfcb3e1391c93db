"""Small Chinese-CLIP shapes for tests and benchmarks, in cn_clip's model-config JSON format.

They are built from cn_clip's real CLIP class (VisualTransformer or ModifiedResNet image tower, BERT text
tower over the real 21128-token vocabulary) with random weights, and saved as cn_clip's trainer saves a
checkpoint, so they travel through exactly the import path an official checkpoint takes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from photod.finetune.checkpoint import build_model, normalise_vision_config

EMBED_DIM = 32

SMALL_VIT: dict[str, Any] = {
    "embed_dim": EMBED_DIM,
    "image_resolution": 64,
    "vision_layers": 2,
    "vision_width": 64,
    "vision_patch_size": 16,
    "vision_head_width": 32,
}

# ModifiedResNet needs image_resolution divisible by 32; its feature width is vision_width * 32.
SMALL_RN: dict[str, Any] = {
    "embed_dim": EMBED_DIM,
    "image_resolution": 64,
    "vision_layers": "[1,1,1,1]",
    "vision_width": 16,
    "vision_patch_size": None,
    "vision_head_width": 64,
}

SMALL_TEXT: dict[str, Any] = {
    "vocab_size": 21128,  # cn_clip's real vocab, so the real tokenizer and vocab.txt are exercised
    "text_attention_probs_dropout_prob": 0.1,
    "text_hidden_act": "gelu",
    "text_hidden_dropout_prob": 0.1,
    "text_hidden_size": 64,
    "text_initializer_range": 0.02,
    "text_intermediate_size": 128,
    "text_max_position_embeddings": 512,
    "text_num_attention_heads": 2,
    "text_num_hidden_layers": 2,
    "text_type_vocab_size": 2,
}

KINDS = {"vit": SMALL_VIT, "rn": SMALL_RN}


def vision_config(kind: str) -> dict[str, Any]:
    """A copy of the small vision config for `kind` ("vit" or "rn")."""
    if kind not in KINDS:
        raise ValueError(f"unknown small model kind {kind!r}; use one of {', '.join(KINDS)}")
    return dict(KINDS[kind])


def _randomise_batchnorm(model: torch.nn.Module, gen: torch.Generator) -> None:
    # Fresh BatchNorm layers are identities in eval mode (mean 0, var 1, weight 1, and cn_clip zeroes every
    # bn3 weight); trained ones are not. Random statistics make the export prove it folds them correctly.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
            module.weight.data.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
            module.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


def build_small_model(kind: str = "vit", seed: int = 0) -> torch.nn.Module:
    """A small cn_clip CLIP with random (seeded) weights, eval mode."""
    torch.manual_seed(seed)
    vision = normalise_vision_config(vision_config(kind), f"small {kind}")
    model = build_model(vision, dict(SMALL_TEXT))
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        _randomise_batchnorm(model, gen)
    return model.eval()


def build_small_checkpoint(
    path: str | os.PathLike, kind: str = "vit", seed: int = 0, fp16_weights: bool = False
) -> tuple[Path, Path, Path]:
    """Write a small random model as a cn_clip checkpoint plus its two config files into folder `path`.

    The checkpoint is {"epoch", "step", "name", "state_dict"} with "module." prefixes, as cn_clip's
    distributed trainer writes it. With `fp16_weights` the floating tensors are stored as fp16, like the
    official downloads. Returns (checkpoint, vision config, text config) paths.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    model = build_small_model(kind, seed)
    state = {}
    for key, value in model.state_dict().items():
        if fp16_weights and value.is_floating_point():
            value = value.half()
        state["module." + key] = value.clone()
    ckpt = folder / f"small-{kind}-s{seed}.pt"
    torch.save({"epoch": 1, "step": 1, "name": f"small-{kind}", "state_dict": state}, ckpt)
    vision_path = folder / f"small-{kind}-vision.json"
    text_path = folder / "small-text.json"
    vision_path.write_text(json.dumps(vision_config(kind), indent=2) + "\n", encoding="utf-8")
    text_path.write_text(json.dumps(SMALL_TEXT, indent=2) + "\n", encoding="utf-8")
    return ckpt, vision_path, text_path
