"""The text of ``python -m benchmarks.run --help``: every option with its one-line meaning,
grouped by config group, generated from the code (``benchmarks.tools.config_docs`` writes it to
``benchmarks/conf/hydra/help/benchmark.yaml``; a test keeps that file current).

Meanings come from where each option is defined: the comments of ``config.yaml`` and
``tracking/mlflow.yaml`` for the top-level and tracking options, the ``help`` of each dataclass
field for the protocol, models, datasets and methods.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from omegaconf import OmegaConf

from benchmarks import CONF_DIR
from benchmarks.cells.config_files import find_config
from benchmarks.sweep.loader_workers import protocol_help
from benchmarks.training.protocol import Protocol
from core.options import describe_options
from datasets.registry import DATASETS
from methods.networks import MODELS
from methods.registry import METHODS, get_method, list_methods

HELP_FILE = CONF_DIR / "hydra" / "help" / "benchmark.yaml"
WIDTH = 100
KEY = re.compile(r"^(?P<indent> *)(?P<key>[a-z_]+):(?P<value>[^#]*)(#(?P<comment>.*))?$")

HEADER = """\
== benchmarks.run: multitask model compression benchmark ==

Runs a sweep of (method, sparsity, seed) cells, logs each to MLflow, prints the leaderboard. With
no arguments: dense, dense_same_steps, the multitask architectures and every registered
compression method (unstructured and channel pruning) at sparsities 0.5, 0.7, 0.9, seeds 0-4, on
the embedded synthetic dataset (300 cells; the time it will take on this machine is printed before
it starts, python -m benchmarks.estimate prints it alone; experiment=smoke: about a minute, in
smoke/mlflow.db and smoke/). A finished cell (same
non-default options) is skipped on rerun; one computed by other code (stale) is named and reused
unless rerun=stale (only those) or rerun=all (every cell). Set an option with key=value, a
method's with method.key=value; a typo gets the close valid names."""

FOOTER = """\
Examples:
  python -m benchmarks.run                                   # default sweep
  python -m benchmarks.run experiment=smoke                  # the pipeline in about a minute
  python -m benchmarks.run method=snip sparsity=0.9 seed=0   # one cell
  python -m benchmarks.run -m method=snip,disparse_static sparsity=0.7,0.9 seed=0,1,2
  python -m benchmarks.run experiment=sanity                 # sanity-check ablations at 90%
  python -m benchmarks.run workers=1                         # every cell in this process
  python -m benchmarks.run rerun=stale                       # recompute cells whose code changed
  python -m benchmarks.run experiment=paper_nyuv2 dataset.root=/data/nyu_v2 device=cuda
  python -m benchmarks.convergence                           # is dense converged?
  python -m benchmarks.leaderboard                           # rebuild results/ from MLflow
  python -m benchmarks.export RUN_ID --format onnx --out m.onnx   # a run's model, elsewhere
  mlflow ui --backend-store-uri sqlite:///mlflow.db          # browse every run
Use --cfg job to print the composed config with its values, --info for Hydra's search path."""


def yaml_meanings(path: Path) -> list[tuple[str, str, str]]:
    """(dotted key, value, meaning) of a commented config file: a key's meaning is the comment
    block above it or its inline comment; a nested key is ``parent.child``."""
    rows, comment, parents = [], [], {}
    inline_at = None  # column of the previous key's inline comment: deeper lines continue it
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            indent = len(line) - len(line.lstrip())
            if inline_at is not None and indent >= inline_at - 2 and rows:
                key, value, meaning = rows[-1]
                rows[-1] = (key, value, f"{meaning} {stripped.lstrip('# ')}")
            else:
                comment.append(stripped.lstrip("# "))
            continue
        match = KEY.match(line)
        if not match or stripped.startswith("- "):
            comment, inline_at = [], None
            continue
        depth = len(match["indent"]) // 2
        parents[depth] = match["key"]
        key = ".".join(parents[d] for d in range(depth + 1))
        meaning = " ".join(filter(None, [*comment, (match["comment"] or "").strip()]))
        value = match["value"].strip()
        if key not in ("defaults", "hydra") and not key.startswith("hydra."):
            rows.append((key, value, meaning))
        inline_at = line.index("#") if match["comment"] is not None else None
        comment = []
    return [row for row in rows if row[1] or row[2]]


def _lines(rows: list[tuple[str, str, str]], prefix: str = "") -> list[str]:
    out = []
    for key, value, meaning in rows:
        head = f"  {prefix}{key}={value}" if value else f"  {prefix}{key}"
        text = textwrap.fill(meaning, WIDTH, initial_indent="      ", subsequent_indent="      ")
        out += [head, text] if meaning else [head]
    return out


def _dataclass_rows(options: type, config: Path | None = None) -> list[tuple[str, str, str]]:
    """(option, value, meaning) of an options dataclass; the value is the one ``config`` (the
    entry's yaml file, which the run composes) sets, else the dataclass default."""
    values = OmegaConf.to_container(OmegaConf.load(config)) if config is not None else {}
    assert isinstance(values, dict)
    return [
        (n, _shown(values[n]) if n in values else d.strip("'"), h)
        for n, d, h in describe_options(options)
    ]


def _shown(value: object) -> str:
    return "null" if value is None else str(value).replace("'", "")


def options_text() -> str:
    """Every option, grouped: top level, tracking, protocol, then per model, dataset, method."""
    sections = ["Top-level options (benchmarks/conf/config.yaml):"]
    sections += _lines(yaml_meanings(CONF_DIR / "config.yaml"))
    sections += ["", "tracking.* (benchmarks/conf/tracking/mlflow.yaml):"]
    sections += _lines(yaml_meanings(CONF_DIR / "tracking" / "mlflow.yaml"), "tracking.")
    protocol = [
        (n, "", protocol_help(n, h)) for n, _, h in describe_options(Protocol) if n != "name"
    ]
    sections += ["", "protocol.* (values: benchmarks/conf/protocol/<name>.yaml):"]
    sections += _lines(protocol, "protocol.")
    for registry, group in ((MODELS, "model"), (DATASETS, "dataset")):
        for name in filter(registry.shipped, registry.names()):
            options = registry.entry(name).options
            sections += ["", f"{group}={name}: {group}.* options"]
            sections += _lines(_dataclass_rows(options, find_config(group, name)), f"{group}.")
    for name in filter(METHODS.shipped, list_methods()):
        rows = _dataclass_rows(get_method(name).Options)
        sections += ["", f"method={name}" + (": method.* options" if rows else ": no options")]
        sections += _lines(rows, "method.")
    return "\n".join(sections)


def help_file() -> str:
    """The Hydra help config: header, the config groups Hydra lists, every option, examples."""
    body = "\n".join(
        [
            HEADER,
            "",
            "Config groups (choose with group=option):",
            "$APP_CONFIG_GROUPS",
            "",
            options_text(),
            "",
            FOOTER,
        ]
    )
    indented = textwrap.indent(body, "  ", lambda line: True)
    return (
        "# Generated by python -m benchmarks.tools.config_docs from the code: edit there.\n"
        f"app_name: benchmarks.run\ntemplate: |\n{indented}\n"
    )
