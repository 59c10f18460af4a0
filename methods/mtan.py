"""``mtan``: Multi-Task Attention Network (Liu et al., CVPR 2019): a shared encoder with a soft
attention module per task and stage (see ``methods/networks/attention.py``)."""

from __future__ import annotations

from collections.abc import Sequence

from core.tasks import TaskSpec
from methods.hparams import NoHparams
from methods.lifecycle import Architecture
from methods.networks import Backbone, MultiTaskNet
from methods.networks.attention import AttentionNet
from methods.registry import register_method


@register_method("mtan")
class Mtan(Architecture):
    Hparams = NoHparams
    paper = "Liu et al., End-to-End Multi-Task Learning with Attention, CVPR 2019"

    def build_network(self, backbone: Backbone, tasks: Sequence[TaskSpec]) -> MultiTaskNet:
        return AttentionNet(backbone, tasks)
