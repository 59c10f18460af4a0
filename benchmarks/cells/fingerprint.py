"""The code fingerprint of a cell: a hash of the source that computes it, so a finished cell made
by other code is noticed (stale) instead of silently reused.

What computes a cell: its method's module, its dataset's and model's builder modules, the source
method's module for a cell that starts from another cell's model, and the cell runner, with every
module of the computing packages that these import, transitively (``core``, ``datasets``,
``methods``, ``benchmarks.training``, ``benchmarks.cells`` and ``benchmarks.inference``, which
measures what the model costs at inference; tracking, sweeping and reporting
decide where results go, not what they are). Each file counts by its syntax tree without
docstrings, so reformatting, comments and docs leave the fingerprint alone. The same files give
the same fingerprint in a git checkout, an sdist or an edited copy.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from pathlib import Path

COMPUTING = (
    "core",
    "datasets",
    "methods",
    "benchmarks.training",
    "benchmarks.cells",
    "benchmarks.inference",  # how the model's inference cost is measured
)
# Modules of benchmarks.cells that decide which cells exist and how they are named, not what a
# cell computes.
BOOKKEEPING = {
    "benchmarks.cells.cell",
    "benchmarks.cells.identity",
    "benchmarks.cells.fingerprint",
    "benchmarks.cells.method_configs",
    "benchmarks.cells.config_files",
}
RUNNER = "benchmarks.cells.execute"


def _computing(module: str) -> bool:
    return module not in BOOKKEEPING and any(
        module == p or module.startswith(f"{p}.") for p in COMPUTING
    )


def _file(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _imported(module: str, tree: ast.Module, is_package: bool) -> set[str]:
    """Modules ``module`` imports (``from a import b`` counts ``a.b`` when that is a module)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                parent = parts if is_package else parts[:-1]
                parent = parent[: len(parent) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    parents = {".".join(m.split(".")[:i]) for m in found for i in range(1, m.count(".") + 1)}
    return {m for m in found | parents if _computing(m) and _file(m) is not None}


def _without_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return tree


@functools.cache
def _parsed(module: str) -> tuple[str, frozenset[str]]:
    """(normalised source, computing modules it imports) of one module."""
    path = _file(module)
    assert path is not None, module
    tree = ast.parse(path.read_text(), str(path))
    imports = _imported(module, tree, path.name == "__init__.py")
    return ast.dump(_without_docstrings(tree)), frozenset(imports)


def closure(roots: tuple[str, ...]) -> list[str]:
    """The computing modules ``roots`` import, transitively, roots included."""
    seen: set[str] = set()
    todo = [m for m in roots if _file(m) is not None]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(_parsed(module)[1] - seen)
    return sorted(seen)


@functools.cache
def fingerprint(roots: tuple[str, ...]) -> str:
    """Hash of the normalised source of ``closure(roots)``."""
    digest = hashlib.sha256()
    for module in closure(roots):
        digest.update(module.encode())
        digest.update(_parsed(module)[0].encode())
    return digest.hexdigest()[:16]
