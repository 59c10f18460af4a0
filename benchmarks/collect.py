"""Read finished runs from the MLflow store into a table (one row per run)."""

from __future__ import annotations

import pandas as pd
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
    "setting_hash",
    "config_hash",
)


HEALTH_TAGS = ("health/collapsed", "health/disconnected")  # names, comma-separated, at the end


def collect_runs(uri: str, experiment: str) -> pd.DataFrame:
    """Finished runs with their tags, test metrics (``<task>/<metric>``) and achieved sparsity.

    When a config was run more than once, only its newest finished run is kept.
    """
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise LookupError(
            f"no experiment {experiment!r} in the MLflow store {uri}; run `python -m "
            "benchmarks.run` first or pass the store and experiment the runs were logged to"
        )
    rows, token = [], None
    while True:
        page = client.search_runs(
            [found.experiment_id],
            "attributes.status = 'FINISHED'",
            max_results=1000,
            page_token=token,
        )
        for run in page:
            if "config_hash" not in run.data.tags:
                continue
            row = {c: run.data.tags.get(c) for c in TAG_COLUMNS}
            metrics = run.data.metrics
            row.update(
                {k.removeprefix("test/"): v for k, v in metrics.items() if k.startswith("test/")}
            )
            row.update(
                {
                    k: v
                    for k, v in metrics.items()
                    if k.startswith(("sparsity/", "model/", "health/", "budget/"))
                }
            )
            row.update({k: run.data.tags.get(k, "") for k in HEALTH_TAGS})
            row["run_id"] = run.info.run_id
            row["start_time"] = run.info.start_time
            rows.append(row)
        token = page.token
        if not token:
            break
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame.sort_values("start_time").drop_duplicates("config_hash", keep="last")
    frame["sparsity"] = frame["sparsity"].astype(float)
    frame["seed"] = frame["seed"].astype(int)
    return frame.reset_index(drop=True)
