"""What a cell's run records: its tags and params, its health after pruning, its results and
its artifacts, under the names of the run schema (``benchmarks.tracking.schema``)."""

from __future__ import annotations

import json
import logging
import math
import time

import torch
import yaml

from benchmarks.cells.cell import Cell, flatten
from benchmarks.cells.network_record import network_description
from benchmarks.cells.phases import TrainingPhases
from benchmarks.cells.task_masks import figure_title, log_task_mask_analysis
from benchmarks.inference.cost import MASKED_KERNEL, inference_cost, kernel_of
from benchmarks.inference.measure import sparse_state_dict
from benchmarks.tracking import schema
from benchmarks.tracking.models import model_name
from benchmarks.tracking.run_log import TrackedRun
from benchmarks.tracking.versions import code_version, environment_tags, source_tags
from benchmarks.training.loop import check_metrics
from core.state import cpu_state_dict
from datasets.registry import DatasetBundle
from methods.health import health_report
from methods.lifecycle import Method
from methods.masks import MaskSet, measure_sparsity
from methods.networks.complexity import complexity

log = logging.getLogger(__name__)
HEALTH_SIZE = 64  # pixels: the side of the input the structural health check uses


def cell_tags(
    cell: Cell, method: Method, bundle: DatasetBundle, device: torch.device
) -> dict[str, str]:
    return {
        schema.METHOD: cell.method_name,
        schema.KIND: method.kind.value,
        schema.DATASET: cell.dataset["name"],
        schema.TASKS: json.dumps({t.name: t.kind for t in bundle.tasks}),
        schema.MODEL: cell.model["name"],
        schema.PROTOCOL: cell.protocol["name"],
        schema.SPARSITY: f"{cell.sparsity:g}",
        schema.SELECTION: str(cell.protocol.get("checkpoint_selection", "last")),
        schema.SEED: str(cell.seed),
        schema.SANITY: str(cell.method.get("sanity", "none")),
        schema.VARIANT: cell.variant,
        schema.SETTING_ID: cell.setting_id,
        schema.CODE_FINGERPRINT: cell.code_fingerprint,
        schema.CODE_VERSION: code_version(),
        **source_tags(),
        **environment_tags(str(device)),
    }


def cell_params(cell: Cell, device: torch.device) -> dict[str, str]:
    """Every resolved option (defaults filled in): how a later version of the code tells that a
    default changed under the same cell id."""
    return flatten({**cell.resolved, "device": str(device)})


def log_health(
    run: TrackedRun, model: torch.nn.Module, masks: MaskSet, bundle: DatasetBundle, step: int
) -> None:
    """Collapsed layers and cut-off tasks now (logged at ``step``). Connectivity does not depend
    on the resolution, so a small input keeps the check cheap."""
    channels, height, width = bundle.image_shape
    shape = (channels, min(height, HEALTH_SIZE), min(width, HEALTH_SIZE))
    metrics, tags = health_report(model, masks, shape)
    run.metrics(metrics, step)
    run.tags(tags)
    broken = {k: v for k, v in tags.items() if v}
    if broken:
        log.warning("  health at step %d: %s", step, broken)


def log_results(
    run: TrackedRun,
    phases: TrainingPhases,
    masks: MaskSet,
    method: Method,
    source_cost: dict[str, float] | None,
) -> None:
    """Test metrics (and those of each task's best constant prediction), achieved sparsity
    (overall and per layer), health, model cost, and the training cost of everything that
    produced the model (the source run's included)."""
    model, end = phases.model, phases.steps_done
    test = phases.evaluate("test")
    check_metrics(test, "on the test split")
    achieved = measure_sparsity(model)
    run.metrics({schema.TEST + k: v for k, v in test.items()}, end)
    run.metrics({schema.CONSTANT + k: v for k, v in phases.constant_metrics("test").items()}, end)
    run.metrics({schema.SPARSITY_ACHIEVED + k: v for k, v in achieved.items()}, end)
    by_layer = masks.sparsity_by_layer()
    run.metrics({schema.SPARSITY_LAYER + k: v for k, v in by_layer.items()}, end)
    if method.prunes:
        log_health(run, model, masks, phases.bundle, end)
    cost = complexity(model, phases.bundle.image_shape)
    run.metrics({schema.MODEL_COST + k: v for k, v in cost.items()}, end)
    cost_so_far = phases.training_cost
    training = {schema.TRAIN_STEPS: cost_so_far["steps"], schema.TRAIN_FLOPS: cost_so_far["flops"]}
    if source_cost is not None:
        training = {k: v + source_cost.get(k, math.nan) for k, v in training.items()}
    run.metrics(training, end)
    log.info(
        "  done: sparsity %.4f | %s",
        achieved["overall"],
        ", ".join(f"{k} {v:.3g}" for k, v in test.items()),
    )


def log_inference(
    run: TrackedRun,
    model: torch.nn.Module,
    dense: torch.nn.Module,
    bundle: DatasetBundle,
    step: int,
) -> None:
    """What the final model costs at inference, against the setting's dense network (and how
    long measuring it took: ``time/inference_s``), at the training image size: on a real
    dataset's crop rather than its full test images, so a paper network measured on a CPU takes
    a minute, not ten (ratios to dense hardly depend on the size)."""
    started = time.perf_counter()
    device = next(model.parameters()).device
    metrics, tags = inference_cost(model, dense, bundle.train_image_shape, device)
    run.metrics({schema.INFERENCE + k: v for k, v in metrics.items()}, step)
    run.metrics({f"{schema.TIME}inference_s": time.perf_counter() - started}, step)
    run.tags({schema.INFERENCE + k: v for k, v in tags.items()})


def log_artifacts(
    run: TrackedRun, cell: Cell, model: torch.nn.Module, masks: MaskSet, bundle: DatasetBundle
) -> None:
    """Config, masks, the state dict (what later cells start from), the MLflow model,
    and, for a model with pruned weights, its sparse state dict."""
    run.artifact_text(yaml.safe_dump(cell.as_dict(), sort_keys=False), schema.CONFIG)
    run.artifact_torch(masks.state_dict(), schema.MASKS)
    state = {"model": cpu_state_dict(model), "masks": masks.state_dict()}
    run.artifact_torch(state, schema.MODEL_STATE)
    name = model_name(cell.method_name, cell.sparsity, cell.seed)
    run.logged_model(model, network_description(cell, bundle), bundle.image_shape, name)
    if kernel_of(model) == MASKED_KERNEL:  # MLflow's copy is dense
        run.artifact_torch(sparse_state_dict(model), schema.SPARSE_STATE)
    if masks.task_masks:
        title = figure_title(cell.method_name, cell.sparsity, cell.seed, cell.dataset["name"])
        log_task_mask_analysis(run, masks, title)
