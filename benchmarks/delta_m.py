"""delta-m (Maninis et al., CVPR 2019): the multitask summary number of a compressed model.

    delta_m = 100 * mean_t [ mean_{j in metrics(t)} (-1)^{l_j} (M_tj - B_tj) / B_tj ]

B is the dense baseline of the same setting, l_j = 1 when lower is better. Averaging within a
task first gives every task the same weight whatever its number of metrics. Only metrics with
``in_delta_m`` enter (variants such as ``mIoU_adashare`` do not). A metric whose baseline is 0 has
no relative change and is left out (it is 0 for every row of the setting, so rows stay comparable).
Positive = better than dense. Metric names and directions come from the task kinds
(``core.tasks``); a declared metric missing from a row is an error, not a NaN.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping

from core.tasks import metric_specs


def delta_m_metrics(tasks: Mapping[str, str]) -> list[str]:
    return [key for key, spec in metric_specs(tasks).items() if spec.in_delta_m]


def delta_m(
    values: Mapping[str, float], baseline: Mapping[str, float], tasks: Mapping[str, str]
) -> float:
    """delta-m in percent of ``values`` against ``baseline`` (both keyed ``<task>/<metric>``)."""
    keys = delta_m_metrics(tasks)
    for label, row in (("row", values), ("baseline", baseline)):
        missing = [k for k in keys if k not in row]
        if missing:
            raise KeyError(
                f"the {label} has no {', '.join(missing)}, which its tasks declare; was it "
                "logged by an older version with other metric names? Rerun that cell."
            )
    per_task: dict[str, list[float]] = defaultdict(list)
    specs = metric_specs(tasks)
    for key in keys:
        value, base = values[key], baseline[key]
        if math.isnan(value) or math.isnan(base):
            return math.nan
        if base == 0:
            continue
        sign = 1.0 if specs[key].higher_is_better else -1.0
        per_task[key.split("/")[0]].append(sign * (value - base) / base)
    if not per_task:
        return math.nan
    return 100.0 * sum(sum(v) / len(v) for v in per_task.values()) / len(per_task)
