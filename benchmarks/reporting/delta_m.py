"""delta-m: the multitask summary number of a model against a baseline of the same setting.

    delta_m = 100 * mean_t [ mean_{j in metrics(t)} (-1)^{l_j} (M_tj - B_tj) / B_tj ]

l_j = 1 when lower is better; positive = better than the baseline. Two variants choose metrics(t):

- ``all_metrics`` (the default): every metric of the task that enters delta-m (display variants
  such as ``mIoU_adashare`` do not). Averaging within a task first gives every task the same
  weight whatever its number of metrics. This is LibMTL's Delta_p.
- ``main_metric``: one metric per task (``MetricSpec.main``: seg mIoU, normal mean angle, depth
  absolute error, keypoint/edge MAE). This is the delta_MTL of Maninis et al. (CVPR 2019) and
  Vandenhende et al. (TPAMI 2021), who measure it against single-task networks
  (``--baseline single_task``). Vandenhende et al. use depth RMSE where we have absolute error.

A metric whose baseline is 0 has no relative change and is left out (it is 0 for every row of the
setting, so rows stay comparable). Metric names and directions come from the task kinds
(``core.tasks``); a declared metric missing from a row is an error, not a NaN.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping

from core.tasks import metric_specs

VARIANTS = {
    "all_metrics": "mean over tasks of the mean relative change of all the task's metrics "
    "(LibMTL's Δp)",
    "main_metric": "mean over tasks of the relative change of each task's main metric "
    "(Maninis et al. 2019, Vandenhende et al. 2021)",
}


def delta_m_metrics(tasks: Mapping[str, str], variant: str = "all_metrics") -> list[str]:
    """The ``<task>/<metric>`` keys that enter delta-m under ``variant``."""
    if variant not in VARIANTS:
        raise ValueError(f"delta-m variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    specs = metric_specs(tasks).items()
    if variant == "main_metric":
        return [key for key, spec in specs if spec.main]
    return [key for key, spec in specs if spec.in_delta_m]


def task_changes(
    values: Mapping[str, float],
    baseline: Mapping[str, float],
    tasks: Mapping[str, str],
    variant: str = "all_metrics",
) -> dict[str, float]:
    """Each task's signed relative change in percent (the mean over its metrics in ``variant``)
    of ``values`` against ``baseline`` (both keyed ``<task>/<metric>``); delta-m is their mean.
    NaN for every task when a value is NaN; a task whose metrics all have a zero baseline is
    left out."""
    keys = delta_m_metrics(tasks, variant)
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
            return dict.fromkeys(tasks, math.nan)
        if base == 0:
            continue
        sign = 1.0 if specs[key].higher_is_better else -1.0
        per_task[key.split("/")[0]].append(sign * (value - base) / base)
    return {task: 100.0 * sum(v) / len(v) for task, v in per_task.items()}


def delta_m(
    values: Mapping[str, float],
    baseline: Mapping[str, float],
    tasks: Mapping[str, str],
    variant: str = "all_metrics",
) -> float:
    """delta-m in percent of ``values`` against ``baseline``: the mean of ``task_changes``."""
    changes = task_changes(values, baseline, tasks, variant)
    return sum(changes.values()) / len(changes) if changes else math.nan
