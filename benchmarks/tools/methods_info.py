"""``python -m benchmarks.tools.methods_info``: every registered method, its kind, paper and
options."""

from __future__ import annotations

import importlib

from tabulate import tabulate

from methods.registry import get_method, list_methods, method_help


def describe() -> str:
    parts = []
    for name in list_methods():
        cls = get_method(name)
        summary = (importlib.import_module(cls.__module__).__doc__ or "").strip().splitlines()
        parts += [f"== {name} ({cls.kind.value}) ==", cls.paper, *summary[:1]]
        rows = method_help(name)
        parts += [
            tabulate(rows, headers=["option", "default", "meaning"], disable_numparse=True)
            if rows
            else "(no options)",
            "",
        ]
    return "\n".join(parts)


if __name__ == "__main__":
    print(describe())
