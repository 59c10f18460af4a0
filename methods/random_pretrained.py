"""``random_pretrained``: random pruning of the trained dense model, then fine-tuning (the
DiSparse paper's pretrained "Random" row). Score: i.i.d. U(0, 1) per weight."""

from __future__ import annotations

from methods.random_pruning import RandomPruning
from methods.registry import MethodKind, register_method


@register_method("random_pretrained")
class RandomPretrained(RandomPruning):
    kind = MethodKind.PRUNE_PRETRAINED
    paper = "random pruning of a trained model (baseline row in Sun et al., CVPR 2022)"
