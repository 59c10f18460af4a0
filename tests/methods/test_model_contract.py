"""The model contract (``methods/networks/contract.py``): every shipped model keeps it, and a
model that breaks a rule is refused when the sweep starts, with the rule named, instead of a
tensor-size error inside a cell (the depthwise CNN whose stages end with a strided block broke
MTAN with "The size of tensor a (16) must match the size of tensor b (8)")."""

from __future__ import annotations

import dataclasses

import pytest
from torch import nn

from benchmarks.sweep.setup import validate
from methods.networks import MODELS, ModelParts
from methods.networks.contract import ModelContractError, check_model_parts
from tests.helpers import smoke_cells


def block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1), nn.ReLU())


def parts(**changes) -> ModelParts:
    """Two stages of two blocks, the stride in the first block of stage 2 (keeps every rule)."""
    fields = {
        "make_encoder": lambda: nn.Sequential(
            block(3, 4), block(4, 4), block(4, 8, 2), block(8, 8)
        ),
        "stage_ends": (2, 4),
        "stage_channels": (4, 8),
        "make_head": lambda c_in, c_out: nn.Conv2d(c_in, c_out, 1),
    }
    return ModelParts(**{**fields, **changes})


def strided_last_block() -> nn.Sequential:
    """Stage 2 ends with its strided block: fine for hard sharing, not for MTAN."""
    return nn.Sequential(block(3, 4), block(4, 4), block(4, 8), block(8, 8, 2))


@pytest.mark.parametrize("name", MODELS.names())
def test_every_shipped_model_keeps_the_contract_with_the_stage_rule(name):
    check_model_parts(name, MODELS.build(name, MODELS.options(name, {})), stage_rule=True)


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"stage_ends": (2, 3)}, "rule 1: stage_ends .2, 3. must rise strictly and end at"),
        ({"stage_ends": (2, 2, 4), "stage_channels": (4, 4, 8)}, "rule 1: stage_ends"),
        ({"stage_channels": (4,)}, "rule 1: 1 stage_channels for 2 stages"),
        ({"stage_channels": (4, 16)}, "rule 2: stage 1 outputs 8 channels, stage_channels says 16"),
        ({"make_head": lambda c_in, c_out: nn.Flatten()}, "rule 3: make_head"),
    ],
)
def test_each_broken_rule_is_named(changes, rule):
    with pytest.raises(ModelContractError, match=f"model=m breaks the model contract: {rule}"):
        check_model_parts("m", parts(**changes))


def test_the_stage_rule_is_checked_only_for_methods_that_read_inside_stages():
    broken = parts(make_encoder=strided_last_block)
    check_model_parts("m", broken)  # hard sharing and every compression method run on it
    with pytest.raises(ModelContractError, match=r"rule 4 .*stage 1 changes the resolution"):
        check_model_parts("m", broken, stage_rule=True)


def test_mtan_on_a_model_that_breaks_the_stage_rule_is_refused_before_any_cell(monkeypatch):
    @dataclasses.dataclass(frozen=True)
    class NoOptions:
        pass

    MODELS.register("strided_last", NoOptions)(
        lambda options: parts(make_encoder=strided_last_block)
    )
    try:
        for method, refused in (("mtan", True), ("snip", False)):
            cells = [
                dataclasses.replace(cell, model={"name": "strided_last"})
                for cell in smoke_cells(f"method={method}", "sweep.sparsities=[0.5]")
            ]
            if refused:
                with pytest.raises(ModelContractError, match="model=strided_last .* rule 4"):
                    validate(cells)
            else:
                validate(cells)
    finally:
        MODELS.remove("strided_last")
