"""``python -m benchmarks.tools.config_docs``: the option tables of ``docs/``, the README's
headline results (from the committed CSV) and the text of ``python -m benchmarks.run --help``,
generated from their sources.

Each default has one source: a method's options and defaults are its ``Options`` dataclass (its
yaml file repeats them for Hydra, and a test keeps the two equal); a protocol's values are its
yaml file (``Protocol`` has no defaults); the help texts are the dataclass fields' ``help``. This
module renders both as markdown between marker comments in ``DOCUMENTS``, and writes the help file
(``benchmarks.tools.help_text``); ``--check`` fails when either is out of date (the test suite
runs it). Only what this project ships is documented here; plugins' methods are listed with
their options by ``python -m benchmarks.tools.methods_info``.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys

import yaml

from benchmarks import CONF_DIR, PROJECT_ROOT
from benchmarks.reporting.headline import headline_markdown
from benchmarks.sweep.loader_workers import protocol_help
from benchmarks.tools.help_text import HELP_FILE, help_file
from benchmarks.training.protocol import Protocol
from methods.registry import METHODS, get_method, list_methods

DOCUMENTS = (
    PROJECT_ROOT / "README.md",
    PROJECT_ROOT / "docs" / "protocol.md",
    PROJECT_ROOT / "docs" / "methods.md",
)


def _value(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return str(value)


def method_options_markdown(shipped: bool = True) -> str:
    """One row per option of every method this project ships (``shipped``) or of every method
    installed plugins add: default and meaning."""
    lines = ["| method | option | default | meaning |", "|---|---|---|---|"]
    for name in [n for n in list_methods() if METHODS.shipped(n) == shipped]:
        options = get_method(name).Options
        fields = dataclasses.fields(options)
        if not fields:
            lines.append(f"| `{name}` | | | no options |")
        for f in fields:
            help_text = f.metadata.get("help", "").replace("|", "\\|")
            if f.name == "sanity":  # which of the ablations this method has
                help_text += f" (this method: {', '.join(options.CHECKS)})"
            lines.append(f"| `{name}` | `{f.name}` | `{_value(f.default)}` | {help_text} |")
    return "\n".join(lines)


def protocol_markdown() -> str:
    """One row per protocol option, one column per protocol file."""
    files = sorted((CONF_DIR / "protocol").glob("*.yaml"))
    protocols = {p.stem: yaml.safe_load(p.read_text()) for p in files}
    lines = [
        "| option | meaning | " + " | ".join(f"`{n}`" for n in protocols) + " |",
        "|---|---|" + "---|" * len(protocols),
    ]
    for f in dataclasses.fields(Protocol):
        if f.name == "name":
            continue
        values = " | ".join(_value(p.get(f.name)) for p in protocols.values())
        lines.append(f"| `{f.name}` | {protocol_help(f.name, f.metadata['help'])} | {values} |")
    return "\n".join(lines)


BLOCKS = {
    "method-options": method_options_markdown,
    "protocol-options": protocol_markdown,
    "results-headline": lambda: headline_markdown(PROJECT_ROOT / "results"),
}


def render_document(text: str) -> str:
    """``text`` with every generated block it holds replaced by its current rendering."""
    for block, render in BLOCKS.items():
        pattern = re.compile(
            rf"(<!-- generated:{block} .*?-->\n).*?(<!-- end:{block} -->)", re.DOTALL
        )
        text = pattern.sub(lambda m, r=render: m.group(1) + r() + "\n" + m.group(2), text)
    return text


def check_every_block_placed() -> None:
    """Each generated block sits in exactly one of ``DOCUMENTS``."""
    for block in BLOCKS:
        holders = [d for d in DOCUMENTS if f"<!-- generated:{block} " in d.read_text()]
        if len(holders) != 1:
            raise ValueError(
                f"the block <!-- generated:{block} ... --> must be in one of "
                f"{', '.join(d.name for d in DOCUMENTS)}; found in {len(holders)}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.tools.config_docs", description=__doc__
    )
    parser.add_argument(
        "--check", action="store_true", help="fail if a docs table or the help file is out of date"
    )
    parser.add_argument(
        "--plugins",
        action="store_true",
        help="print the option table of the methods installed plugins add (this project's docs "
        "document only what it ships) and change no file",
    )
    args = parser.parse_args(argv)
    if args.plugins:
        print(method_options_markdown(shipped=False))
        return 0
    check_every_block_placed()
    targets = {d: render_document(d.read_text()) for d in DOCUMENTS}
    targets[HELP_FILE] = help_file()
    if args.check:
        stale = [path for path, fresh in targets.items() if path.read_text() != fresh]
        for path in stale:
            print(f"{path} is out of date: run python -m benchmarks.tools.config_docs")
        if not stale:
            print("the option tables in docs/ and the --help text are up to date")
        return 1 if stale else 0
    for path, fresh in targets.items():
        path.write_text(fresh)
    print(f"rewrote the option tables in docs/ and the --help text in {HELP_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
