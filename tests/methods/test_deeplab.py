"""The paper's network with the authors' head: prunable weight counts derived by hand from their
code (scene_net.py, scene_net_base_blocks.py), and their initialisation."""

from __future__ import annotations

import pytest
import torch

from core.tasks import make_task
from methods.masks import owners_of, prunable_parameters
from methods.networks import SHARED, hard_sharing_network, model_parts

# Their Deeplab_ResNet_Backbone's conv weights: conv1 7x7 3->64; layer1 6 convs 64->64 3x3; layer2
# 128-wide, 8 convs + 1x1 downsample 64->128; layer3 256-wide, 12 convs + 1x1 128->256; layer4
# 512-wide, 6 convs + 1x1 256->512.
ENCODER = (
    3 * 64 * 49
    + 6 * 64 * 64 * 9
    + (64 * 128 * 9 + 7 * 128 * 128 * 9 + 64 * 128)
    + (128 * 256 * 9 + 11 * 256 * 256 * 9 + 128 * 256)
    + (256 * 512 * 9 + 5 * 512 * 512 * 9 + 256 * 512)
)


def head_weights(classes: int) -> int:
    """Four Classification_Modules: 3x3 512->1024, 1x1 1024->1024, 1x1 1024->classes."""
    return 4 * (512 * 1024 * 9 + 1024 * 1024 + 1024 * classes)


@pytest.mark.parametrize(
    "tasks,head_share",
    [
        ((make_task("seg", num_classes=40), make_task("normal")), 0.685),  # NYUv2
        ((make_task("seg", num_classes=19), make_task("depth")), 0.684),  # Cityscapes
    ],
)
def test_authors_head_weight_counts_per_part(tasks, head_share):
    count = prunable_counts(tasks)
    assert count[SHARED] == ENCODER
    for task in tasks:
        assert count[task.name] == head_weights(task.channels)
    assert head_fraction(count) == pytest.approx(head_share, abs=0.001)


def prunable_counts(tasks) -> dict[str, int]:
    """Prunable weights per owner (shared encoder, each task's head) of the network the project
    builds with the authors' head."""
    model = hard_sharing_network("deeplab_resnet34", {"head": "aspp_fc"}, tasks)
    params = prunable_parameters(model)
    count: dict[str, int] = {}
    for name, owner in owners_of(model, params).items():
        count[owner] = count.get(owner, 0) + params[name].numel()
    return count


def head_fraction(count: dict[str, int]) -> float:
    return 1 - count[SHARED] / sum(count.values())


def test_taskonomy_heads_are_84_percent_of_the_prunable_weights():
    tasks = (
        make_task("seg", num_classes=17),
        make_task("normal"),
        make_task("depth"),
        make_task("keypoint"),
        make_task("edge"),
    )
    count = prunable_counts(tasks)
    assert count[SHARED] == ENCODER
    assert sorted(count) == sorted([SHARED, *(t.name for t in tasks)])
    assert head_fraction(count) == pytest.approx(0.844, abs=0.001)


def test_authors_init_and_option_errors():
    encoder = model_parts("deeplab_resnet34", {"init": "authors"}).make_encoder()
    convs = [m.weight for m in encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    weights = torch.cat([w.flatten() for w in convs])
    assert weights.std().item() == pytest.approx(0.01, rel=0.01)
    assert abs(weights.mean().item()) < 1e-4
    norms = [m for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(bool((m.weight == 1).all()) and bool((m.bias == 0).all()) for m in norms)
    with pytest.raises(ValueError, match="model.head must be one of aspp, aspp_fc"):
        model_parts("deeplab_resnet34", {"head": "fc"})
    with pytest.raises(ValueError, match="pretrained_path"):
        model_parts("deeplab_resnet34", {"init": "authors", "pretrained_path": "/x.pth"})
