"""``single_task``: one network per task, nothing shared: the reference for what sharing costs
(its parameter count is the sum over tasks). Each task gets the model's full encoder and head.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.tasks import TaskSpec
from methods.lifecycle import Architecture
from methods.networks import ModelParts, MultiTaskNet
from methods.networks.task_encoders import TaskEncodersNet
from methods.options import NoOptions
from methods.registry import register_method


@register_method("single_task")
class SingleTask(Architecture):
    Options = NoOptions
    paper = "independent single-task networks (the baseline of Misra et al., CVPR 2016)"

    def build_network(self, parts: ModelParts, tasks: Sequence[TaskSpec]) -> MultiTaskNet:
        return TaskEncodersNet(parts, tasks)
