"""The default model: a small multitask CNN sized for CPU runs.

Encoder: six 3x3 conv-BN-ReLU blocks in three stages (output stride 1, 2, 4), the last block
dilated for context. Head per task: one 3x3 conv-BN-ReLU and a 1x1 classifier, upsampled
bilinearly to the input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from methods.networks.parts import ModelParts
from methods.networks.registry import register_model


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def small_encoder(width: int) -> nn.Sequential:
    w = width
    return nn.Sequential(
        conv_bn_relu(3, w),
        conv_bn_relu(w, 2 * w, stride=2),
        conv_bn_relu(2 * w, 2 * w),
        conv_bn_relu(2 * w, 4 * w, stride=2),
        conv_bn_relu(4 * w, 4 * w),
        conv_bn_relu(4 * w, 4 * w, dilation=2),
    )


def small_head(in_channels: int, hidden: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(conv_bn_relu(in_channels, hidden), nn.Conv2d(hidden, out_channels, 1))


@dataclass(frozen=True)
class SmallCNNOptions:
    width: int = field(
        default=16,
        metadata={"help": "channels of the first block (later blocks use 2x and 4x)"},
    )

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError(f"model.width must be >= 1, got {self.width}")


@register_model("small_cnn", SmallCNNOptions)
def small_cnn_parts(options: SmallCNNOptions) -> ModelParts:
    width = options.width
    return ModelParts(
        make_encoder=lambda: small_encoder(width),
        stage_ends=(1, 3, 6),
        stage_channels=(width, 2 * width, 4 * width),
        make_head=lambda c_in, c_out: small_head(c_in, 2 * width, c_out),
    )
