"""``model=deeplab_resnet34``: the DiSparse paper's network.

Encoder: torchvision's ResNet-34 made dilated for output stride 8 (layer3 dilation 2, layer4
dilation 4, strides removed), input normalised with the ImageNet statistics inside the model.
Head per task: DeepLab-v2's ASPP classifier, four 3x3 branches with dilation 6, 12, 18 and 24
whose outputs are summed. ImageNet weights come only from a local file (``pretrained_path``);
nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet34

from methods.networks.backbone import Backbone

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ASPP_RATES = (6, 12, 18, 24)


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


class ASPP(nn.Module):
    """Sum of dilated 3x3 convolutions (DeepLab-v2's classifier)."""

    def __init__(self, in_channels: int, out_channels: int, rates=ASPP_RATES):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Conv2d(in_channels, out_channels, 3, padding=r, dilation=r) for r in rates
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(branch(x) for branch in self.branches)


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


def deeplab_resnet34_backbone(pretrained_path: str | None = None) -> Backbone:
    if pretrained_path:  # fail at config time, not per task encoder
        dilated_resnet34(pretrained_path)
    return Backbone(
        make_encoder=lambda: dilated_resnet34(pretrained_path),
        stage_ends=(6, 7, 8, 9),
        stage_channels=(64, 128, 256, 512),
        make_head=lambda c_in, c_out: ASPP(c_in, c_out),
    )
