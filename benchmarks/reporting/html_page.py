"""The leaderboard as one self-contained static HTML page per results folder: no server, no
download, opens from disk and publishes as is. Per setting and target sparsity a table that sorts
by any column (Δm and each task's change first) and filters by method name and kind, the two plots
as inline SVG whose points name their method, sparsity and seeds on hover, and links from every
row to its runs in the MLflow UI."""

from __future__ import annotations

import base64
import math
from html import escape, unescape
from importlib.resources import files

import pandas as pd

from benchmarks.reporting.agreement import (
    AGREEMENT_HEADER,
    AGREEMENT_NOTE,
    agreement_title,
    setting_agreement,
    tau_line,
)
from benchmarks.reporting.critical_difference import Diagram
from benchmarks.reporting.kept_sections import KeptSection, kept_note
from benchmarks.reporting.readout_table import READOUT_NOTE, READOUT_TITLE, readout_tables
from benchmarks.reporting.reference import SOURCE
from benchmarks.reporting.settings import (
    KIND_ORDER,
    RUN_IDS,
    TASK_CHANGE,
    UNPRUNED_KINDS,
    Comparison,
    Setting,
    task_change,
)
from benchmarks.reporting.svg_plots import delta_m_svg, frontier_svg
from benchmarks.reporting.tables import (
    best_compressed,
    caption,
    delta_m_ties,
    tables_by_sparsity,
)
from core.tasks import metric_specs

MLFLOW_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default


def _asset(name: str) -> str:
    return files("benchmarks.reporting").joinpath("assets", name).read_text()


def _number(row: pd.Series, key: str, digits: int = 2, scale: float = 1.0) -> tuple[str, float]:
    """(text with the 95% interval when there are seeds to make one, sort value)."""
    mean = row.get(f"{key}:mean", math.nan)
    if not isinstance(mean, float | int) or math.isnan(mean):
        return "-", math.nan
    half = row.get(f"{key}:ci95", math.nan)
    text = f"{scale * mean:.{digits}f}"
    if int(row["seeds"]) > 1 and isinstance(half, float) and math.isfinite(half):
        text += f" ± {scale * half:.{digits}f}"
    return text, scale * mean


def _cell(text: str, value: float | str, css: str = "") -> str:
    shown = "" if isinstance(value, float) and math.isnan(value) else value
    return f'<td class="{css}" data-value="{escape(str(shown))}">{escape(text)}</td>'


def _run_links(row: pd.Series, experiment_id: str, ui: str) -> str:
    ids = str(row.get(RUN_IDS, "")).split()
    links = ", ".join(
        f'<a href="{escape(ui)}/#/experiments/{experiment_id}/runs/{rid}">{rid[:8]}</a>'
        for rid in ids
    )
    return f'<td class="text">{links}</td>'


def _columns(tasks: dict[str, str], rows: pd.DataFrame) -> list[tuple[str, str, bool, float]]:
    """(column key, header, higher is better, display scale): quality first."""
    specs = metric_specs(tasks)
    columns = [("delta_m", "Δm % ↑", True, 1.0)]
    columns += [(task_change(t), f"{t} Δ% ↑", True, 1.0) for t in tasks]
    columns += [
        (
            key,
            f"{key.replace('/', ' ')} {'↑' if spec.higher_is_better else '↓'}",
            spec.higher_is_better,
            1.0,
        )
        for key, spec in specs.items()
        if spec.in_delta_m
    ]
    columns += [
        ("model/params", "params k", False, 1e-3),
        ("model/params_nonzero", "nonzero params k", False, 1e-3),
        ("inference/latency_ratio_b1", "latency × dense b1", False, 1.0),
        ("inference/latency_ratio_b8", "latency × dense b8", False, 1.0),
        ("inference/state_dict_mb", "MB", False, 1.0),
        ("budget/train_flops", "train FLOPs", False, 1.0),
    ]
    return [c for c in columns if f"{c[0]}:mean" in rows]


def _table(
    rows: pd.DataFrame, tasks: dict[str, str], ties: set[str], experiment_id: str, ui: str
) -> str:
    columns = _columns(tasks, rows)
    compressed = ~rows["kind"].isin(UNPRUNED_KINDS)
    best = best_compressed(rows, [(key, higher) for key, _, higher, _ in columns])
    head = ['<th data-type="text">kind</th>', '<th data-type="text">method</th>']
    head += ['<th data-type="number">sparsity %</th>', '<th data-type="number">seeds</th>']
    head += [f'<th data-type="number">{escape(title)}</th>' for _, title, _, _ in columns]
    head.append('<th data-type="text">runs</th>')
    body = []
    for index, row in rows.iterrows():
        broken = bool(row.get("health", ""))
        tied = row["method"] in ties
        marks = (" †" if broken else "") + (" ≈ (†)" if tied and broken else " ≈" if tied else "")
        cells = [
            _cell(str(row["kind"]), str(row["kind"]), "text"),
            _cell(f"{row['method']}{marks}", str(row["method"]), "text"),
            _cell(*_number(row, "sparsity/overall", 1, 100.0)),
            _cell(str(int(row["seeds"])), float(row["seeds"])),
        ]
        for key, _, _, scale in columns:
            digits = 2 if scale == 1.0 else 1
            text, value = _number(row, key, digits, scale)
            if key == "budget/train_flops" and math.isfinite(value):
                text = f"{value:.2e}"
            css = "quality" if key == "delta_m" or key.startswith(TASK_CHANGE) else ""
            if compressed[index] and key in best and row[f"{key}:mean"] == best[key]:
                css += " best"
            cells.append(_cell(text, value, css.strip()))
        cells.append(_run_links(row, experiment_id, ui))
        css = "" if compressed[index] else ' class="reference"'
        kind, method = escape(str(row["kind"])), escape(str(row["method"]))
        body.append(f'<tr{css} data-kind="{kind}" data-method="{method}">{"".join(cells)}</tr>')
    return (
        '<div class="wrap"><table class="board"><thead><tr>' + "".join(head) + "</tr></thead>"
        "<tbody>\n" + "\n".join(body) + "\n</tbody></table></div>"
    )


def _controls(setting: Setting) -> str:
    present = set(setting.runs["kind"])
    kinds = [k for k in KIND_ORDER if k in present]
    boxes = "".join(
        f'<label><input type="checkbox" class="kind-toggle" data-kind="{escape(k)}" checked>'
        f"{escape(k)}</label>"
        for k in kinds
    )
    return (
        '<div class="controls"><input type="search" class="filter" '
        'placeholder="filter methods by name" aria-label="filter methods by name">'
        f"kinds: {boxes}</div>"
    )


def _critical_difference(diagram: Diagram | None) -> list[str]:
    """The setting's critical-difference diagram as an inline PNG (the page stays one file)."""
    if diagram is None:
        return []
    data = base64.b64encode(diagram.png).decode()
    return [
        f'<figure><img alt="critical-difference diagram" src="data:image/png;base64,{data}">'
        f"<figcaption>Across the sparsities: mean ranks by Δm over {diagram.test.blocks} "
        f"(sparsity, seed) blocks; joined methods are not different (Nemenyi); Friedman p = "
        f"{diagram.test.friedman_p:.2g}.</figcaption></figure>"
    ]


def _agreement(setting: Setting) -> list[str]:
    """The agreement with the paper's table, where the setting has a counterpart."""
    dataset = str(setting.runs["dataset"].iloc[0])
    made = setting_agreement(dataset, list(setting.tasks), setting.runs)
    if made is None:
        return []
    found, body = made
    return [
        f"<h3>{escape(agreement_title(dataset, found))}</h3>",
        f'<p class="note">{escape(tau_line(found))}</p>',
        _text_table(list(AGREEMENT_HEADER), body, "agreement"),
        f'<p class="note">{escape(AGREEMENT_NOTE.format(source=SOURCE))}</p>',
    ]


def _text_table(header: list[str], body: list[list[str]], css: str) -> str:
    head = "".join(f'<th data-type="text">{escape(h)}</th>' for h in header)
    rows = "".join(
        "<tr>" + "".join(f'<td class="text">{escape(str(c))}</td>' for c in row) + "</tr>"
        for row in body
    )
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _readouts(setting: Setting, comparison: Comparison) -> list[str]:
    """The structured readout table, where the setting's structured runs were read out."""
    levels = readout_tables(setting, comparison)
    if not levels:
        return []
    parts = [f"<h3>{escape(READOUT_TITLE)}</h3>"]
    for level in levels:
        parts.append(_text_table(level.header, level.body, "agreement"))
        parts.append(f'<p class="note">{escape(level.verdict)}</p>')
    return [*parts, f'<p class="note">{escape(READOUT_NOTE)}</p>']


def _section(
    setting: Setting,
    table: pd.DataFrame,
    diagram: Diagram | None,
    comparison: Comparison,
    experiment_id: str,
    ui: str,
) -> str:
    parts = [f'<section class="setting" id="{escape(setting.slug)}">']
    parts += [f"<h2>{escape(setting.title)}</h2>", _controls(setting)]
    if not table[~table["kind"].isin(UNPRUNED_KINDS)].dropna(subset=["delta_m:mean"]).empty:
        parts.append(
            f"<figure>{delta_m_svg(table)}<figcaption>Δm against target sparsity, mean over "
            "seeds; hover a point for its value, interval and seeds.</figcaption></figure>"
        )
    frontier = frontier_svg(table)
    if frontier is not None:
        parts.append(
            f"<figure>{frontier}<figcaption>What compression buys: Δm against the measured "
            "latency at batch 1 relative to dense; shape: family, size: sparsity; rows whose "
            "latency control was noisy are left out.</figcaption></figure>"
        )
    parts += _critical_difference(diagram)
    for level, rows in tables_by_sparsity(table):
        if level is not None:
            parts.append(f"<h3>target sparsity {100 * level:g}%</h3>")
        parts.append(
            _table(rows, setting.tasks, delta_m_ties(setting.runs, level), experiment_id, ui)
        )
        flagged = rows[rows["health"] != ""]
        parts += [
            f'<p class="note">† {escape(r["method"])}: {escape(r["health"])}</p>'
            for _, r in flagged.iterrows()
        ]
    parts.append(f'<p class="note">{escape(caption(setting.tasks, comparison))}</p>')
    parts += _readouts(setting, comparison)
    parts += _agreement(setting)
    parts.append("</section>")
    return "\n".join(parts)


def render_page(
    sections: list[tuple[Setting, pd.DataFrame, Diagram | None]],
    comparison: Comparison,
    uri: str,
    experiment: str,
    experiment_id: str,
    ui: str = MLFLOW_UI,
    kept: list[KeptSection] | None = None,
) -> str:
    """The whole page: every setting's plots and tables, with the page's CSS and script inline;
    ``kept``: sections of the previous page (``--update``), placed among them by title."""
    blocks = [
        (s.title, s.slug, _section(s, t, d, comparison, experiment_id, ui)) for s, t, d in sections
    ]
    blocks += [(unescape(k.title), k.slug, k.text) for k in kept or []]
    blocks.sort(key=lambda block: block[0])
    toc = " ".join(f'<a href="#{escape(slug)}">{escape(slug)}</a>' for _, slug, _ in blocks)
    body = "\n".join(text for _, _, text in blocks)
    note = f'\n<p class="note">{escape(kept_note(kept))}</p>' if kept else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Leaderboard: multitask model compression</title>
<style>{_asset("leaderboard.css")}</style></head>
<body>
<h1>Leaderboard</h1>
<p class="note">Generated from {escape(uri)} (MLflow experiment {escape(experiment)}), Δm against
the {escape(comparison.baseline_label)} baseline ({escape(comparison.variant)}). Click a column
header to sort; type in the filter or untick a kind to hide rows and their points. Run links
open the MLflow UI at {escape(ui)}: start it with
<code>mlflow ui --backend-store-uri {escape(uri)}</code>.</p>{note}
<nav>{toc}</nav>
{body}
<div id="tooltip"></div>
<script>{_asset("leaderboard.js")}</script>
</body></html>
"""
