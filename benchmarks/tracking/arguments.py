"""What the command-line tools that read the MLflow store share: how they are told where it is,
and where they look for a run when they are not told."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DEFAULT_URI = "sqlite:///mlflow.db"  # as benchmarks/conf/tracking/mlflow.yaml
SMOKE_URI = "sqlite:///smoke/mlflow.db"  # as benchmarks/conf/experiment/smoke.yaml
DEFAULT_EXPERIMENT = "mtl-sparse-bench"
SQLITE = "sqlite:///"


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tracking-uri`` (default: $MLFLOW_TRACKING_URI, else the local SQLite file) and
    ``--experiment``."""
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help=f"MLflow store (default: $MLFLOW_TRACKING_URI or {DEFAULT_URI})",
    )
    parser.add_argument(
        "--experiment",
        default=DEFAULT_EXPERIMENT,
        help="MLflow experiment name (default: %(default)s)",
    )


def given_store(args: argparse.Namespace) -> str | None:
    """The store the user named (``--tracking-uri`` or $MLFLOW_TRACKING_URI), if any."""
    return args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")


def store_uri(args: argparse.Namespace) -> str:
    """The store a tool reads: the one named, else the default sweep's."""
    return given_store(args) or DEFAULT_URI


def known_stores() -> list[str]:
    """Stores this checkout's commands write without being told where: the default sweep's and
    the smoke experiment's (those whose SQLite file exists)."""
    return [uri for uri in (DEFAULT_URI, SMOKE_URI) if sqlite_path(uri).is_file()]


def sqlite_path(uri: str) -> Path:
    return Path(uri.removeprefix(SQLITE)).expanduser()


def same_store(a: str, b: str) -> bool:
    """Two URIs of one store (SQLite paths compared resolved: ``sqlite:///mlflow.db`` in this
    folder is its absolute path)."""
    if a.startswith(SQLITE) and b.startswith(SQLITE):
        return sqlite_path(a).resolve() == sqlite_path(b).resolve()
    return a.rstrip("/") == b.rstrip("/")


def results_folder_of(uri: str) -> Path:
    """Where a store's leaderboard goes when no folder is named: ``results/`` for the default
    store and for servers, the folder of any other SQLite file (``smoke/`` for the smoke
    store, as the smoke experiment writes it)."""
    if uri.startswith(SQLITE) and not same_store(uri, DEFAULT_URI):
        return sqlite_path(uri).parent
    return Path("results")
