"""Network health from masks alone: collapsed layers and tasks cut off from the input."""

from __future__ import annotations

import math

import pytest
import torch

from core.tasks import make_task
from methods.health import (
    collapsed_layers,
    dead_outputs,
    disconnected_tasks,
    health_report,
    min_layer_density,
    path_outputs,
)
from methods.masks import MaskSet
from methods.networks import hard_sharing_network
from methods.registry import build_method
from tests.helpers import make_context

SHAPE = (3, 16, 24)


def cut_off(model, masks):
    return disconnected_tasks(path_outputs(model, masks, SHAPE))


def test_a_dense_network_is_healthy(tiny_model):
    masks = MaskSet.dense(tiny_model)
    assert collapsed_layers(masks) == [] and min_layer_density(masks) == 1.0
    assert cut_off(tiny_model, masks) == []


def test_an_emptied_head_layer_cuts_off_only_its_task(tiny_model):
    masks = MaskSet.dense(tiny_model)
    masks.set_mask("heads.seg.0.0.weight", torch.zeros_like(masks.masks["heads.seg.0.0.weight"]))
    assert collapsed_layers(masks) == ["heads.seg.0.0.weight"]
    assert cut_off(tiny_model, masks) == ["seg"]
    metrics, tags = health_report(tiny_model, masks, SHAPE)
    assert metrics["health/collapsed_layers"] == 1 and metrics["health/disconnected_tasks"] == 1
    assert metrics["health/min_layer_density"] == 0.0 and tags["health/disconnected"] == "seg"


def test_a_dead_channel_chain_cuts_off_every_task_with_no_empty_layer(tiny_model):
    masks = MaskSet.dense(tiny_model)
    only_out_0 = torch.zeros_like(masks.masks["encoder.2.0.weight"])
    only_out_0[0] = True  # layer 2 writes only channel 0
    reads_in_1 = torch.zeros_like(masks.masks["encoder.3.0.weight"])
    reads_in_1[:, 1] = True  # layer 3 reads only channel 1, which nothing writes
    masks.set_mask("encoder.2.0.weight", only_out_0)
    masks.set_mask("encoder.3.0.weight", reads_in_1)
    assert collapsed_layers(masks) == []
    assert sorted(cut_off(tiny_model, masks)) == ["normal", "seg"]
    reads_in_1[:, 0] = True  # now a path exists again
    masks.set_mask("encoder.3.0.weight", reads_in_1)
    assert cut_off(tiny_model, masks) == []


def test_a_vit_whose_patch_embedding_is_pruned_away_is_cut_off():
    torch.manual_seed(0)
    tasks = (make_task("seg", num_classes=3), make_task("normal"))
    model = hard_sharing_network("vit", {"dim": 16, "depth": 1, "heads": 2}, tasks)
    masks = MaskSet.dense(model)
    embedding = "encoder.0.project.weight"
    masks.set_mask(embedding, torch.zeros_like(masks.masks[embedding]))
    assert cut_off(model, masks) == ["seg", "normal"]


def input_moves(model, masks) -> dict[str, bool]:
    """Per task: whether the pruned network's output changes with its input (a path exists)."""
    masks.apply(model)
    model.eval()
    with torch.no_grad():
        first, second = model(torch.randn(2, *SHAPE)), model(torch.randn(2, *SHAPE))
    return {task: not torch.allclose(first[task], second[task]) for task in first}


@pytest.mark.parametrize("sparsity,seed", [(0.7, 0), (0.7, 1), (0.9, 0)])
def test_on_a_vit_the_path_check_agrees_with_what_the_input_moves(sparsity, seed, tiny_bundle):
    """SynFlow's masks on the ViT: the check once marked both tasks cut off where the
    segmentation output still followed the input (LayerNorm negated its path counts)."""
    torch.manual_seed(seed)
    model = hard_sharing_network("vit", {}, tiny_bundle.tasks)
    masks = build_method("synflow", {}).make_masks(make_context(model, tiny_bundle, sparsity, seed))
    reported = cut_off(model, masks)
    assert reported == [task for task, moved in input_moves(model, masks).items() if not moved]


def test_health_check_leaves_the_network_untouched(tiny_model):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    masks = MaskSet.dense(tiny_model)
    masks.set_mask("heads.seg.1.weight", torch.zeros_like(masks.masks["heads.seg.1.weight"]))
    cut_off(tiny_model, masks)
    assert all(torch.equal(v, before[k]) for k, v in tiny_model.state_dict().items())


def test_a_classifier_channel_without_weights_is_a_dead_output(tiny_model):
    masks = MaskSet.dense(tiny_model)
    classifier = masks.masks["heads.normal.1.weight"].clone()  # 1x1 conv: (3, hidden, 1, 1)
    classifier[1] = False  # the y component of the normal keeps no weight
    masks.set_mask("heads.normal.1.weight", classifier)
    outputs = path_outputs(tiny_model, masks, SHAPE)
    assert dead_outputs(outputs) == ["normal[1]"] and disconnected_tasks(outputs) == []
    assert collapsed_layers(masks) == []  # nothing else would have noticed
    metrics, tags = health_report(tiny_model, masks, SHAPE)
    assert metrics["health/dead_outputs"] == 1 and tags["health/dead_outputs"] == "normal[1]"
    assert dead_outputs(path_outputs(tiny_model, MaskSet.dense(tiny_model), SHAPE)) == []


def test_leaderboard_flags_rows_whose_networks_broke_and_names_what():
    import pandas as pd

    from benchmarks.reporting.settings import health_note
    from benchmarks.reporting.tables import render_table

    runs = pd.DataFrame(
        {
            "health/collapsed": ["heads.seg.0.0.weight", "", "heads.seg.0.0.weight"],
            "health/disconnected": ["seg", "", ""],
            "health/dead_outputs": ["", "normal[1]", ""],
        }
    )
    note = health_note(runs)
    assert note == (
        "layers pruned away: heads.seg.0.0.weight (2/3 seeds); cut off: seg (1/3 seeds); "
        "output channels no path reaches: normal[1] (1/3 seeds)"
    )
    assert health_note(runs.iloc[[2]]) == "layers pruned away: heads.seg.0.0.weight (1/1 seeds)"
    row = {
        "kind": "static",
        "method": "grasp",
        "sparsity": 0.9,
        "seeds": 3,
        "sparsity/overall:mean": 0.9,
        "delta_m:mean": -40.0,
        "delta_m:std": 1.0,
        "health": note,
    }
    table = render_table(pd.DataFrame([row]), {"depth": "depth"})
    assert "grasp †" in table
    best = {**row, "method": "snip", "health": "", "delta_m:mean": -30.0}
    tied = render_table(pd.DataFrame([row, best]), {"depth": "depth"}, {"grasp", "snip"})
    assert "-40.00 ≈ (†)" in tied, "a broken row is never shown tied without saying so"


def test_a_task_whose_own_weights_are_pruned_beyond_99_percent_is_flagged_starved():
    """SNIP pruned the segmentation head to 99.8% and Δm averaged it with the other task."""
    import pandas as pd

    from benchmarks.reporting.settings import health_note

    runs = pd.DataFrame(
        {
            "sparsity/owner/seg": [0.999, 0.95, 0.9991],
            "sparsity/owner/normal": [0.9, 0.99, 0.8],  # 0.99 is not beyond 99%
            "sparsity/owner/shared": [0.999, 0.999, 0.999],  # the shared encoder is no task
        }
    )
    assert health_note(runs) == ("task starved, its own weights pruned beyond 99%: seg (2/3 seeds)")
    assert health_note(runs.iloc[[1]]) == ""


def test_a_task_no_better_than_its_constant_prediction_is_flagged_starved():
    """GraSP at 90% ended with seg mIoU 5.39: exactly what predicting the most frequent class
    everywhere scores, while the normals looked fine; Δm averaged the two."""
    import pandas as pd

    from benchmarks.reporting.settings import health_note

    runs = pd.DataFrame(
        {
            "seg/mIoU": [5.39, 5.0, 30.0],  # equal to the floor counts: the head learned nothing
            "constant/seg/mIoU": [5.39, 5.39, 5.39],
            "seg/pixel_acc": [10.0, 10.0, 10.0],  # not a main metric: never read
            "constant/seg/pixel_acc": [70.0, 70.0, 70.0],
            "normal/mean_angle": [20.0, 45.0, 45.1],  # lower is better: 45.1 is worse
            "constant/normal/mean_angle": [45.0, 45.0, 45.0],
        }
    )
    assert health_note(runs) == (
        "task starved, no better than a constant prediction: normal (2/3 seeds), seg (2/3 seeds)"
    )
    assert health_note(runs.iloc[[2]].assign(**{"normal/mean_angle": 20.0})) == ""


def test_a_train_loss_that_spiked_and_recovered_is_flagged_from_the_runs_history(tmp_path):
    """At lr=3 the dense loss rose to 21x its first value and came back down: the run ended
    FINISHED, below the divergence rule (1000x), and nothing said so."""
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from benchmarks.reporting.settings import health_note
    from benchmarks.tracking.collect import loss_spike

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("x")
    histories = {"spiked": [2.0, 1.0, 42.0, 0.5], "smooth": [2.0, 1.5, 1.0], "short": [3.0]}
    spikes = {}
    for name, losses in histories.items():
        run = client.create_run(experiment).info.run_id
        for step, value in enumerate(losses):
            client.log_metric(run, "train/loss", value, step=step * 10)
        spikes[name] = loss_spike(client, run)
    assert spikes["spiked"] == 21.0 and spikes["smooth"] == 1.0
    assert math.isnan(spikes["short"])
    runs = pd.DataFrame({"health/loss_spike": list(spikes.values())})
    assert health_note(runs) == "train loss spiked to 21x its first value (1/3 seeds)"
    assert health_note(runs.iloc[[1, 2]]) == ""
