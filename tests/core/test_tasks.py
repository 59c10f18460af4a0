"""Task kinds: losses against hand computation, metrics bound to their declarations, spec errors."""

from __future__ import annotations

import math

import pytest
import torch

from benchmarks.reporting.delta_m import delta_m
from core.losses import channel_cosine
from core.metrics import MapMetrics, MetricMismatchError
from core.tasks import TASK_KINDS, make_task, metric_specs


def test_seg_loss_ignores_255():
    task = make_task("seg", num_classes=2)
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 5.0]]]])  # [1, 2, 1, 2]
    target = torch.tensor([[[0, 255]]])
    expected = -math.log(math.exp(2) / (math.exp(2) + 1))
    assert task.compute_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_normal_loss_is_one_minus_cosine_on_valid_pixels():
    task = make_task("normal")
    pred = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).T.reshape(1, 3, 1, 3)
    target = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]).T.reshape(1, 3, 1, 3)
    expected = ((1 - 1) + (1 - 1 / math.sqrt(2))) / 2
    assert task.compute_loss(pred, target).item() == pytest.approx(expected, rel=1e-6)


def test_depth_loss_is_l1_on_valid_pixels():
    task = make_task("depth")
    pred = torch.tensor([[[[1.0, 5.0, 7.0]]]])
    target = torch.tensor([[[[2.0, 4.5, 0.0]]]])
    assert task.compute_loss(pred, target).item() == pytest.approx((1.0 + 0.5) / 2)


def test_unknown_kind_and_missing_classes_are_clear_errors():
    with pytest.raises(ValueError, match="unknown task kind 'semantic'.*seg, normal"):
        make_task("semantic")
    with pytest.raises(ValueError, match="num_classes"):
        make_task("seg")


def test_weighted_task_losses_sum_by_hand_and_single_task():
    from core.tasks import weighted_task_losses

    tasks = (make_task("depth"), make_task("edge"))
    outputs = {"depth": torch.tensor([[[[1.0]]]]), "edge": torch.tensor([[[[0.5]]]])}
    batch = {"depth": torch.tensor([[[[3.0]]]]), "edge": torch.tensor([[[[0.0]]]])}
    total, per_task = weighted_task_losses(outputs, batch, tasks, {"depth": 2.0})
    assert total.item() == pytest.approx(2.0 * 2.0 + 1.0 * 0.5)
    assert per_task["edge"].item() == pytest.approx(0.5)
    only, parts = weighted_task_losses(outputs, batch, tasks, {"depth": 2.0}, only="edge")
    assert only.item() == pytest.approx(0.5) and set(parts) == {"edge"}


def _tiny_batch(task):
    """One 2x2 prediction/label pair in the task's layout with every pixel valid."""
    if task.kind == "seg":
        return torch.randn(1, task.channels, 2, 2), torch.tensor([[[0, 1], [1, 0]]])
    target = torch.rand(1, task.channels, 2, 2) + 0.1
    return torch.rand(1, task.channels, 2, 2) + 0.1, target


@pytest.mark.parametrize("kind", list(TASK_KINDS))
def test_each_kind_computes_exactly_the_metrics_it_declares(kind):
    task = make_task(kind, num_classes=3)
    accumulator = task.new_accumulator()
    accumulator.update(*_tiny_batch(task))
    values = accumulator.compute()
    assert list(values) == [m.name for m in task.metrics]
    assert all(math.isfinite(v) for v in values.values())
    assert set(metric_specs({"t": kind})) == {f"t/{m.name}" for m in task.metrics}


def test_an_accumulator_that_drifts_from_its_declaration_is_an_error():
    class Renamed(MapMetrics):
        def values(self):
            return {"mean_abs_error": 0.0}

    with pytest.raises(MetricMismatchError, match=r"returned metrics \['mean_abs_error'\].*'mae'"):
        Renamed(make_task("edge")).compute()


def test_delta_m_refuses_a_row_without_a_declared_metric():
    tasks = {"depth": "depth"}
    row = {f"depth/{m.name}": 1.0 for m in make_task("depth").metrics}
    assert delta_m(row, row, tasks) == 0.0
    incomplete = {k: v for k, v in row.items() if k != "depth/rel_err"}
    with pytest.raises(KeyError, match="depth/rel_err"):
        delta_m(incomplete, row, tasks)


def test_channel_cosine_matches_torch_including_zero_vectors():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(2, 3, 4, 5, generator=generator)
    b = torch.randn(2, 3, 4, 5, generator=generator)
    a[0, :, 0, 0] = 0.0  # a zero prediction: both give 0, not NaN
    expected = torch.nn.functional.cosine_similarity(a, b, dim=1, eps=1e-8)
    assert torch.allclose(channel_cosine(a, b), expected, atol=1e-6)
    assert channel_cosine(a, b)[0, 0, 0].item() == 0.0
