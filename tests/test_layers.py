"""The package layering: benchmarks -> (methods, datasets) -> core, nothing upward or sideways."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    "core": set(),
    "datasets": {"core"},
    "methods": {"core"},
    "benchmarks": {"core", "datasets", "methods"},
}


def project_imports(path: Path) -> set[str]:
    """Top-level project packages that ``path`` imports (other than its own)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found |= {n.split(".")[0] for n in names} & set(ALLOWED)
    return found


@pytest.mark.parametrize("package", list(ALLOWED))
def test_package_imports_only_the_layers_below_it(package):
    for path in (ROOT / package).rglob("*.py"):
        extra = project_imports(path) - ALLOWED[package] - {package}
        assert not extra, f"{path.relative_to(ROOT)} imports {sorted(extra)}"
