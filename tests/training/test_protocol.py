"""The protocol's learning-rate schedules at given steps, and the fine-tune learning rate."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from benchmarks import CONF_DIR
from benchmarks.training.optim import make_optimizer, make_scheduler
from benchmarks.training.protocol import Protocol
from methods.registry import build_method
from tests.helpers import TINY_PROTOCOL, protocol_file


def lr_after(protocol: Protocol, steps: int, at: int, lr: float | None = None) -> float:
    model = torch.nn.Linear(2, 2)
    optimizer = make_optimizer(model, protocol, lr)
    scheduler = make_scheduler(optimizer, protocol, steps)
    for _ in range(at):
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return optimizer.param_groups[0]["lr"]


def paper(name: str) -> Protocol:
    return Protocol.from_config(protocol_file(CONF_DIR / "protocol" / f"{name}.yaml"))


@pytest.mark.parametrize(
    "at,expected", [(0, 1e-3), (3999, 1e-3), (4000, 5e-4), (8000, 2.5e-4), (19999, 6.25e-5)]
)
def test_nyuv2_step_schedule_halves_every_4000_iterations(at, expected):
    assert lr_after(paper("paper_nyuv2"), 20000, at) == pytest.approx(expected)


@pytest.mark.parametrize("at,expected", [(11999, 1e-4), (12000, 3e-5), (24000, 9e-6)])
def test_taskonomy_step_schedule_multiplies_by_0_3_every_12000(at, expected):
    assert lr_after(paper("paper_taskonomy"), 100000, at) == pytest.approx(expected)


def test_cosine_and_constant_schedules():
    cosine = dataclasses.replace(TINY_PROTOCOL, lr_schedule="cosine", lr=0.002)
    assert lr_after(cosine, 100, 50) == pytest.approx(0.001)
    assert lr_after(cosine, 100, 100) == pytest.approx(0.0, abs=1e-12)
    assert lr_after(TINY_PROTOCOL, 100, 50) == pytest.approx(TINY_PROTOCOL.lr)


def test_pretrained_methods_fine_tune_at_the_finetune_lr(context_factory, tiny_model):
    ctx = dataclasses.replace(context_factory(tiny_model, 0.5), finetune_lr=1e-5)
    assert build_method("magnitude", {}).training_lr(ctx) == 1e-5
    assert build_method("imp", {}).training_lr(ctx) == 1e-5
    assert build_method("snip", {}).training_lr(ctx) is None  # the protocol's training lr
    assert build_method("lth", {}).training_lr(ctx) is None  # rewound weights are retrained
    assert lr_after(paper("paper_nyuv2"), 1000, 999, lr=1e-5) == pytest.approx(1e-5)


def test_an_unknown_schedule_is_a_clear_error():
    config = dataclasses.asdict(TINY_PROTOCOL) | {"lr_schedule": "poly"}
    with pytest.raises(ValueError, match="lr_schedule must be one of cosine, constant, step"):
        Protocol.from_config(config)


def test_best_checkpoint_keeps_the_state_with_the_lowest_loss():
    from benchmarks.training.selection import BestCheckpoint

    model = torch.nn.Linear(1, 1, bias=False)
    losses = iter([3.0, 1.0, 2.0])  # measured at steps 2, 4 and at the end (5)
    best = BestCheckpoint(model, lambda: next(losses), every=2)
    for step in range(1, 6):
        with torch.no_grad():
            model.weight.fill_(float(step))
        best.observe(step, final=step == 5)
    assert best.restore() == 4 and model.weight.item() == 4.0
    assert best.best_loss == 1.0


def test_paper_protocols_select_on_test_loss_and_ours_do_not():
    assert paper("paper_nyuv2").checkpoint_selection == "best_test_loss"
    assert paper("paper_nyuv2").selection_every == 50
    assert paper("cpu_default").checkpoint_selection == "last"


def test_loss_at_output_stride_downsamples_labels_by_nearest():
    from core.tasks import make_task, weighted_task_losses

    seg, depth = make_task("seg", num_classes=3), make_task("depth")
    labels = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [2, 2, 2, 2]]])
    depths = torch.arange(16.0).reshape(1, 1, 4, 4) + 1
    logits = torch.randn(1, 3, 2, 2)
    pred_depth = torch.ones(1, 1, 2, 2)
    outputs = {"seg": logits, "depth": pred_depth}
    total, parts = weighted_task_losses(outputs, {"seg": labels, "depth": depths}, (seg, depth), {})
    # nearest to 2x2 takes rows/cols 0 and 2: labels [[0, 1], [2, 2]], depths [[1, 3], [9, 11]]
    small = torch.tensor([[[0, 1], [2, 2]]])
    expected = torch.nn.functional.cross_entropy(logits, small)
    torch.testing.assert_close(parts["seg"], expected)
    torch.testing.assert_close(parts["depth"], torch.tensor((0 + 2 + 8 + 10) / 4))
    torch.testing.assert_close(total, parts["seg"] + parts["depth"])


def test_network_skips_upsampling_only_in_train_mode_when_asked(tiny_model):
    x = torch.rand(2, 3, 16, 24)
    tiny_model.upsample_in_training = False
    tiny_model.train()
    low = tiny_model(x)
    tiny_model.eval()
    full = tiny_model(x)
    assert all(v.shape[-2:] == (16, 24) for v in full.values())  # evaluation at full resolution
    assert all(v.shape[-2:] != (16, 24) for v in low.values())  # the heads' own resolution


def test_best_checkpoint_considers_only_eligible_states():
    from benchmarks.training.selection import BestCheckpoint

    model = torch.nn.Linear(1, 1, bias=False)
    losses = iter([1.0, 2.0])  # measured only where eligible: steps 4 and 6
    best = BestCheckpoint(model, lambda: next(losses), every=2, eligible=lambda: step >= 4)
    for step in range(1, 7):  # the lowest loss an ineligible state would have had is never seen
        with torch.no_grad():
            model.weight.fill_(float(step))
        best.observe(step, final=step == 6)
    assert best.restore() == 4 and model.weight.item() == 4.0


def train_tiny(model, bundle, protocol, steps, validate=lambda: {}):
    from benchmarks.training.loop import LoopHooks, Objective, Phase, train
    from benchmarks.training.stream import BatchStream
    from methods.masks import MaskSet

    batches = BatchStream(
        bundle.splits["train"], 4, torch.Generator().manual_seed(0), torch.device("cpu")
    )
    train(
        model,
        MaskSet.dense(model),
        batches,
        Objective(bundle.tasks),
        protocol,
        Phase(steps),
        LoopHooks(validate=validate),
    )


def test_an_exploding_loss_fails_the_run_before_it_is_ranked(tiny_model, tiny_bundle):
    from benchmarks.training.loop import DivergenceError

    wild = dataclasses.replace(TINY_PROTOCOL, lr=1e6)  # Adam: huge but finite losses
    with pytest.raises(DivergenceError, match="at its first step"):
        train_tiny(tiny_model, tiny_bundle, wild, 30)


def test_nan_validation_metrics_fail_the_run(tiny_model, tiny_bundle):
    from benchmarks.training.loop import DivergenceError

    protocol = dataclasses.replace(TINY_PROTOCOL, eval_every=1)
    with pytest.raises(DivergenceError, match="seg/mIoU NaN on the validation split at step 1"):
        train_tiny(tiny_model, tiny_bundle, protocol, 3, lambda: {"seg/mIoU": float("nan")})


def test_ordinary_training_is_not_flagged(tiny_model, tiny_bundle):
    train_tiny(tiny_model, tiny_bundle, TINY_PROTOCOL, 10)
