"""The "A method" recipe of ``docs/extending.md``, followed verbatim: its Python snippet and its
yaml, taken from that page itself, give a method that registers, matches its config, hits the
requested sparsity and has the sanity-check ablations."""

from __future__ import annotations

import dataclasses
import importlib.util
import re

import pytest
import yaml

from benchmarks import PROJECT_ROOT
from methods.lifecycle import MethodKind
from methods.registry import METHODS, build_method, list_methods
from tests.helpers import make_context

GUIDE = PROJECT_ROOT / "docs" / "extending.md"


def recipe_blocks() -> tuple[str, str]:
    """The python and yaml code blocks of the guide's "A method" section (without the line
    naming their file)."""
    section = GUIDE.read_text().split("\n## A method\n", 1)[1].split("\n## ", 1)[0]
    blocks = dict(re.findall(r"```(python|yaml)\n# \S+\n(.*?)```", section, re.DOTALL))
    assert set(blocks) == {"python", "yaml"}, "the recipe must show a python and a yaml block"
    return blocks["python"], blocks["yaml"]


@pytest.fixture
def recipe_method(tmp_path):
    source, config = recipe_blocks()
    list_methods()  # discover the real methods first
    path = tmp_path / "my_method.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("readme_recipe_method", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield yaml.safe_load(config), config
    METHODS.remove("my_method")


def test_the_readme_recipe_gives_a_method_that_passes_the_contract(
    recipe_method, tiny_model, tiny_bundle
):
    options, text = recipe_method
    assert text.lstrip().startswith("#"), "the recipe's yaml must start with a comment"
    assert options.pop("name") == "my_method"
    method = build_method("my_method", options)
    defaults = {f.name: f.default for f in dataclasses.fields(type(method.options))}
    assert options == defaults, "the recipe's yaml must state every option at its default"
    assert method.kind == MethodKind.STATIC and method.paper
    masks = method.initial_masks(make_context(tiny_model, tiny_bundle, 0.9))
    assert abs(masks.sparsity() - 0.9) < 0.001
    shuffled = build_method("my_method", {**options, "sanity": "shuffle"})
    assert shuffled.initial_masks(make_context(tiny_model, tiny_bundle, 0.9)).sparsity() > 0.89
