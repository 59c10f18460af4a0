"""The browsable leaderboard (``leaderboard.html``) in a real headless browser: Debian's chromium
driven by Playwright (``executable_path``: nothing is downloaded). The page loads with no console
error, sorting by Δm reorders the rows, unticking a kind or typing a filter hides rows and plot
points, a point names its method on hover, and every row links to its runs."""

from __future__ import annotations

import os
import shutil

import pytest

from benchmarks.reporting.leaderboard import write_leaderboard

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser_path() -> str | None:
    configured = os.environ.get("MTL_CHROMIUM")
    return configured or next(filter(None, map(shutil.which, BROWSERS)), None)


@pytest.fixture(scope="module")
def page(finished_store, tmp_path_factory):
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")
    executable = browser_path()
    if executable is None:
        pytest.skip("no chromium: `apt-get install chromium` (Debian) or set MTL_CHROMIUM")
    out = tmp_path_factory.mktemp("html")
    write_leaderboard(finished_store.uri, "mtl-sparse-bench", out, mlflow_ui="http://ui:5000")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.goto((out / "leaderboard.html").as_uri())
        tab.errors = errors
        yield tab
        browser.close()


def column_values(page, table, header: str) -> list[float | None]:
    headers = [h.strip() for h in table.locator("th").all_inner_texts()]
    index = next(i for i, h in enumerate(headers) if h.startswith(header))
    cells = table.locator(f"tbody tr td:nth-child({index + 1})")
    return [float(v) if v else None for v in (c.get_attribute("data-value") for c in cells.all())]


def test_the_page_loads_without_console_errors(page):
    assert page.errors == []
    assert page.locator("section.setting").count() == 1
    assert page.locator("table.board").count() == 1  # one sparsity in the store
    assert page.locator("svg .point").count() >= 2


def test_sorting_by_delta_m_reorders_the_rows(page):
    table = page.locator("table.board").first
    header = table.locator("th", has_text="Δm %")
    order = "rows => rows.map(r => r.dataset.method)"
    header.click()
    descending = column_values(page, table, "Δm %")
    assert descending == sorted(descending, key=lambda v: -v)
    assert header.get_attribute("aria-sort") == "descending"
    first = table.locator("tbody tr").evaluate_all(order)
    header.click()
    assert column_values(page, table, "Δm %") == sorted(descending)
    assert table.locator("tbody tr").evaluate_all(order) != first  # the rows moved


def test_a_kind_unticked_or_a_filter_typed_hides_its_rows_and_points(page):
    rows = page.locator("table.board tbody tr")
    static_rows = page.locator('table.board tbody tr[data-kind="static"]')
    static_points = page.locator('svg .point[data-kind="static"]')
    assert static_rows.count() == 1 and static_rows.first.is_visible()
    page.locator('input.kind-toggle[data-kind="static"]').uncheck()
    assert static_rows.first.is_hidden() and static_points.first.is_hidden()
    visible = [r for r in rows.all() if r.is_visible()]
    assert visible and all(r.get_attribute("data-kind") != "static" for r in visible)
    page.locator('input.kind-toggle[data-kind="static"]').check()
    page.locator("input.filter").fill("channel")
    shown = [r.get_attribute("data-method") for r in rows.all() if r.is_visible()]
    assert shown == ["channel_magnitude"]
    page.locator("input.filter").fill("")
    assert all(r.is_visible() for r in rows.all())


def test_a_point_names_its_method_sparsity_and_seeds_on_hover(page):
    point = page.locator('svg .point[data-method="disparse_static"]').first
    point.hover()
    tip = page.locator("#tooltip")
    assert tip.is_visible()
    assert "disparse_static (static), 50% sparsity" in tip.inner_text()
    assert "1 seed(s)" in tip.inner_text()


def test_every_row_links_to_its_runs_in_the_mlflow_ui(page, finished_store):
    run = finished_store.runs["channel_magnitude"]
    row = page.locator('table.board tbody tr[data-method="channel_magnitude"]')
    href = row.locator("a").get_attribute("href")
    assert href == f"http://ui:5000/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"


def test_the_structured_readouts_are_on_the_page(page):
    """channel_magnitude was read out at fine-tuning steps 0 and 2 (experiment=smoke)."""
    heading = page.locator("h3", has_text="Structured methods: Δm right after pruning")
    assert heading.count() == 1
    table = page.locator("h3 + table.agreement").first
    headers = [h.strip() for h in table.locator("th").all_inner_texts()]
    assert headers[-3:] == ["after 0 steps", "after 2 steps", "final"]
    assert table.locator("tbody tr").first.inner_text().startswith("channel_magnitude")
