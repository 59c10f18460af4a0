"""A small vision transformer encoder (Dosovitskiy et al., ICLR 2021) with a progressive-
upsampling dense head per task (SETR-PUP, Zheng et al., CVPR 2021), sized for the embedded data.

The image is cut into ``patch`` x ``patch`` patches, embedded by a strided conv, given a learned
position embedding (interpolated to the image's grid, so any input size works), and passed through
``depth`` pre-norm transformer blocks (multi-head self-attention, then an MLP). Every block keeps
the feature map's layout (batch, channels, height, width) at its input and output, so the
encoder is a sequence of stages like the CNNs' (one block per stage after the first, which also
holds the embedding) and MTAN and the fusion architectures run on it. Attention and MLP use
``nn.Linear`` layers: unstructured methods prune them as any other weight; channel pruning
removes whole attention heads and MLP hidden units (``methods.channel_graph``).

Each task head: 3x3 conv-BN-ReLU, then (x2 bilinear upsampling, 3x3 conv-BN-ReLU) until the
patch grid is back at the image's resolution, then a 1x1 conv to the task's channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from methods.networks.parts import ModelParts
from methods.networks.registry import register_model


class PatchEmbedding(nn.Module):
    """Patches embedded by a strided conv, plus a learned position embedding on a
    ``grid`` x ``grid`` layout, resized bilinearly to the image's patch grid."""

    added_parameters = ("position",)  # a constant added to the tokens (``methods.health``)

    def __init__(self, dim: int, patch: int, grid: int):
        super().__init__()
        self.project = nn.Conv2d(3, dim, patch, stride=patch)
        self.position = nn.Parameter(torch.randn(1, dim, grid, grid) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project(x)
        position = self.position
        if position.shape[-2:] != x.shape[-2:]:
            position = F.interpolate(position, x.shape[-2:], mode="bilinear", align_corners=False)
        return x + position


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, count, _ = tokens.shape
        # the heads' width from qkv, not from the tokens: channel pruning removes whole heads
        qkv = self.qkv(tokens).reshape(batch, count, 3, self.heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        # written out, not F.scaled_dot_product_attention: its CPU kernel has no second
        # derivative, which GraSP's Hessian-gradient product needs
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
        mixed = weights @ v
        return self.proj(mixed.transpose(1, 2).reshape(batch, count, -1))


class TransformerBlock(nn.Module):
    """Pre-norm attention and MLP residual blocks, on a (batch, channels, height, width) map."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        hidden = round(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, dim, height, width = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        tokens = tokens + self.attention(self.norm1(tokens))
        tokens = tokens + self.mlp(self.norm2(tokens))
        return tokens.transpose(1, 2).reshape(batch, dim, height, width)


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


def progressive_head(c_in: int, hidden: int, c_out: int, upsamplings: int) -> nn.Sequential:
    """SETR's progressive upsampling: conv, then ``upsamplings`` x (x2 upsampling, conv), 1x1."""
    layers = _conv_bn_relu(c_in, hidden)
    for _ in range(upsamplings):
        layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)]
        layers += _conv_bn_relu(hidden, hidden)
    return nn.Sequential(*layers, nn.Conv2d(hidden, c_out, 1))


@dataclass(frozen=True)
class ViTOptions:
    dim: int = field(default=64, metadata={"help": "token width"})
    depth: int = field(default=4, metadata={"help": "transformer blocks"})
    heads: int = field(default=4, metadata={"help": "attention heads per block (divide dim)"})
    mlp_ratio: float = field(default=2.0, metadata={"help": "MLP hidden width / dim"})
    patch: int = field(default=4, metadata={"help": "patch size in pixels (a power of two)"})
    grid: int = field(
        default=8, metadata={"help": "position-embedding grid (resized to the image's)"}
    )
    head_channels: int = field(default=32, metadata={"help": "channels of each task head"})

    def __post_init__(self) -> None:
        if self.dim < 1 or self.depth < 1 or self.heads < 1 or self.head_channels < 1:
            raise ValueError("model.dim, depth, heads and head_channels must be >= 1")
        if self.dim % self.heads:
            raise ValueError(f"model.heads={self.heads} must divide model.dim={self.dim}")
        if self.patch < 1 or self.patch & (self.patch - 1):
            raise ValueError(f"model.patch must be a power of two, got {self.patch}")
        if self.mlp_ratio <= 0 or self.grid < 1:
            raise ValueError("model.mlp_ratio must be > 0 and model.grid >= 1")


@register_model("vit", ViTOptions)
def vit_parts(options: ViTOptions) -> ModelParts:
    o = options

    def make_encoder() -> nn.Sequential:
        blocks = [TransformerBlock(o.dim, o.heads, o.mlp_ratio) for _ in range(o.depth)]
        return nn.Sequential(PatchEmbedding(o.dim, o.patch, o.grid), *blocks)

    upsamplings = int(math.log2(o.patch))
    return ModelParts(
        make_encoder=make_encoder,
        stage_ends=tuple(range(2, o.depth + 2)),
        stage_channels=(o.dim,) * o.depth,
        make_head=lambda c_in, c_out: progressive_head(c_in, o.head_channels, c_out, upsamplings),
    )
