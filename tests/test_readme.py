"""The README stays a front page: at most 400 lines, a table of contents that matches its
sections, links that resolve, and no measured figure that a test does not check: its results
block is generated from the committed CSV (``config_docs --check``), its description of the
default sweep is compared with the default config here, and durations are left to the commands
and files it names."""

from __future__ import annotations

import re

from benchmarks import PROJECT_ROOT
from benchmarks.sweep.expand import expand_sweep
from benchmarks.tools.overrides import default_config

README = PROJECT_ROOT / "README.md"
GENERATED = re.compile(r"<!-- generated:(\S+) .*?-->\n.*?<!-- end:\1 -->", re.DOTALL)


def prose() -> str:
    """The README without code blocks and generated blocks."""
    text = GENERATED.sub("", README.read_text())
    return re.sub(r"```.*?```", "", text, flags=re.DOTALL)


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_readme_is_short_with_a_table_of_contents_that_matches_its_sections():
    text = README.read_text()
    assert len(text.splitlines()) <= 400
    contents = next(line for line in text.splitlines() if line.startswith("Contents:"))
    contents += text.split(contents, 1)[1].split("\n\n", 1)[0]
    linked = re.findall(r"\]\(#([\w-]+)\)", contents)
    sections = [anchor(h) for h in re.findall(r"^## (.+)$", prose(), re.MULTILINE)]
    assert linked == sections


def test_every_relative_link_of_the_readme_resolves():
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README.read_text()):
        assert (PROJECT_ROOT / target).exists(), target


def test_no_measured_figure_outside_the_generated_block():
    text = prose()
    assert re.findall(r"\d\s*±\s*\d", text) == [], "intervals belong to the generated block"
    durations = re.findall(r"\b\d+(?:\.\d+)?\s*(?:s|min|minutes|h|hours)\b", text)
    assert durations == [], "durations belong to the commands and files the README names"


def test_the_default_sweep_is_described_as_the_default_config_runs_it():
    config = default_config()
    text = " ".join(prose().split())
    sparsities = [f"{s:g}" for s in config.sweep.sparsities]
    seeds = [str(s) for s in config.sweep.seeds]
    assert f"sparsities {', '.join(sparsities[:-1])} and {sparsities[-1]}" in text
    assert f"seeds {', '.join(seeds[:-1])} and {seeds[-1]}" in text
    assert f"{config.protocol.steps} Adam steps" in text and config.protocol.optimizer == "adam"
    assert f"{len(expand_sweep(config))} cells" in text
