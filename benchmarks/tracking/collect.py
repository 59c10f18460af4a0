"""Read finished runs from the MLflow store into a table (one row per run)."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

TAG_COLUMNS = (
    "method",
    "method_kind",
    "group",
    "dataset",
    "tasks",
    "model",
    "protocol",
    "sparsity",
    "seed",
    "selection",
    "sanity",
    "variant",
    "setting_hash",
    "config_hash",
)


HEALTH_TAGS = (
    "health/collapsed",
    "health/disconnected",
    "health/dead_outputs",
)  # names, comma-separated, at the end
KEPT_METRICS = ("sparsity/", "model/", "health/", "budget/")


def _experiment_id(client: MlflowClient, uri: str, experiment: str) -> str:
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise LookupError(
            f"no experiment {experiment!r} in the MLflow store {uri}; run `python -m "
            "benchmarks.run` first or pass the store and experiment the runs were logged to"
        )
    return found.experiment_id


def _all_runs(client: MlflowClient, experiment_id: str, where: str) -> Iterator[Run]:
    """Every run matching ``where``, page after page."""
    token = None
    while True:
        page = client.search_runs([experiment_id], where, max_results=1000, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def _tags(run: Run) -> dict:
    """The run's identifying tags; a method run under non-default options is named with them
    (``snip [scoring_batches=50]``), so it gets its own leaderboard row."""
    tags = {c: run.data.tags.get(c) for c in TAG_COLUMNS}
    if tags["variant"]:
        tags["method"] = f"{tags['method']} [{tags['variant']}]"
    return tags


def _row(run: Run) -> dict:
    row = _tags(run)
    metrics = run.data.metrics
    row.update({k.removeprefix("test/"): v for k, v in metrics.items() if k.startswith("test/")})
    row.update({k: v for k, v in metrics.items() if k.startswith(KEPT_METRICS)})
    row.update({k: run.data.tags.get(k, "") for k in HEALTH_TAGS})
    row["run_id"] = run.info.run_id
    row["start_time"] = run.info.start_time
    return row


def collect_runs(uri: str, experiment: str) -> pd.DataFrame:
    """Finished runs with their tags, test metrics (``<task>/<metric>``) and achieved sparsity.

    When a config was run more than once (a store holding runs of older versions), only its
    newest finished run is kept.
    """
    client = MlflowClient(tracking_uri=uri)
    experiment_id = _experiment_id(client, uri, experiment)
    rows = [
        _row(run)
        for run in _all_runs(client, experiment_id, "attributes.status = 'FINISHED'")
        if "config_hash" in run.data.tags
    ]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame.sort_values("start_time").drop_duplicates("config_hash", keep="last")
    frame["sparsity"] = frame["sparsity"].astype(float)
    frame["seed"] = frame["seed"].astype(int)
    return frame.reset_index(drop=True)


def collect_failures(uri: str, experiment: str, finished: set[str]) -> pd.DataFrame:
    """Cells with a FAILED or KILLED run and no finished one (``finished``: config hashes that
    did finish, as ``collect_runs`` read them): what the leaderboard is missing, with the
    newest failure's reason."""
    client = MlflowClient(tracking_uri=uri)
    experiment_id = _experiment_id(client, uri, experiment)
    rows = []
    for status in ("FAILED", "KILLED"):
        for run in _all_runs(client, experiment_id, f"attributes.status = '{status}'"):
            tags = run.data.tags
            if "config_hash" in tags and tags["config_hash"] not in finished:
                rows.append(
                    {
                        **_tags(run),
                        "status": status,
                        "reason": tags.get("failure_reason", ""),
                        "start_time": run.info.start_time,
                    }
                )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame.sort_values("start_time").drop_duplicates("config_hash", keep="last")
    return frame.reset_index(drop=True)
