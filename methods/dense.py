"""``dense``: the unpruned multitask network, the baseline every delta-m is measured against.

Its trained weights are also the starting point of every ``pretrained`` method.
"""

from __future__ import annotations

from methods.lifecycle import DenseTraining
from methods.options import NoOptions
from methods.registry import register_method


@register_method("dense")
class Dense(DenseTraining):
    Options = NoOptions
    paper = "hard parameter sharing baseline (Caruana 1997)"
