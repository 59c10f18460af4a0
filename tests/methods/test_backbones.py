"""The newer backbones under every method: each compression method and architecture runs its
whole lifecycle on them and ends at the requested sparsity, or refuses with the reason."""

from __future__ import annotations

import pytest
import torch

from methods.lifecycle import MethodKind
from methods.masks import measure_sparsity
from methods.networks.mobilenet import rounded_channels
from methods.networks.registry import model_parts
from methods.networks.vit import TransformerBlock
from methods.registry import get_method, list_methods
from tests.helpers import run_lifecycle

MOBILENET = ("mobilenet_v2", {"width": 0.25, "head_channels": 8})
VIT = ("vit", {"dim": 16, "depth": 2, "heads": 2, "head_channels": 8})
# Channel removal needs fine steps: at dim 64 with 16 heads a token channel is 1.5% of the
# weights and a head 1.3%, so the closest step is within a point of any target, whatever the
# scores (at dim 16 a token channel is 4.7%: a method missed 30% by 1.2 points)
VIT_FOR_CHANNELS = ("vit", {"dim": 64, "depth": 2, "heads": 16, "head_channels": 8})
CHANNEL_METHODS = [m for m in list_methods() if get_method(m).kind == MethodKind.STRUCTURED]
OTHER_METHODS = [m for m in list_methods() if m not in CHANNEL_METHODS]


@pytest.mark.parametrize("backbone", [MOBILENET, VIT], ids=["mobilenet_v2", "vit"])
@pytest.mark.parametrize("name", OTHER_METHODS)
def test_every_method_runs_on_the_newer_backbones(name, backbone, tiny_tasks, tiny_bundle):
    masks, model, method = run_lifecycle(name, tiny_tasks, tiny_bundle, 0.7, model=backbone)
    expected = 0.7 if method.prunes else 0.0
    assert abs(masks.sparsity() - expected) < 0.001, name
    # every pruned weight is a real zero (a dynamic method's just-grown weight may be one too)
    assert measure_sparsity(model)["overall"] >= masks.sparsity() - 1e-9
    outputs = model.eval()(torch.randn(2, 3, 16, 24))
    assert {t: y.shape[-2:] for t, y in outputs.items()} == {t.name: (16, 24) for t in tiny_tasks}


@pytest.mark.parametrize("name", CHANNEL_METHODS)
def test_channel_methods_make_mobilenet_v2_physically_smaller(name, tiny_tasks, tiny_bundle):
    """Depthwise convs shrink with the expansion conv before them and the projection after."""
    torch.manual_seed(0)
    dense = model_parts(*MOBILENET).hard_sharing(tiny_tasks)
    masks, model, _ = run_lifecycle(name, tiny_tasks, tiny_bundle, 0.5, model=MOBILENET)
    assert abs(masks.sparsity() - 0.5) < 0.02, name
    assert parameter_count(model) < parameter_count(dense)
    depthwise = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert all(m.groups == m.in_channels == m.out_channels for m in depthwise)
    assert sum(m.out_channels for m in depthwise) < sum(
        m.out_channels for m in dense.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1
    )
    outputs = model.eval()(torch.randn(2, 3, 16, 24))
    assert {t: y.shape[-2:] for t, y in outputs.items()} == {t.name: (16, 24) for t in tiny_tasks}


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", CHANNEL_METHODS)
def test_channel_methods_remove_the_transformers_heads_and_mlp_units(name, tiny_tasks, tiny_bundle):
    """Whole attention heads, MLP hidden units and token channels go. At 30%: cosprune
    prunes the shared encoder only, whose attention and MLP layers hold most of this ViT's
    weights."""
    torch.manual_seed(0)
    dense = model_parts(*VIT_FOR_CHANNELS).hard_sharing(tiny_tasks)
    masks, model, _ = run_lifecycle(name, tiny_tasks, tiny_bundle, 0.3, model=VIT_FOR_CHANNELS)
    assert abs(masks.sparsity() - 0.3) < 0.01, name
    assert parameter_count(model) < parameter_count(dense)
    assert sum(_widths(model)) < sum(_widths(dense)), name  # heads or MLP units removed
    outputs = model.eval()(torch.randn(2, 3, 16, 24))
    assert {t: y.shape[-2:] for t, y in outputs.items()} == {t.name: (16, 24) for t in tiny_tasks}


def _widths(model: torch.nn.Module) -> list[int]:
    """Each block's heads and MLP hidden units."""
    blocks = [m for m in model.modules() if isinstance(m, TransformerBlock)]
    return [b.attention.heads for b in blocks] + [b.mlp[0].out_features for b in blocks]


def test_mobilenet_v2_follows_the_paper_table():
    parts = model_parts("mobilenet_v2", {})
    encoder = parts.make_encoder()
    depthwise = [m for m in encoder.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 17  # one per inverted residual block: 1+2+3+4+3+3+1
    assert parts.stage_channels == (16, 24, 32, 96, 320)
    features = encoder.eval()(torch.zeros(1, 3, 64, 64))
    assert features.shape == (1, 320, 8, 8)  # output stride 8, the later strides dilated
    assert [rounded_channels(c * 0.35) for c in (32, 16, 24, 320)] == [16, 8, 8, 112]


def test_the_transformer_keeps_the_image_layout_and_any_input_size():
    parts = model_parts("vit", {"dim": 32, "heads": 4, "patch": 8, "grid": 4})
    encoder = parts.make_encoder().eval()
    assert encoder(torch.zeros(1, 3, 64, 48)).shape == (1, 32, 8, 6)  # grid 4x4 resized to 8x6
    linears = [m for m in encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 4 * 4  # qkv, proj and two MLP layers per block: prunable weights
    head = parts.make_head(32, 3).eval()
    assert head(torch.zeros(1, 32, 8, 6)).shape == (1, 3, 64, 48)  # three x2 upsamplings
