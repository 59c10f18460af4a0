"""``model=deeplab_resnet34``: the DiSparse paper's network.

Encoder: torchvision's ResNet-34 made dilated for output stride 8 (layer3 dilation 2, layer4
dilation 4, strides removed), input normalised with the ImageNet statistics inside the model. Its
conv weights are exactly those of the authors' ``Deeplab_ResNet_Backbone`` (21,267,648).

Head per task (``head``), four branches with dilation 6, 12, 18 and 24 whose outputs are summed:

- ``aspp``: each branch one 3x3 dilated conv to the task's channels (DeepLab-v2's classifier);
  small, the heads are 2-4% of the prunable weights.
- ``aspp_fc``: the authors' ``Classification_Module`` per branch: 3x3 dilated conv 512->1024
  (bias), ReLU, dropout 0.5, 1x1 1024->1024, ReLU, dropout 0.5, 1x1 1024->C. The heads are then
  ~68% of the prunable weights with two tasks and ~84% with Taskonomy's five, so "90% sparsity"
  means what it means in the paper. The paper presets use it.

Initialisation (``init``): ``pytorch`` (PyTorch's defaults) or ``authors`` (encoder convs
N(0, 0.01), BatchNorm weight 1 and bias 0; heads keep PyTorch's defaults, as in their code).
ImageNet weights come only from a local file (``pretrained_path``); nothing is downloaded. The
authors train from scratch, so the paper presets leave it unset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet34

from core.options import check_choice
from methods.networks.parts import ModelParts, split_last_residual_block
from methods.networks.registry import register_model

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ASPP_RATES = (6, 12, 18, 24)
HEADS = ("aspp", "aspp_fc")
INITS = ("pytorch", "authors")
FC_WIDTH = 1024


class ImageNetNormalize(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _dilate(layer: nn.Sequential, dilation: int) -> None:
    """Remove the layer's stride and dilate its 3x3 convolutions instead (output stride kept)."""
    for block in layer:
        for conv in (block.conv1, block.conv2):
            conv.stride = (1, 1)
            conv.dilation = (dilation, dilation)
            conv.padding = (dilation, dilation)
        if block.downsample is not None:
            block.downsample[0].stride = (1, 1)


def fc_branch(in_channels: int, out_channels: int, rate: int) -> nn.Sequential:
    """One branch of the authors' head (their ``Classification_Module``)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, FC_WIDTH, 3, padding=rate, dilation=rate),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Conv2d(FC_WIDTH, FC_WIDTH, 1),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Conv2d(FC_WIDTH, out_channels, 1),
    )


def conv_branch(in_channels: int, out_channels: int, rate: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=rate, dilation=rate)


class ASPP(nn.Module):
    """Sum of four branches at dilation rates 6, 12, 18 and 24."""

    def __init__(self, in_channels: int, out_channels: int, head: str = "aspp"):
        super().__init__()
        branch = fc_branch if head == "aspp_fc" else conv_branch
        self.branches = nn.ModuleList(branch(in_channels, out_channels, r) for r in ASPP_RATES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(branch(x) for branch in self.branches)


@torch.no_grad()
def authors_init(encoder: nn.Module) -> nn.Module:
    """The authors' encoder initialisation: conv weights N(0, 0.01), BatchNorm weight 1, bias 0."""
    for module in encoder.modules():
        if isinstance(module, nn.Conv2d):
            module.weight.normal_(0.0, 0.01)
        elif isinstance(module, nn.BatchNorm2d):
            module.weight.fill_(1.0)
            module.bias.zero_()
    return encoder


def dilated_resnet34(pretrained_path: str | None) -> nn.Sequential:
    net = resnet34(weights=None)
    if pretrained_path:
        path = Path(pretrained_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"model.pretrained_path={path} does not exist; give a local ImageNet ResNet-34 "
                "state dict (torchvision's resnet34 .pth) or null for random initialisation"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        missing, unexpected = net.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            raise ValueError(
                f"{path} is not a ResNet-34 state dict (missing {missing[:3]}, "
                f"unexpected {unexpected[:3]})"
            )
    _dilate(net.layer3, 2)
    _dilate(net.layer4, 4)
    return nn.Sequential(
        ImageNetNormalize(),
        net.conv1,
        net.bn1,
        net.relu,
        net.maxpool,
        net.layer1,
        net.layer2,
        net.layer3,
        net.layer4,
    )


@dataclass(frozen=True)
class DeepLabOptions:
    pretrained_path: str | None = field(
        default=None,
        metadata={"help": "local torchvision ResNet-34 state dict (ImageNet); null: none"},
    )
    head: str = field(default="aspp", metadata={"help": "task heads: aspp or aspp_fc (authors')"})
    init: str = field(
        default="pytorch", metadata={"help": "pytorch (defaults) or authors (encoder N(0, 0.01))"}
    )

    def __post_init__(self) -> None:
        check_choice("model.head", self.head, HEADS)
        check_choice("model.init", self.init, INITS)
        if self.pretrained_path and self.init == "authors":
            raise ValueError(
                "model.init=authors initialises the encoder from scratch; set "
                "model.pretrained_path to null, or model.init=pytorch to start from the ImageNet "
                "weights"
            )


@register_model("deeplab_resnet34", DeepLabOptions)
def deeplab_resnet34_parts(options: DeepLabOptions) -> ModelParts:
    pretrained_path, head, init = options.pretrained_path, options.head, options.init
    if pretrained_path:  # fail at config time, not per task encoder
        dilated_resnet34(pretrained_path)

    def make_encoder() -> nn.Sequential:
        encoder = dilated_resnet34(pretrained_path)
        return authors_init(encoder) if init == "authors" else encoder

    return ModelParts(
        make_encoder=make_encoder,
        stage_ends=(6, 7, 8, 9),
        stage_channels=(64, 128, 256, 512),
        make_head=lambda c_in, c_out: ASPP(c_in, c_out, head),
        split_stage=split_last_residual_block,
    )
