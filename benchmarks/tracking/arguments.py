"""What the command-line tools that read the MLflow store share: how they are told where it is."""

from __future__ import annotations

import argparse
import os

DEFAULT_URI = "sqlite:///mlflow.db"  # as benchmarks/conf/tracking/mlflow.yaml
DEFAULT_EXPERIMENT = "mtl-sparse-bench"


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tracking-uri`` (default: $MLFLOW_TRACKING_URI, else the local SQLite file) and
    ``--experiment``."""
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_URI),
        help="MLflow store (default: $MLFLOW_TRACKING_URI or %(default)s)",
    )
    parser.add_argument(
        "--experiment",
        default=DEFAULT_EXPERIMENT,
        help="MLflow experiment name (default: %(default)s)",
    )
