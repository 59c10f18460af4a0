"""Sparsity and update schedules, one place for every method that prunes over time.

- ``update_fraction``: RigL's cosine-decayed share of weights replaced per update (Evci et al.).
- ``exponential_sparsities``: SynFlow's rounds, density (1 - s)^(k/n) (Tanaka et al. 2020).
- ``round_sparsities``: iterative magnitude pruning, the same fraction of the remaining weights
  removed each round (Han et al. 2015; Frankle & Carbin 2019).
- ``cubic_sparsity``: gradual magnitude pruning (Zhu & Gupta 2017).
"""

from __future__ import annotations

import math


def update_fraction(step: int, alpha: float, t_end: int) -> float:
    """Cosine-decayed share of a layer's active weights replaced at ``step``:
    alpha / 2 * (1 + cos(pi * step / t_end)) before ``t_end``, then 0."""
    if step >= t_end:
        return 0.0
    return alpha / 2 * (1 + math.cos(math.pi * step / t_end))


def exponential_sparsities(target: float, rounds: int) -> list[float]:
    """Sparsity after each of ``rounds`` rounds when density decays as (1 - target)^(k/rounds)."""
    return [1.0 - (1.0 - target) ** (k / rounds) for k in range(1, rounds + 1)]


def round_sparsities(target: float, rounds: int, fraction: float | None = None) -> list[float]:
    """Sparsity after each pruning round when every round removes the same fraction of the
    remaining weights. With ``fraction`` unset it is solved from ``rounds`` so the last round
    lands on ``target``; with it set, the rounds needed are derived and the last is clipped to
    ``target``. The last entry is always exactly ``target``."""
    if not 0.0 <= target < 1.0:
        raise ValueError(f"target sparsity must be in [0, 1), got {target}")
    if fraction is None:
        if rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {rounds}")
        fraction = 1.0 - (1.0 - target) ** (1.0 / rounds)
    elif not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    else:
        rounds = max(1, math.ceil(math.log(1.0 - target) / math.log(1.0 - fraction) - 1e-9))
    schedule = [min(1.0 - (1.0 - fraction) ** r, target) for r in range(1, rounds + 1)]
    schedule[-1] = target
    return schedule


def cubic_sparsity(step: int, begin: int, end: int, target: float, initial: float = 0.0) -> float:
    """Zhu & Gupta's s_t = s_f + (s_i - s_f) * (1 - (t - t_0) / (t_end - t_0))^3, held at s_i
    before ``begin`` and at s_f from ``end`` on."""
    if step <= begin:
        return initial
    if step >= end:
        return target
    progress = (step - begin) / (end - begin)
    return target + (initial - target) * (1.0 - progress) ** 3
