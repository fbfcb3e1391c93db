"""The official Chinese-CLIP architectures, and telling which one a pair of ONNX towers is.

The configs are cn_clip's own (cn_clip/clip/model_configs/*.json), written out here because a bundle made
from ONNX files on a Raspberry Pi has no cn_clip to read them from; tests/test_onnx_import.py checks them
against cn_clip where it is installed. A bundle's manifest keeps them, as for a bundle exported from a
checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from photod.errors import ModelError

VOCAB_SIZE = 21128
_TEXT_COMMON = {
    "vocab_size": VOCAB_SIZE,
    "text_attention_probs_dropout_prob": 0.1,
    "text_hidden_act": "gelu",
    "text_hidden_dropout_prob": 0.1,
    "text_initializer_range": 0.02,
    "text_max_position_embeddings": 512,
    "text_type_vocab_size": 2,
}
_RBT3 = {
    **_TEXT_COMMON,
    "text_hidden_size": 768,
    "text_intermediate_size": 3072,
    "text_num_attention_heads": 12,
    "text_num_hidden_layers": 3,
}
_BASE = {**_RBT3, "text_num_hidden_layers": 12}
_LARGE = {
    **_TEXT_COMMON,
    "text_hidden_size": 1024,
    "text_intermediate_size": 4096,
    "text_num_attention_heads": 16,
    "text_num_hidden_layers": 24,
}

# name -> (vision config, text config)
CONFIGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "RN50": (
        {
            "embed_dim": 1024,
            "image_resolution": 224,
            "vision_layers": "[3,4,6,3]",
            "vision_width": 64,
            "vision_patch_size": None,
        },
        _RBT3,
    ),
    "ViT-B-16": (
        {"embed_dim": 512, "image_resolution": 224, "vision_layers": 12, "vision_width": 768, "vision_patch_size": 16},
        _BASE,
    ),
    "ViT-L-14": (
        {"embed_dim": 768, "image_resolution": 224, "vision_layers": 24, "vision_width": 1024, "vision_patch_size": 14},
        _BASE,
    ),
    "ViT-L-14-336": (
        {"embed_dim": 768, "image_resolution": 336, "vision_layers": 24, "vision_width": 1024, "vision_patch_size": 14},
        _BASE,
    ),
    "ViT-H-14": (
        {
            "embed_dim": 1024,
            "image_resolution": 224,
            "vision_layers": 32,
            "vision_width": 1280,
            "vision_head_width": 80,
            "vision_patch_size": 14,
        },
        _LARGE,
    ),
}


@dataclass(frozen=True)
class Facts:
    """What a pair of towers shows of its architecture; None where a graph does not tell.

    image_size and context_length come from the input shapes, embed_dim from the outputs, patch_size from
    the patch-embedding convolution (kernel = stride; a ResNet has none), the layer counts from the
    attention softmaxes (one per transformer layer; RN50's attention pooling counts as one), text_width from
    the token-embedding table."""

    image_size: int | None
    embed_dim: int | None
    context_length: int | None
    patch_size: int | None
    vision_attention: int | None
    text_width: int | None
    text_layers: int | None

    def describe(self) -> str:
        return ", ".join(f"{f.name} {getattr(self, f.name)}" for f in fields(self) if getattr(self, f.name) is not None)


def vision_heads(arch: str) -> int | None:
    """Attention heads of the arch's ViT image tower (cn_clip: width / head width, 64 unless the config
    says), None for a ResNet."""
    vision = CONFIGS[arch][0]
    if vision["vision_patch_size"] is None:
        return None
    heads: int = vision["vision_width"] // vision.get("vision_head_width", 64)
    return heads


def expected(arch: str) -> Facts:
    """The Facts a pair of towers of `arch` shows."""
    vision, text = CONFIGS[arch]
    patch = vision["vision_patch_size"]
    return Facts(
        image_size=vision["image_resolution"],
        embed_dim=vision["embed_dim"],
        context_length=None,
        patch_size=patch,
        vision_attention=vision["vision_layers"] if patch else 1,
        text_width=text["text_hidden_size"],
        text_layers=text["text_num_hidden_layers"],
    )


def mismatches(facts: Facts, arch: str) -> list[str]:
    """The facts that contradict `arch`, as "name: seen X, ARCH has Y"; facts a graph did not tell are no
    contradiction. A ResNet's missing patch size is a fact (patch_size None both ways), so it is compared
    through vision_attention instead."""
    want = expected(arch)
    out = []
    for f in fields(Facts):
        seen, has = getattr(facts, f.name), getattr(want, f.name)
        if seen is not None and has is not None and seen != has:
            out.append(f"{f.name}: the graphs show {seen}, {arch} has {has}")
    if facts.patch_size is None and want.patch_size is not None and facts.vision_attention == 1:
        out.append(f"patch_size: the image graph has no patch embedding, {arch} is a ViT")
    return out


def recognise(facts: Facts, arch: str | None = None) -> str:
    """The official architecture the towers are: `arch` when given and not contradicted, else the one arch
    the facts fit. Raises ModelError naming the facts when none fits, or when several do and no `arch` says
    which."""
    if arch is not None:
        if arch not in CONFIGS:
            raise ModelError(f"unknown architecture {arch!r}", f"use one of {', '.join(CONFIGS)}")
        problems = mismatches(facts, arch)
        if problems:
            raise ModelError(
                f"these ONNX files are not {arch}: " + "; ".join(problems),
                "leave out --arch to let photod recognise the architecture",
            )
        return arch
    fitting = [name for name in CONFIGS if not mismatches(facts, name)]
    if len(fitting) == 1:
        return fitting[0]
    if not fitting:
        raise ModelError(
            f"the ONNX files match no official Chinese-CLIP architecture ({facts.describe()})",
            "a model of your own design imports from its checkpoint: "
            "`photod model import FILE.pt --vision-config V.json --text-config T.json`",
        )
    raise ModelError(
        f"the ONNX files could be {' or '.join(fitting)} ({facts.describe()})", f"say which with --arch {fitting[0]}"
    )
