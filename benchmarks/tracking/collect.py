"""Read finished runs from the MLflow store into a table (one row per run)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from benchmarks.tracking.access import open_client
from benchmarks.tracking.schema import (
    BUDGET,
    CELL_ID,
    CODE_FINGERPRINT,
    CONSTANT,
    DESCRIPTION_TAGS,
    FAILURE_REASON,
    HEALTH,
    HEALTH_TAGS,
    INFERENCE,
    KERNEL_TAG,
    KIND,
    LEGACY_CONFIG_HASH,
    LEGACY_KIND,
    LOSS_SPIKE,
    METHOD,
    MODEL_COST,
    READOUT,
    SETTING_ID,
    SPARSITY_ACHIEVED,
    TEST,
    TIME,
    TRAIN_LOSS,
    VARIANT,
)
from benchmarks.tracking.store import all_runs

TAG_COLUMNS = (*DESCRIPTION_TAGS, CODE_FINGERPRINT)
KEPT_METRICS = (SPARSITY_ACHIEVED, MODEL_COST, HEALTH, BUDGET, INFERENCE, TIME, CONSTANT, READOUT)


def experiment_id(uri: str, experiment: str) -> str:
    """The id of MLflow experiment ``experiment`` in the store at ``uri`` (LookupError: none)."""
    return _experiment_id(open_client(uri), uri, experiment)


def _experiment_id(client: MlflowClient, uri: str, experiment: str) -> str:
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise LookupError(
            f"no MLflow experiment {experiment!r} in the store {uri}; run `python -m "
            "benchmarks.run` first or pass the store and MLflow experiment the runs were logged to"
        )
    return found.experiment_id


def _tags(run: Run) -> dict:
    """The run's identifying tags; a method run under non-default options is named with them
    (``snip [scoring_batches=50]``), so it gets its own leaderboard row."""
    tags = {c: run.data.tags.get(c) for c in TAG_COLUMNS}
    if tags[VARIANT]:
        tags[METHOD] = f"{tags[METHOD]} [{tags[VARIANT]}]"
    if tags[KIND] is None:  # a run from before the kind had one name
        tags[KIND] = run.data.tags.get(LEGACY_KIND)
    if tags[CELL_ID] is None:  # a run from before cell ids that no sweep has re-keyed yet
        tags[CELL_ID] = run.data.tags.get(LEGACY_CONFIG_HASH)
        tags[SETTING_ID] = run.data.tags.get("setting_hash")
    return tags


def loss_spike(client: MlflowClient, run_id: str) -> float:
    """The highest logged train loss over the first one: a run that spiked (a learning rate too
    high, a pruning step that broke the model) and recovered ends FINISHED with fine metrics, and
    the leaderboard says so. NaN when the run logged fewer than two losses."""
    history = sorted(client.get_metric_history(run_id, TRAIN_LOSS), key=lambda m: m.step)
    if len(history) < 2 or history[0].value <= 0:
        return math.nan
    return max(m.value for m in history) / history[0].value


def _row(run: Run) -> dict:
    row = _tags(run)
    metrics = run.data.metrics
    row.update({k.removeprefix(TEST): v for k, v in metrics.items() if k.startswith(TEST)})
    row.update({k: v for k, v in metrics.items() if k.startswith(KEPT_METRICS)})
    row.update({k: run.data.tags.get(k, "") for k in (*HEALTH_TAGS, KERNEL_TAG)})
    row["run_id"] = run.info.run_id
    row["start_time"] = run.info.start_time
    return row


def collect_runs(
    uri: str,
    experiment: str,
    annotate: Callable[[Run], dict] | None = None,
    loss_spikes: bool = False,
) -> pd.DataFrame:
    """Finished runs with their tags, test metrics (``<task>/<metric>``) and achieved sparsity,
    plus the columns ``annotate(run)`` computes, and with ``loss_spikes`` each run's
    ``loss_spike`` (a request per run, so only when asked).

    When a cell was run more than once (a store holding runs of older versions), one run is
    kept: the newest made by today's code when ``annotate`` says which are ``stale``, else the
    newest.
    """
    client = open_client(uri)
    experiment_id = _experiment_id(client, uri, experiment)
    rows = [
        _row(run)
        | (annotate(run) if annotate is not None else {})
        | ({LOSS_SPIKE: loss_spike(client, run.info.run_id)} if loss_spikes else {})
        for run in all_runs(client, experiment_id, "attributes.status = 'FINISHED'")
        if CELL_ID in run.data.tags or LEGACY_CONFIG_HASH in run.data.tags
    ]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = _one_run_per_cell(frame)
    frame["sparsity"] = frame["sparsity"].astype(float)
    frame["seed"] = frame["seed"].astype(int)
    return frame.reset_index(drop=True)


def _one_run_per_cell(frame: pd.DataFrame) -> pd.DataFrame:
    """The kept run of each cell: runs of today's code rank above stale ones, then by time, so a
    newer run of edited (or reverted) code never hides one that matches the code as it is."""
    fresh = ~frame["stale"].astype(bool) if "stale" in frame else pd.Series(True, frame.index)
    order = frame.assign(_fresh=fresh).sort_values(["_fresh", "start_time"], kind="stable")
    return order.drop_duplicates(CELL_ID, keep="last").drop(columns="_fresh")


def collect_failures(uri: str, experiment: str, finished: set[str]) -> pd.DataFrame:
    """Cells with a FAILED or KILLED run and no finished one (``finished``: cell ids that
    did finish, as ``collect_runs`` read them): what the leaderboard is missing, with the
    newest failure's reason."""
    client = open_client(uri)
    experiment_id = _experiment_id(client, uri, experiment)
    rows = []
    for status in ("FAILED", "KILLED"):
        for run in all_runs(client, experiment_id, f"attributes.status = '{status}'"):
            tags = _tags(run)
            if tags[CELL_ID] is not None and tags[CELL_ID] not in finished:
                rows.append(
                    {
                        **tags,
                        "status": status,
                        "reason": run.data.tags.get(FAILURE_REASON, ""),
                        "start_time": run.info.start_time,
                    }
                )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = _one_run_per_cell(frame)
    return frame.reset_index(drop=True)
