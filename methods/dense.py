"""``dense``: the unpruned multitask network, the baseline every delta-m is measured against.

Its trained weights are also the starting point of every ``prune_pretrained`` method.
"""

from __future__ import annotations

from methods.hparams import NoHparams
from methods.lifecycle import DenseTraining
from methods.registry import register_method


@register_method("dense")
class Dense(DenseTraining):
    Hparams = NoHparams
    paper = "hard parameter sharing baseline (Caruana 1997)"
