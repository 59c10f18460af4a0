"""MobileNetV2 (Sandler et al., CVPR 2018) as a dense-prediction encoder: inverted residual
blocks (1x1 expansion, 3x3 depthwise, 1x1 linear projection; a residual when shape allows), the
paper's stage table, with the strides after output stride 8 turned into dilations (as DeepLabV3's
MobileNetV2 backbone), and the suite's small dense head per task. AdapMTL's second backbone.

Stages (for MTAN and the fusion architectures) end where a block keeps its input size: the stem
with the first block, the 24-, 32-channel blocks, the 64- and 96-channel blocks, the 160- and
320-channel blocks. ``width`` scales every block's channels (the paper's width multiplier,
rounded to multiples of 8 as the paper's reference code does).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from methods.networks.multitask_cnn import small_head
from methods.networks.parts import ModelParts
from methods.networks.registry import register_model

# (expansion t, channels c, blocks n, stride s) of the paper's Table 2; strides after the third
# stage become dilations (output stride 8).
INVERTED_RESIDUALS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
OUTPUT_STRIDE_STAGES = 3  # stages whose stride is kept (stem 2 x 2 x 2 = output stride 8)


def rounded_channels(channels: float, divisor: int = 8) -> int:
    """The reference code's ``_make_divisible``: nearest multiple of ``divisor``, never below
    90% of the value."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


def conv_bn_relu6(
    c_in: int, c_out: int, kernel: int, stride: int = 1, dilation: int = 1, groups: int = 1
) -> list[nn.Module]:
    padding = dilation * (kernel - 1) // 2
    return [
        nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU6(inplace=True),
    ]


class InvertedResidual(nn.Module):
    """Expand (1x1), filter each channel (3x3 depthwise), project (1x1, no activation); the
    input is added back when the block keeps its shape."""

    def __init__(self, c_in: int, c_out: int, stride: int, dilation: int, expansion: int):
        super().__init__()
        hidden = c_in * expansion
        layers = [] if expansion == 1 else conv_bn_relu6(c_in, hidden, 1)
        layers += conv_bn_relu6(hidden, hidden, 3, stride, dilation, groups=hidden)
        layers += [nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


def mobilenet_v2_encoder(width: float) -> tuple[nn.Sequential, tuple[int, ...], tuple[int, ...]]:
    """(encoder, stage ends, stage channels) at width multiplier ``width``."""
    c_in = rounded_channels(STEM_CHANNELS * width)
    modules: list[nn.Module] = [nn.Sequential(*conv_bn_relu6(3, c_in, 3, stride=2))]
    ends, channels = [], []
    dilation = 1
    for index, (expansion, c, count, stride) in enumerate(INVERTED_RESIDUALS):
        c_out = rounded_channels(c * width)
        if index >= OUTPUT_STRIDE_STAGES and stride > 1:
            dilation, stride = dilation * stride, 1
        for block in range(count):
            modules.append(
                InvertedResidual(c_in, c_out, stride if block == 0 else 1, dilation, expansion)
            )
            c_in = c_out
        if c in (16, 24, 32, 96, 320):  # the block after these changes size: a stage ends
            ends.append(len(modules))
            channels.append(c_out)
    return nn.Sequential(*modules), tuple(ends), tuple(channels)


@dataclass(frozen=True)
class MobileNetV2Options:
    width: float = field(
        default=1.0, metadata={"help": "width multiplier of every block's channels (the paper's)"}
    )
    head_channels: int = field(
        default=64, metadata={"help": "channels of each task head's 3x3 conv"}
    )

    def __post_init__(self) -> None:
        if self.width <= 0:
            raise ValueError(f"model.width must be > 0, got {self.width}")
        if self.head_channels < 1:
            raise ValueError(f"model.head_channels must be >= 1, got {self.head_channels}")


@register_model("mobilenet_v2", MobileNetV2Options)
def mobilenet_v2_parts(options: MobileNetV2Options) -> ModelParts:
    _, ends, channels = mobilenet_v2_encoder(options.width)
    return ModelParts(
        make_encoder=lambda: mobilenet_v2_encoder(options.width)[0],
        stage_ends=ends,
        stage_channels=channels,
        make_head=lambda c_in, c_out: small_head(c_in, options.head_channels, c_out),
    )
