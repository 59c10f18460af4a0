"""Numbers the leaderboard computes across runs (delta-m and each task's change against the
baseline run of the same seed), written back onto each run as metrics, so MLflow's runs table
can sort and filter by them. Only values that are missing or changed are written."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping

from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from benchmarks.tracking.access import open_client
from benchmarks.tracking.store import all_runs

log = logging.getLogger(__name__)
MAX_METRICS = 1000  # MLflow's per-request limit for metrics in log_batch


def write_run_summaries(
    uri: str, experiment_id: str, summaries: Mapping[str, Mapping[str, float]]
) -> int:
    """Log ``summaries`` (run id -> {metric: value}) on their runs where the store holds another
    value or none; NaN values are skipped. Returns how many values were written; a store that
    refuses (read-only) is warned about, not fatal."""
    client = open_client(uri)
    stored = _stored_metrics(client, experiment_id, set(summaries))
    written = 0
    stamp = int(time.time() * 1000)
    try:
        for run_id, values in summaries.items():
            changed = [
                Metric(key, float(value), stamp, 0)
                for key, value in values.items()
                if not math.isnan(value) and not _same(stored.get(run_id, {}).get(key), value)
            ]
            for start in range(0, len(changed), MAX_METRICS):
                client.log_batch(run_id, metrics=changed[start : start + MAX_METRICS])
            written += len(changed)
    except MlflowException as error:
        log.warning("Δm not written onto the runs of %s: %s", uri, str(error)[:300])
    return written


def _same(stored: float | None, value: float) -> bool:
    return stored is not None and math.isclose(stored, value, rel_tol=1e-9, abs_tol=1e-12)


def _stored_metrics(
    client: MlflowClient, experiment_id: str, run_ids: set[str]
) -> dict[str, dict[str, float]]:
    runs = all_runs(client, experiment_id, "attributes.status = 'FINISHED'")
    return {r.info.run_id: r.data.metrics for r in runs if r.info.run_id in run_ids}
