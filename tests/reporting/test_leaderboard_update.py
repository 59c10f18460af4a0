"""``python -m benchmarks.leaderboard --update``: a store that holds only some settings (an
experiment recomputed elsewhere, or after the store was lost) rewrites those settings and leaves
every other setting's files and index sections exactly as they were.

Two settings are made from the session's finished store (``finished_store``): its own, and a
copy of its runs under another model name (setting ``OTHER``). A second store holds only the
copy, with a different seg mIoU, as a recomputation would."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from benchmarks.reporting import leaderboard
from benchmarks.tracking.schema import CELL_ID, SETTING_ID
from tests.helpers import copy_run

OTHER = "0123456789ab"
MIOU = "test/seg/mIoU"


def store_with(uri: str, copies: list, shift: float = 0.0, originals: list = ()) -> str:
    """A store holding ``originals`` as they are and ``copies`` as setting ``OTHER`` (model
    ``other_model``), their seg mIoU raised by ``shift``."""
    client = MlflowClient(uri)
    experiment = client.create_experiment("mtl-sparse-bench")
    for run in originals:
        copy_run(client, experiment, run)
    for run in copies:
        changed = {MIOU: run.data.metrics[MIOU] + shift}
        cell = f"{run.data.tags[CELL_ID]}-other"
        tags = {"model": "other_model", SETTING_ID: OTHER, CELL_ID: cell}
        copy_run(client, experiment, run, tags=tags, metrics=changed)
    return uri


def write(uri: str, folder: Path, *flags: str) -> None:
    assert leaderboard.main(["--tracking-uri", uri, "--results-dir", str(folder), *flags]) == 0


def markdown_sections(page: Path) -> dict[str, str]:
    """Setting id -> its section of the index (split here independently of the tool)."""
    body = page.read_text().split("\n## ")[1:]
    return {re.search(r"\[setting (\w+)\]", s).group(1): s for s in body}


def html_sections(page: Path) -> dict[str, str]:
    found = re.findall(
        r'(<section class="setting" id="[^"]*">.*?</section>)', page.read_text(), re.S
    )
    return {re.search(r"\[setting (\w+)\]", s).group(1): s for s in found}


def own_setting_files(folder: Path) -> dict[str, bytes]:
    """The finished store's setting's own files (every file but the index and the copy's)."""
    names = [p for p in folder.iterdir() if not p.name.startswith(("leaderboard", "."))]
    return {p.name: p.read_bytes() for p in names if "other_model" not in p.name}


@pytest.fixture(scope="module")
def stores(finished_store, tmp_path_factory):
    folder = tmp_path_factory.mktemp("update")
    runs = list(finished_store.runs.values())
    both = store_with(f"sqlite:///{folder}/both.db", runs, originals=runs)
    recomputed = store_with(f"sqlite:///{folder}/recomputed.db", runs, shift=5.0)
    return folder, both, recomputed


def test_update_rewrites_the_stores_settings_and_keeps_the_others_byte_for_byte(stores):
    folder, both, recomputed = stores
    results = folder / "results"
    write(both, results)
    before_md = markdown_sections(results / "leaderboard.md")
    before_html = html_sections(results / "leaderboard.html")
    (own,) = set(before_md) - {OTHER}
    own_files = own_setting_files(results)
    assert own_files and set(before_html) == {own, OTHER}

    write(recomputed, results, "--update", "--replace")

    after_md = markdown_sections(results / "leaderboard.md")
    after_html = html_sections(results / "leaderboard.html")
    assert after_md[own] == before_md[own] and after_html[own] == before_html[own]
    assert own_setting_files(results) == own_files
    alone = folder / "alone"  # the recomputed store's own leaderboard, nothing kept
    write(recomputed, alone)
    assert after_md[OTHER] == markdown_sections(alone / "leaderboard.md")[OTHER]
    assert after_md[OTHER] != before_md[OTHER]  # the new mIoU is shown
    (csv,) = [p for p in results.glob("*other_model*.csv")]
    assert pd.read_csv(csv).equals(pd.read_csv(alone / csv.name))
    index = (results / "leaderboard.md").read_text()
    kept_line = next(line for line in index.splitlines() if line.startswith("Kept from"))
    assert f"[setting {own}]" in kept_line and OTHER not in kept_line
    assert [*markdown_sections(results / "leaderboard.md")] == sorted(
        after_md, key=lambda s: after_md[s].split("\n", 1)[0]
    )
    page = (results / "leaderboard.html").read_text()
    assert page.count('<section class="setting"') == 2 and "Kept from" in page
    for section in after_html.values():  # the table of contents links every section
        slug = re.search(r'id="([^"]*)"', section).group(1)
        assert f'<a href="#{slug}">' in page


def test_without_update_the_index_lists_only_the_stores_settings(stores):
    folder, both, recomputed = stores
    results = folder / "plain"
    write(both, results)
    write(recomputed, results, "--replace")
    assert set(markdown_sections(results / "leaderboard.md")) == {OTHER}
    assert set(html_sections(results / "leaderboard.html")) == {OTHER}
    assert "Kept from" not in (results / "leaderboard.md").read_text()


def test_failures_of_settings_with_no_table_are_not_kept_inside_a_section(stores, finished_store):
    """The index closes with the failed cells of settings where nothing finished; ``--update``
    keeps the sections before it, not that list, which the new store's failures replace."""
    folder, _, recomputed = stores
    runs = list(finished_store.runs.values())
    uri = store_with(f"sqlite:///{folder}/failed.db", runs, originals=runs)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("mtl-sparse-bench").experiment_id
    tags = {"model": "third_model", SETTING_ID: "fedcba987654", CELL_ID: "third-cell"}
    client.set_terminated(copy_run(client, experiment, runs[0], tags=tags), "FAILED")
    results = folder / "with_failure"
    write(uri, results)
    assert (
        "### Cells that failed in settings with no finished run"
        in (results / "leaderboard.md").read_text()
    )

    write(recomputed, results, "--update", "--replace")

    assert "Cells that failed" not in (results / "leaderboard.md").read_text()
