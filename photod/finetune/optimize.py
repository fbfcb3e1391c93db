"""An export-only form of cn_clip's ViT image tower that ONNX Runtime runs faster, computing the same function.

cn_clip's VisualTransformer runs its blocks in (tokens, batch, width) order through nn.MultiheadAttention.
The TorchScript exporter turns each attention into ~40 small nodes (chunking Gathers, Transposes, two
MatMuls, Softmax) that ONNX Runtime's attention fusion does not recognise, so they run one by one. Here:

- every block but the last runs in (batch, tokens, width) order and its attention is exported as ONNX
  Runtime's `com.microsoft.Attention` contrib op (one QKV projection, all heads in one kernel), which
  dynamic int8 quantization turns into `QAttention`;
- the last block is computed for the class token only: the tower's output is `ln_post(x[:, 0]) @ proj`, so
  the other tokens' queries, attention outputs and MLPs in the last block are never used. Their keys and
  values are (every token attends to all of them), so those are still projected for every token.

The PyTorch forward of this module computes the same embedding as `encode_image` (it is the tracing
reference, and the export is verified against the original model anyway). Nothing of the wrapped model is
changed: weights are read, and the transposed copies the contrib op needs are this module's own buffers.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

CONTRIB_DOMAIN = "com.microsoft"
CUSTOM_OPSETS = {CONTRIB_DOMAIN: 1}


def _heads_split(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(batch, tokens, width) -> (batch, heads, tokens, head width)."""
    return x.reshape(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head scaled dot-product attention on (batch, tokens, width) projections, as nn.MultiheadAttention
    computes it (queries scaled by 1/sqrt(head width) before the product)."""
    q, k, v = _heads_split(q, heads), _heads_split(k, heads), _heads_split(v, heads)
    scale = float(q.shape[-1]) ** -0.5
    weights = torch.softmax(torch.matmul(q * scale, k.transpose(-1, -2)), dim=-1)
    out = torch.matmul(weights, v).transpose(1, 2)
    return out.reshape(out.shape[0], out.shape[1], -1)


class _ContribAttention(torch.autograd.Function):
    """Self-attention with packed QKV weights, exported as one com.microsoft.Attention node."""

    @staticmethod
    def forward(
        ctx,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor,  # noqa: ARG004
        heads: int,
    ) -> torch.Tensor:
        q, k, v = torch.matmul(x, weight).add(bias).chunk(3, dim=-1)
        return _attention(q, k, v, heads)

    @staticmethod
    def symbolic(g, x, weight, bias, heads: int):
        out = g.op(f"{CONTRIB_DOMAIN}::Attention", x, weight, bias, num_heads_i=heads)
        out.setType(x.type())
        return out


class _BlockParts(torch.nn.Module):
    """The parts of a ResidualAttentionBlock both rewritten forms keep as they are; each adds its own
    in-projection buffers."""

    def __init__(self, block: torch.nn.Module):
        super().__init__()
        attn = block.attn
        self.heads = int(attn.num_heads)
        self.ln_1, self.ln_2, self.mlp, self.out_proj = block.ln_1, block.ln_2, block.mlp, attn.out_proj


class _Block(_BlockParts):
    """One ResidualAttentionBlock in (batch, tokens, width) order with a packed-QKV attention."""

    def __init__(self, block: torch.nn.Module):
        super().__init__(block)
        attn = block.attn
        # Attention wants the input-major (width, 3 * width) layout; nn.MultiheadAttention keeps (3w, w).
        self.register_buffer("qkv_weight", attn.in_proj_weight.detach().t().contiguous(), persistent=False)
        self.register_buffer("qkv_bias", attn.in_proj_bias.detach().clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attended = _ContribAttention.apply(self.ln_1(x), self.qkv_weight, self.qkv_bias, self.heads)
        x = x + self.out_proj(attended)
        return x + self.mlp(self.ln_2(x))


class _ClassTokenBlock(_BlockParts):
    """The last ResidualAttentionBlock computed for the class token only (see the module docstring)."""

    def __init__(self, block: torch.nn.Module):
        super().__init__(block)
        attn = block.attn
        w, b = attn.in_proj_weight.detach(), attn.in_proj_bias.detach()
        width = w.shape[1]
        self.register_buffer("q_weight", w[:width].clone(), persistent=False)
        self.register_buffer("q_bias", b[:width].clone(), persistent=False)
        self.register_buffer("kv_weight", w[width:].clone(), persistent=False)
        self.register_buffer("kv_bias", b[width:].clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        q = F.linear(h[:, :1], self.q_weight, self.q_bias)
        k, v = F.linear(h, self.kv_weight, self.kv_bias).chunk(2, dim=-1)
        cls = x[:, :1] + self.out_proj(_attention(q, k, v, self.heads))
        cls = cls + self.mlp(self.ln_2(cls))
        return cls[:, 0]


class FusedViTImageTower(torch.nn.Module):
    """L2-normalised image embeddings of a cn_clip CLIP with a VisualTransformer image tower, in the form
    described in the module docstring. Build it with `fused_image_tower`, which checks that form applies."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        visual = model.visual
        self.conv1, self.ln_pre, self.ln_post = visual.conv1, visual.ln_pre, visual.ln_post
        self.class_embedding, self.positional_embedding = visual.class_embedding, visual.positional_embedding
        self.proj = visual.proj
        blocks = list(visual.transformer.resblocks)
        self.blocks = torch.nn.ModuleList(_Block(b) for b in blocks[:-1])
        self.last = _ClassTokenBlock(blocks[-1])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.conv1(image)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        for block in self.blocks:
            x = block(x)
        features = self.ln_post(self.last(x))
        if self.proj is not None:
            features = features @ self.proj
        return features / features.norm(dim=-1, keepdim=True)


def fused_image_tower(model: torch.nn.Module) -> FusedViTImageTower | None:
    """The fused export form of `model`'s image tower, or None where it does not apply: a ResNet tower, or
    a ViT whose attention is not a plain self-attention nn.MultiheadAttention (flash attention, masks,
    extra key/value biases, separate Q/K/V weights)."""
    from cn_clip.clip.model import VisualTransformer

    visual = getattr(model, "visual", None)
    if not isinstance(visual, VisualTransformer):
        return None
    for block in visual.transformer.resblocks:
        attn = getattr(block, "attn", None)
        if (
            not isinstance(attn, torch.nn.MultiheadAttention)
            or getattr(block, "attn_mask", None) is not None
            or not attn._qkv_same_embed_dim
            or attn.in_proj_bias is None
            or attn.bias_k is not None
            or attn.add_zero_attn
            or attn.batch_first
        ):
            log.info("image tower attention is not plain self-attention; exporting it unfused")
            return None
    return FusedViTImageTower(model).eval()
