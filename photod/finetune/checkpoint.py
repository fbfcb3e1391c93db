"""Loading Chinese-CLIP checkpoints into cn_clip's own `CLIP` model, with errors a person can act on.

A checkpoint is what cn_clip's trainer writes and what the official `.pt` downloads are: a dict holding
"state_dict" (keys prefixed "module." when saved from a distributed trainer), maybe "epoch", "step",
"name" and "optimizer". It is read with `torch.load(weights_only=True)`, so a file carrying pickled code is
refused rather than executed.

The architecture comes either from a named arch (cn_clip's `_MODEL_INFO`: a vision config and a text config
from `cn_clip/clip/model_configs/`) or from two JSON files in the same format, merged as cn_clip's
`create_model` merges them.
"""

from __future__ import annotations

import ast
import inspect
import json
import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from cn_clip.clip import utils as cn_utils
from cn_clip.clip.model import CLIP

from photod.errors import ModelError
from photod.model.bundle import ModelSpec

log = logging.getLogger(__name__)

CONFIG_DIR = Path(cn_utils.__file__).parent / "model_configs"
VISION_KEYS = ("embed_dim", "image_resolution", "vision_layers", "vision_width", "vision_patch_size")
TEXT_KEYS = (
    "vocab_size",
    "text_attention_probs_dropout_prob",
    "text_hidden_act",
    "text_hidden_dropout_prob",
    "text_hidden_size",
    "text_initializer_range",
    "text_intermediate_size",
    "text_max_position_embeddings",
    "text_num_attention_heads",
    "text_num_hidden_layers",
    "text_type_vocab_size",
)
_CLIP_ARGS = set(inspect.signature(CLIP.__init__).parameters) - {"self", "tokenizer", "use_flash_attention"}


def known_archs() -> list[str]:
    """The architecture names cn_clip knows (RN50, ViT-B-16, ViT-L-14, ViT-L-14-336, ViT-H-14)."""
    return list(cn_utils._MODEL_INFO)


@dataclass
class LoadedModel:
    """A CLIP model in eval mode and fp32, with the spec (configs) that built it."""

    model: CLIP
    spec: ModelSpec
    info: dict[str, Any]  # "epoch", "step", "name" from the checkpoint, where present


# ---------------------------------------------------------------------------------------------------------
# configs


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{what} {path} is not a readable JSON file: {exc}") from None
    if not isinstance(data, dict):
        raise ModelError(f"{what} {path} must hold a JSON object in cn_clip's model-config format")
    return data


def normalise_vision_config(cfg: dict[str, Any], origin: str) -> dict[str, Any]:
    """A copy of a cn_clip vision config with `vision_layers` parsed to an int or a list of 4 ints."""
    cfg = dict(cfg)
    layers = cfg.get("vision_layers")
    if isinstance(layers, str):
        # cn_clip writes ResNet layer counts as a string like "[3,4,6,3]"; parse it as data, never eval it.
        try:
            layers = ast.literal_eval(layers)
        except (ValueError, SyntaxError):
            raise ModelError(f"vision config {origin}: vision_layers {layers!r} is not a list of integers") from None
    if isinstance(layers, (list, tuple)):
        if len(layers) != 4 or not all(isinstance(n, int) and n > 0 for n in layers):
            raise ModelError(
                f"vision config {origin}: vision_layers must be 4 positive integers "
                f"(ResNet) or one integer (ViT), got {layers!r}"
            )
        layers = list(layers)
    elif not (isinstance(layers, int) and layers > 0):
        raise ModelError(
            f"vision config {origin}: vision_layers must be a positive integer (ViT) or a "
            f"list of 4 (ResNet), got {layers!r}"
        )
    cfg["vision_layers"] = layers
    return cfg


def _check_keys(cfg: dict[str, Any], required: tuple[str, ...], origin: str, what: str) -> None:
    missing = [k for k in required if k not in cfg]
    if missing:
        raise ModelError(
            f"{what} {origin} lacks {', '.join(missing)}",
            "use cn_clip's model-config format (see cn_clip/clip/model_configs/*.json)",
        )
    unknown = sorted(set(cfg) - _CLIP_ARGS)
    if unknown:
        raise ModelError(f"{what} {origin} has keys cn_clip's CLIP does not take: {', '.join(unknown)}")


def load_configs(
    arch: str | None = None,
    vision_config: str | os.PathLike | None = None,
    text_config: str | os.PathLike | None = None,
) -> tuple[dict, dict, str]:
    """(vision config, text config, arch name) from a named arch or from two cn_clip-format JSON files."""
    if arch and (vision_config or text_config):
        raise ModelError("give either --arch or --vision-config/--text-config, not both")
    if arch:
        if arch not in cn_utils._MODEL_INFO:
            raise ModelError(
                f"unknown architecture {arch!r}",
                f"use one of {', '.join(known_archs())}, or --vision-config FILE --text-config FILE for other shapes",
            )
        vision_name, text_name = cn_utils._MODEL_INFO[arch]["struct"].split("@")
        vision = _read_json(CONFIG_DIR / f"{vision_name}.json", "vision config")
        text = _read_json(CONFIG_DIR / f"{text_name}.json", "text config")
        origin_v, origin_t, name = vision_name, text_name, arch
    elif vision_config and text_config:
        vision = _read_json(Path(vision_config), "vision config")
        text = _read_json(Path(text_config), "text config")
        origin_v, origin_t, name = str(vision_config), str(text_config), "custom"
    else:
        raise ModelError(
            "the model architecture is not given",
            f"pass --arch ({', '.join(known_archs())}) or both --vision-config and --text-config",
        )
    vision = normalise_vision_config(vision, origin_v)
    _check_keys(vision, VISION_KEYS, origin_v, "vision config")
    _check_keys(text, TEXT_KEYS, origin_t, "text config")
    return vision, text, name


# ---------------------------------------------------------------------------------------------------------
# checkpoint files


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict without "module." prefixes or "bert.pooler" keys, info) from a cn_clip checkpoint file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist or is not a file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses pickled classes and functions: such a file could run code when loaded.
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"checkpoint {path} holds objects other than tensors and plain data; refusing to unpickle it ({first})",
            "re-save it as {'state_dict': model.state_dict()} with torch.save",
        ) from None
    except Exception as exc:  # noqa: BLE001 - torch.load fails in many ways on a file that is not its own
        raise ModelError(
            f"{path} is not a PyTorch checkpoint ({type(exc).__name__}: {str(exc)[:200]})",
            "give a Chinese-CLIP .pt file (an official one or one written by `photod finetune`)",
        ) from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        kind = type(ckpt).__name__ if not isinstance(ckpt, dict) else "a dict without 'state_dict'"
        raise ModelError(
            f"checkpoint {path} is {kind}, not a Chinese-CLIP checkpoint",
            "expected cn_clip's format: a dict with 'state_dict' (and maybe 'epoch', 'name')",
        )
    raw = ckpt["state_dict"]
    bad = [k for k, v in raw.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ModelError(f"checkpoint {path}: state_dict entry {bad[0]!r} is not a named tensor")
    state = {}
    for key, value in raw.items():
        if key.startswith("module."):
            key = key[len("module.") :]
        if "bert.pooler" in key:
            continue  # cn_clip's BertModel has no pooler; its own loaders drop these keys too
        state[key] = value
    info = {k: ckpt[k] for k in ("epoch", "step", "name") if k in ckpt}
    return state, info


def describe_state_dict(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The shape facts a state dict reveals: image tower kind, width, layers, patch, resolution; text size."""
    facts: dict[str, Any] = {}
    if "visual.layer1.0.conv1.weight" in state:
        facts["vision"] = "resnet"
        facts["vision_layers"] = [
            len({k.split(".")[2] for k in state if k.startswith(f"visual.layer{i}.")}) for i in range(1, 5)
        ]
        facts["vision_width"] = int(state["visual.conv3.weight"].shape[0]) if "visual.conv3.weight" in state else None
        pos = state.get("visual.attnpool.positional_embedding")
        if pos is not None:
            facts["image_resolution"] = int(round((pos.shape[0] - 1) ** 0.5)) * 32
    elif "visual.conv1.weight" in state:
        facts["vision"] = "vit"
        conv = state["visual.conv1.weight"]
        facts["vision_width"], facts["vision_patch_size"] = int(conv.shape[0]), int(conv.shape[-1])
        facts["vision_layers"] = len({k.split(".")[3] for k in state if k.startswith("visual.transformer.resblocks.")})
        pos = state.get("visual.positional_embedding")
        if pos is not None:
            facts["image_resolution"] = int(round((pos.shape[0] - 1) ** 0.5)) * facts["vision_patch_size"]
    if "text_projection" in state:
        facts["text_hidden_size"], facts["embed_dim"] = (int(x) for x in state["text_projection"].shape)
    facts["text_num_hidden_layers"] = len({k.split(".")[3] for k in state if k.startswith("bert.encoder.layer.")})
    return facts


def guess_arch(state: dict[str, torch.Tensor]) -> str | None:
    """The cn_clip arch whose configs match this state dict's shapes, or None."""
    facts = describe_state_dict(state)
    for arch in known_archs():
        vision, text, _ = load_configs(arch)
        want = {
            "vision_width": vision["vision_width"],
            "vision_layers": vision["vision_layers"],
            "image_resolution": vision["image_resolution"],
            "embed_dim": vision["embed_dim"],
            "text_hidden_size": text["text_hidden_size"],
            "text_num_hidden_layers": text["text_num_hidden_layers"],
        }
        if vision.get("vision_patch_size"):
            want["vision_patch_size"] = vision["vision_patch_size"]
        if all(facts.get(k) == v for k, v in want.items()):
            return arch
    return None


def _mismatch_error(path: Path, arch: str, state: dict, model_state: dict) -> ModelError:
    missing = [k for k in model_state if k not in state]
    unexpected = [k for k in state if k not in model_state]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in model_state.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys (first: {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys (first: {', '.join(unexpected[:3])})")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatches (first: {'; '.join(shapes[:2])})")
    guess = guess_arch(state)
    if guess and guess != arch:
        hint = f"this checkpoint looks like --arch {guess}"
    else:
        facts = describe_state_dict(state)
        hint = "pass --vision-config/--text-config files matching its shapes: " + ", ".join(
            f"{k}={v}" for k, v in facts.items()
        )
    return ModelError(f"checkpoint {path} does not fit architecture {arch}: " + "; ".join(parts), hint)


# ---------------------------------------------------------------------------------------------------------
# models


def build_model(vision_config: dict[str, Any], text_config: dict[str, Any]) -> CLIP:
    """cn_clip's CLIP from the two configs, merged as cn_clip's create_model does; fp32, eval mode."""
    merged = {**vision_config, **text_config}
    try:
        model = CLIP(**merged)
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        raise ModelError(f"cn_clip cannot build a model from these configs: {exc}") from None
    return model.float().eval()


def load_model(
    checkpoint: str | os.PathLike,
    arch: str | None = None,
    vision_config: str | os.PathLike | None = None,
    text_config: str | os.PathLike | None = None,
) -> LoadedModel:
    """Load a Chinese-CLIP checkpoint into cn_clip's CLIP (fp32, eval). Raises ModelError on any mismatch."""
    path = Path(checkpoint)
    state, info = read_checkpoint(path)
    vision, text, arch_name = load_configs(arch, vision_config, text_config)
    # Built on the meta device: no memory and no random init for weights the checkpoint replaces anyway
    # (seconds and gigabytes for ViT-H), and a mismatch is reported before anything is allocated.
    with torch.device("meta"):
        model = build_model(vision, text)
    model_state = model.state_dict()
    if set(state) != set(model_state) or any(tuple(state[k].shape) != tuple(v.shape) for k, v in model_state.items()):
        raise _mismatch_error(path, arch_name, state, model_state)
    model.load_state_dict(state, strict=True, assign=True)
    leftover = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:
        raise ModelError(f"checkpoint {path} leaves {', '.join(leftover[:3])} without values")
    # Official files store most weights in fp16; photod exports from fp32.
    model = model.float().eval()
    log.info("loaded checkpoint %s as %s (%s)", path, arch_name, info or "no metadata")
    return LoadedModel(model=model, spec=ModelSpec.from_configs(arch_name, vision, text), info=info)
