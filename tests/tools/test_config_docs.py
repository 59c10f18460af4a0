"""One source of truth per default: method yaml == its dataclass, every protocol file states every
option, and the option tables in docs/ are what the code generates."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from omegaconf import OmegaConf

from benchmarks import CONF_DIR
from benchmarks.tools.config_docs import DOCUMENTS, main, render_document
from benchmarks.training.protocol import Protocol
from core.options import OptionError
from methods.registry import get_method, list_methods
from tests.helpers import protocol_file


@pytest.mark.parametrize("name", list_methods())
def test_method_yaml_states_exactly_its_dataclass_defaults(name):
    config = yaml.safe_load((CONF_DIR / "method" / f"{name}.yaml").read_text())
    config.pop("name")
    defaults = {f.name: f.default for f in dataclasses.fields(get_method(name).Options)}
    assert set(config) == set(defaults), "the yaml must list every option, and only those"
    for key, value in config.items():
        expected = defaults[key]
        expected = list(expected) if isinstance(expected, tuple) else expected
        assert value == expected, f"{name}.yaml says {key}={value}, the dataclass {expected}"


@pytest.mark.parametrize("path", sorted((CONF_DIR / "protocol").glob("*.yaml")), ids=str)
def test_every_protocol_file_states_every_option(path):
    config = protocol_file(path)
    assert set(config) == {f.name for f in dataclasses.fields(Protocol)}
    assert Protocol.from_config(config).name == path.stem


def test_a_protocol_missing_an_option_is_a_clear_error():
    config = yaml.safe_load((CONF_DIR / "protocol" / "cpu_default.yaml").read_text())
    del config["momentum"]
    with pytest.raises(OptionError, match="protocol: missing option.* momentum"):
        Protocol.from_config(config)


def test_the_docs_option_tables_are_generated_from_the_code():
    assert main(["--check"]) == 0


def test_a_stale_docs_table_is_detected():
    methods = next(d for d in DOCUMENTS if d.name == "methods.md")
    text = methods.read_text()
    stale = text.replace("| `imp` | `round_steps` | `60` |", "| `imp` | `round_steps` | `75` |")
    assert stale != text
    assert render_document(stale) == text


def test_run_help_gives_every_option_its_meaning_by_group():
    import subprocess
    import sys

    from benchmarks import PROJECT_ROOT
    from benchmarks.training.protocol import Protocol

    shown = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    flat = " ".join(shown.split())
    for field in dataclasses.fields(Protocol):
        if field.name != "name":
            assert f"protocol.{field.name}" in shown
            assert " ".join(field.metadata["help"].split()) in flat, field.name
    for name in list_methods():
        assert f"method={name}" in shown
        for field in dataclasses.fields(get_method(name).Options):
            assert " ".join(field.metadata["help"].split()) in flat, f"{name}.{field.name}"
    assert "threads_per_cell=1" in shown and "sweep.kinds=null" in shown
    assert "tracking.stale_after_s=600" in shown and "model.width=16" in shown
    # a dataset's options show the values its config file gives the run, not the dataclass's
    synthetic = shown.split("dataset=synthetic: dataset.* options", 1)[1].split("dataset=", 1)[0]
    default = OmegaConf.load(CONF_DIR / "dataset" / "synthetic.yaml")
    for key in ("height", "width", "num_train"):
        assert f"dataset.{key}={default[key]}" in synthetic, key
