"""Leaderboards regenerated from the MLflow store.

``python -m benchmarks.leaderboard`` writes, per setting (dataset, tasks, model, protocol):
``results/<setting>.md`` (one table per target sparsity, laid out like the paper's tables),
``results/<setting>.csv`` (every aggregated row and metric) and ``results/<setting>_delta_m.png``
(delta-m against sparsity per method), ``results/<setting>_frontier.png`` (delta-m against
measured latency), plus ``results/leaderboard.md`` with all tables.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

import pandas as pd
from mlflow.exceptions import MlflowException

from benchmarks.cells.stored import describe, rekey_store
from benchmarks.reporting.critical_difference import Diagram, critical_difference
from benchmarks.reporting.delta_m import VARIANTS
from benchmarks.reporting.html_page import MLFLOW_UI, render_page
from benchmarks.reporting.kept_sections import (
    first_line,
    html_sections,
    kept,
    kept_note,
    markdown_sections,
)
from benchmarks.reporting.plots import (
    delta_m_rows,
    frontier_rows,
    plot_delta_m,
    plot_frontier,
)
from benchmarks.reporting.settings import (
    BASELINES,
    TASK_CHANGE,
    Comparison,
    Setting,
    aggregate,
    separate_option_sets,
    split_settings,
    task_change,
    with_shared_cells,
)
from benchmarks.reporting.staged import StagedFiles, new_generation, remove_leftovers
from benchmarks.reporting.tables import TABLELESS_FAILURES, failure_lines, render_setting
from benchmarks.tracking.arguments import (
    add_store_arguments,
    results_folder_of,
    same_store,
    store_uri,
)
from benchmarks.tracking.collect import collect_failures, collect_runs, experiment_id
from benchmarks.tracking.schema import CELL_ID, SETTING_ID
from benchmarks.tracking.summaries import write_run_summaries

log = logging.getLogger(__name__)


def store_frame(uri: str, experiment: str, loss_spikes: bool = False) -> pd.DataFrame:
    """The store's finished runs as every table reads them: re-keyed, one run per cell (today's
    code first), a method's runs under different option values apart."""
    rekey_store(uri, experiment)
    return separate_option_sets(collect_runs(uri, experiment, describe, loss_spikes=loss_spikes))


def store_settings(uri: str, experiment: str) -> list[Setting]:
    """The store's settings as the leaderboard compares them (LookupError: no such experiment)."""
    frame = store_frame(uri, experiment)
    return split_settings(with_shared_cells(frame)) if not frame.empty else []


def write_leaderboard(
    uri: str,
    experiment: str,
    results_dir: str | Path,
    comparison: Comparison | None = None,
    mlflow_ui: str = MLFLOW_UI,
    update: bool = False,
) -> str:
    """Rebuild every table from the store, write files under ``results_dir`` (markdown, CSV,
    plots and the browsable ``leaderboard.html``, whose run links open ``mlflow_ui``); returns
    the text.

    ``comparison``: the baseline delta-m is measured against and its variant; files of other
    than the default (dense, all_metrics) carry a suffix naming them (``Comparison.suffix``).
    ``update``: the index pages keep the sections of settings this store does not hold, as the
    folder's previous pages show them (``kept_sections``); without it they list only the store's.
    """
    comparison = comparison or Comparison()
    suffix = comparison.suffix
    frame = store_frame(uri, experiment, loss_spikes=True)
    finished = set(frame[CELL_ID]) if not frame.empty else set()
    failures = collect_failures(uri, experiment, finished)
    if frame.empty:
        empty = f"No finished runs in MLflow experiment {experiment!r} of {uri} yet."
        return "\n".join([empty, *failure_lines(failures)])
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_leftovers(out)  # staged files of leaderboards killed midway
    sections, pages, rebuilt = [], [], set()
    settings = split_settings(with_shared_cells(frame), comparison)
    experiment_key = experiment_id(uri, experiment)
    write_run_summaries(uri, experiment_key, run_summaries(settings, comparison))
    with new_generation(out) as (folder, files):  # every file replaced at once, or none
        for setting in settings:
            table = aggregate(setting)
            setting_id = str(setting.runs[SETTING_ID].iloc[0])
            rebuilt.add(setting_id)
            failed = failures[failures[SETTING_ID] == setting_id] if not failures.empty else None
            name = f"{setting.slug}{suffix}"
            diagram = critical_difference(setting.runs, setting.title.split(" [")[0])
            text = write_setting(files, folder, name, setting, table, comparison, failed, diagram)
            sections.append(text)
            pages.append((setting, table, diagram))
        orphan_lines = []
        if not failures.empty:  # settings where nothing finished
            orphans = failures[~failures[SETTING_ID].isin(set(frame[SETTING_ID]))]
            orphan_lines = failure_lines(orphans, TABLELESS_FAILURES)
        markdown_page = out / f"leaderboard{suffix}.md"
        html_page = out / f"leaderboard{suffix}.html"
        kept_markdown = kept(markdown_sections(markdown_page), rebuilt) if update else []
        kept_html = kept(html_sections(html_page), rebuilt) if update else []
        sections = sorted([*sections, *(k.text for k in kept_markdown)], key=first_line)
        full = "\n".join([*sections, *orphan_lines])
        page = render_page(pages, comparison, uri, experiment, experiment_key, mlflow_ui, kept_html)
        files.write_text(folder / html_page.name, page)
        note = f"{kept_note(kept_markdown)}\n\n" if kept_markdown else ""
        files.write_text(
            folder / markdown_page.name,
            f"# Leaderboard\n\nGenerated from {uri} (MLflow experiment {experiment}).\n\n"
            f"{note}{full}",
        )
    return full


def write_setting(
    files: StagedFiles,
    folder: Path,
    name: str,
    setting: Setting,
    table: pd.DataFrame,
    comparison: Comparison,
    failed: pd.DataFrame | None,
    diagram: Diagram | None,
) -> str:
    """A setting's markdown, CSV and plots (``<name>.md``, ``.csv``, ``_delta_m.png``,
    ``_cd.png``, ``_frontier.png``) staged in ``folder``; returns its markdown."""
    text = render_setting(setting, table, comparison)
    if diagram is not None:
        ranked = diagram.test
        files.path(folder / f"{name}_cd.png").write_bytes(diagram.png)
        text += (
            f"\nAcross the sparsities: `{name}_cd.png`, the critical-difference diagram of the "
            f"mean ranks by Δm over {ranked.blocks} (sparsity, seed) blocks (Friedman p = "
            f"{ranked.friedman_p:.2g}; Nemenyi's test joins the methods it cannot tell apart).\n"
        )
    if failed is not None:
        text += "\n".join(failure_lines(failed))
    files.write_text(folder / f"{name}.md", f"# Leaderboard\n\n{text}")
    table.to_csv(files.path(folder / f"{name}.csv"), index=False, float_format="%.6g")
    if delta_m_rows(table).size:  # a dense-only setting has nothing to plot
        plot_delta_m(setting, table, files.path(folder / f"{name}_delta_m.png"), comparison)
    if frontier_rows(table).size:  # runs from before latency was measured have none
        plot_frontier(setting, table, files.path(folder / f"{name}_frontier.png"), comparison)
    return text


def run_summaries(settings: list[Setting], comparison: Comparison) -> dict[str, dict[str, float]]:
    """Run id -> delta-m and each task's change, keyed as the runs table shows them:
    ``delta_m`` and ``delta_m/<task>`` against dense over all metrics, with the comparison's
    suffix otherwise (``delta_m_vs_single_task_main_metric/seg``)."""
    prefix = f"delta_m{comparison.suffix}"
    summaries: dict[str, dict[str, float]] = {}
    for setting in settings:
        changes = [task_change(t) for t in setting.tasks]
        for _, run in setting.runs.iterrows():
            values = {prefix: run["delta_m"]}
            values |= {f"{prefix}/{c.removeprefix(TASK_CHANGE)}": run[c] for c in changes}
            summaries[run["run_id"]] = values
    return summaries


def leaderboard_after_sweep(
    uri: str, experiment: str, results_dir: str, comparison: Comparison
) -> bool:
    """A sweep's closing leaderboard, printed and written, unless ``results_dir`` holds another
    store's (then a warning says how to write it). False when the store could not be read (a
    server down as the sweep ends): the error says how to write it once the store answers."""
    try:
        check_same_store(Path(results_dir), uri)
    except LookupError as error:
        log.warning("leaderboard not written: %s (results_dir=FOLDER)", error)
        return True
    try:
        print(write_leaderboard(uri, experiment, results_dir, comparison))
    except (RuntimeError, MlflowException) as error:
        log.error(
            "leaderboard not written: %s. Every finished cell is in the store; once it answers: "
            "python -m benchmarks.leaderboard --tracking-uri %s --experiment %s --results-dir %s",
            error,
            uri,
            experiment,
            results_dir,
        )
        return False
    log.info("leaderboard written under %s/", results_dir)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.leaderboard",
        description="Regenerate the leaderboard tables, CSVs and plots from the MLflow store.",
    )
    add_store_arguments(parser)
    parser.add_argument(
        "--results-dir",
        default=None,
        help="where tables and plots are written (default: results/ for the default store, "
        "else the folder of the store's SQLite file: smoke/ for the smoke store)",
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="write even where the folder holds the leaderboard of another store",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="rewrite only the settings this store holds and keep the others' files and their "
        "sections of leaderboard.md/.html as the folder has them, named as kept (for a store "
        "that holds only the experiments you recomputed)",
    )
    parser.add_argument(
        "--baseline",
        default="dense",
        choices=BASELINES,
        help="delta-m reference: dense (hard sharing, default) or single_task; files of a "
        "non-default comparison are named with a suffix (_vs_single_task, _main_metric)",
    )
    parser.add_argument(
        "--delta-m",
        default="all_metrics",
        choices=list(VARIANTS),
        help="all_metrics (LibMTL's Δp, default) or main_metric (one metric per task, the "
        "Δ_MTL of Maninis et al. / Vandenhende et al.; with --baseline single_task as theirs)",
    )
    parser.add_argument(
        "--mlflow-ui",
        default=MLFLOW_UI,
        help=f"where leaderboard.html's run links point: the MLflow UI of this store "
        f"(default {MLFLOW_UI}, where `mlflow ui` serves)",
    )
    args = parser.parse_args(argv)
    comparison = Comparison(args.baseline, args.delta_m)
    uri = store_uri(args)
    folder = Path(args.results_dir) if args.results_dir else results_folder_of(uri)
    try:
        if not args.replace:
            check_same_store(folder, uri)
        board = write_leaderboard(
            uri, args.experiment, folder, comparison, args.mlflow_ui, update=args.update
        )
        print(board)
    except LookupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"\nwritten under {folder}/")
    return 0


GENERATED_FROM = re.compile(r"^Generated from (\S+) \(MLflow experiment", re.MULTILINE)


def check_same_store(folder: Path, uri: str) -> None:
    """Refuse (``LookupError``) to write into ``folder`` when its leaderboard came from another
    store: the committed ``results/`` is not overwritten by a smoke store's tables."""
    index = folder / "leaderboard.md"
    found = GENERATED_FROM.search(index.read_text()) if index.is_file() else None
    if found and not same_store(found.group(1), uri):
        raise LookupError(
            f"{folder}/ holds the leaderboard of {found.group(1)}, not of {uri}: pass "
            f"--results-dir for this store's tables (e.g. {results_folder_of(uri)}), or --replace"
        )
