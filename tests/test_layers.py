"""The layering: benchmarks' sub-packages -> (methods, datasets) -> core, nothing upward.

Inside ``benchmarks``: tools and the entry points may use everything; sweep runs cells, estimates
their time and reports; reporting reads the store, rebuilds cells and reads the inference
measurement's tolerances; cells use training, tracking and inference; training, tracking and
inference sit on the library packages only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = {"core", "datasets", "methods"}
ALLOWED = {
    "core": set(),
    "datasets": {"core"},
    "methods": {"core"},
    "benchmarks.training": LIBRARY,
    "benchmarks.tracking": LIBRARY,
    "benchmarks.inference": LIBRARY,
    "benchmarks.cells": LIBRARY
    | {"benchmarks.training", "benchmarks.tracking", "benchmarks.inference"},
    "benchmarks.reporting": LIBRARY
    | {"benchmarks.cells", "benchmarks.tracking", "benchmarks.inference"},
    "benchmarks.sweep": LIBRARY
    | {
        "benchmarks.cells",
        "benchmarks.training",
        "benchmarks.tracking",
        "benchmarks.reporting",
        "benchmarks.inference",
    },
}
ALLOWED["benchmarks.tools"] = set(ALLOWED) - {"benchmarks.tools"}  # tools may use any layer
EVERYTHING = set(ALLOWED)


def layer_of(module: str) -> str | None:
    """The layer a module belongs to (the longest matching package)."""
    matches = [p for p in EVERYTHING if module == p or module.startswith(f"{p}.")]
    return max(matches, key=len, default=None)


def project_imports(path: Path) -> set[str]:
    """Layers that ``path`` imports (``benchmarks`` itself holds only CONF_DIR/PROJECT_ROOT)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found |= {layer for name in names if (layer := layer_of(name)) is not None}
    return found


def module_files(layer: str) -> list[Path]:
    return sorted((ROOT / layer.replace(".", "/")).rglob("*.py"))


@pytest.mark.parametrize("layer", list(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(layer):
    files = module_files(layer)
    assert files, f"no modules under {layer}"
    for path in files:
        extra = project_imports(path) - ALLOWED[layer] - {layer}
        assert not extra, f"{path.relative_to(ROOT)} imports {sorted(extra)} (upward or sideways)"


def test_benchmarks_top_level_holds_only_entry_points():
    top = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py"))
    entries = ["compare_runs", "convergence", "estimate", "export", "leaderboard", "perf", "run"]
    assert top == ["__init__", *entries], top
    for name in top[1:]:
        lines = (ROOT / "benchmarks" / f"{name}.py").read_text().splitlines()
        assert len(lines) <= 60, f"benchmarks/{name}.py is an entry point: keep it thin"


def test_every_module_belongs_to_a_layer():
    packages = [p for p in (ROOT / "benchmarks").iterdir() if (p / "__init__.py").exists()]
    for package in packages:
        if package.name == "conf":
            continue
        assert f"benchmarks.{package.name}" in ALLOWED, f"add benchmarks/{package.name} to ALLOWED"


def architecture_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n## Architecture\n", 1)[1].split("\n### Words\n", 1)[0]


def package_folders() -> list[str]:
    """Every folder of the tree that holds code or tests: the top-level ones (and results/),
    each sub-package of benchmarks, methods and datasets, and each folder of tests/."""
    top = ["benchmarks", "methods", "datasets", "core", "results", "tests", ".ci"]
    nested = [
        path.relative_to(ROOT).as_posix()
        for root in ("benchmarks", "methods", "datasets", "tests")
        for path in sorted((ROOT / root).iterdir())
        if path.is_dir()
        and path.name != "__pycache__"
        and (any(path.glob("*.py")) or path.name == "conf")
    ]
    return top + nested


def tree_entries(section: str) -> dict[str, str]:
    """The section's tree block by top-level entry: a line at column 0 starts one (``methods/``),
    the indented lines below it belong to it."""
    block = section.split("```\n", 2)[1]
    entries: dict[str, str] = {}
    current = ""
    for line in block.splitlines():
        if line and not line[0].isspace():
            current = line.split()[0]
            entries[current] = ""
        entries[current] += line + "\n"
    return entries


def test_the_readme_architecture_names_every_package_and_entry_point():
    entries = tree_entries(architecture_section())
    for folder in package_folders():
        root, _, name = folder.partition("/")
        if not name:
            assert f"{root}/" in entries, f"README's Architecture tree has no {root}/ entry"
            continue
        assert f"{name}/" in entries.get(f"{root}/", ""), (
            f"README's Architecture tree does not name {folder}/ under {root}/"
        )
    benchmarks = entries["benchmarks/"]
    for entry in sorted((ROOT / "benchmarks").glob("*.py")):
        if entry.stem != "__init__":
            assert entry.name in benchmarks, f"README's Architecture tree omits {entry.name}"
    for tool in sorted((ROOT / "benchmarks" / "tools").glob("*.py")):
        if tool.stem != "__init__":
            assert tool.stem in benchmarks, f"README's Architecture tree omits tools/{tool.name}"


def module_imports(package: str) -> dict[str, set[str]]:
    """Each module of ``package`` -> the modules of ``package`` it imports (``TYPE_CHECKING``
    imports included: a circle hidden behind one is still a circle)."""
    files = {}
    for path in (ROOT / package).rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in files.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
        graph[name] = {m for m in found if m in files and m != name}
    return graph


def import_circle(graph: dict[str, set[str]]) -> list[str]:
    """One circle of imports in ``graph`` ([] when there is none), by depth-first search."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after

    def visit(module: str, path: list[str]) -> list[str]:
        state[module] = "open"
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                return [*path[path.index(imported) :], imported]
            if imported not in state and (circle := visit(imported, [*path, imported])):
                return circle
        state[module] = "done"
        return []

    for module in sorted(graph):
        if module not in state and (circle := visit(module, [module])):
            return circle
    return []


def test_no_module_of_benchmarks_imports_itself_in_a_circle():
    """The cell's training phases and its resume checkpoints imported each other."""
    assert import_circle(module_imports("benchmarks")) == []


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_circle(graph) == ["a", "b", "c", "a"]
    assert import_circle({"a": {"b"}, "b": set()}) == []
