"""delta-m (Maninis et al., CVPR 2019): the multitask summary number of a compressed model.

    delta_m = 100 * mean_t [ mean_{j in metrics(t)} (-1)^{l_j} (M_tj - B_tj) / B_tj ]

B is the dense baseline of the same setting, l_j = 1 when lower is better. Averaging within a
task first gives every task the same weight whatever its number of metrics. Only metrics with
``in_delta_m`` enter (variants such as ``mIoU_adashare`` do not). A metric whose baseline is 0 has
no relative change and is left out (it is 0 for every row of the setting, so rows stay comparable).
Positive = better than dense.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping

from datasets.tasks import MetricSpec, make_task


def metric_specs(tasks: Mapping[str, str]) -> dict[str, MetricSpec]:
    """``{"<task>/<metric>": spec}`` for tasks given as ``{name: kind}``."""
    specs = {}
    for name, kind in tasks.items():
        spec = make_task(kind, num_classes=2, name=name)  # class count does not change metrics
        specs.update({f"{name}/{m.name}": m for m in spec.metrics})
    return specs


def delta_m_metrics(tasks: Mapping[str, str]) -> list[str]:
    return [key for key, spec in metric_specs(tasks).items() if spec.in_delta_m]


def delta_m(
    values: Mapping[str, float], baseline: Mapping[str, float], tasks: Mapping[str, str]
) -> float:
    """delta-m in percent of ``values`` against ``baseline`` (both keyed ``<task>/<metric>``)."""
    per_task: dict[str, list[float]] = defaultdict(list)
    for key, spec in metric_specs(tasks).items():
        if not spec.in_delta_m:
            continue
        value, base = values.get(key, math.nan), baseline.get(key, math.nan)
        if math.isnan(value) or math.isnan(base):
            return math.nan
        if base == 0:
            continue
        sign = 1.0 if spec.higher_is_better else -1.0
        per_task[key.split("/")[0]].append(sign * (value - base) / base)
    if not per_task:
        return math.nan
    return 100.0 * sum(sum(v) / len(v) for v in per_task.values()) / len(per_task)
