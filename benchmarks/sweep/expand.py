"""Expand the composed config into the list of cells to run.

``method: all`` means dense + every registered compression method, each with its own config file
from ``conf/method/``. ``sparsity``/``seed`` of null mean the lists under ``sweep``. Methods that do
not prune (dense, architectures) run once per seed at sparsity 0.
"""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig, OmegaConf

from benchmarks.cells.cell import Cell
from benchmarks.cells.method_configs import load_method_config
from benchmarks.sweep.loader_workers import with_loader_workers
from core.tasks import TASK_KINDS
from methods.lifecycle import MethodKind
from methods.registry import get_method, list_methods
from methods.sanity import SANITY_CHECKS, SanityOptions

ALL_METHODS = "all"
MAX_SEED = 2**31 - 1  # cell seeds plus their offsets stay inside every generator's range
KIND_ORDER = list(MethodKind)  # dense first: later cells reuse the dense model


def _preset_options(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """``method_options``: per-method option values an experiment preset sets, which apply
    whether the method was chosen alone or through ``method=all``."""
    configured = cfg.get("method_options")
    presets = {} if configured is None else OmegaConf.to_container(configured, resolve=True)
    assert isinstance(presets, dict)
    for name, values in presets.items():
        get_method(str(name))  # unknown names fail here, listing the known ones
        if not isinstance(values, dict):
            raise ValueError(f"method_options.{name} must map option names to values")
    return presets


def _method_configs(cfg: DictConfig) -> list[dict[str, Any]]:
    chosen = OmegaConf.to_container(cfg.method, resolve=True)
    assert isinstance(chosen, dict)
    if chosen.get("name") != ALL_METHODS:
        get_method(str(chosen.get("name")))  # unknown names fail here, listing the known ones
        configs = [chosen]
    else:
        names = [n for n in list_methods() if n != "dense" or cfg.sweep.include_dense]
        kinds = cfg.sweep.get("kinds")
        if kinds is not None:
            chosen_kinds = _known_kinds(kinds)
            names = [n for n in names if n == "dense" or get_method(n).kind in chosen_kinds]
        configs = [load_method_config(n) for n in names]
    presets = _preset_options(cfg)
    configs = [{**config, **presets.get(config["name"], {})} for config in configs]
    return configs + _sanity_variants(cfg, configs)


def _sanity_variants(cfg: DictConfig, configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``sweep.sanity_checks``: each method with sanity options (prune-at-init, structured)
    again under each ablation it supports."""
    checks = [str(c) for c in _as_list(cfg.sweep.get("sanity_checks"), [])]
    for check in checks:
        if check not in SANITY_CHECKS[1:]:
            raise ValueError(
                f"sweep.sanity_checks: unknown check {check!r}; choose from "
                f"{', '.join(SANITY_CHECKS[1:])}"
            )
    return [
        {**config, "sanity": check}
        for config in configs
        if issubclass(options := get_method(config["name"]).Options, SanityOptions)
        for check in checks
        if check in options.CHECKS
    ]


def _known_kinds(kinds: Any) -> list[MethodKind]:
    chosen = [str(k) for k in _as_list(kinds, [])]
    known = [k.value for k in MethodKind]
    unknown = [k for k in chosen if k not in known]
    if unknown:
        raise ValueError(
            f"sweep.kinds: unknown kind(s) {', '.join(unknown)}; choose from {', '.join(known)}"
        )
    return [MethodKind(k) for k in chosen]


def _as_list(value: Any, default: Any) -> list:
    chosen = default if value is None else value
    chosen = OmegaConf.to_container(chosen) if OmegaConf.is_config(chosen) else chosen
    return list(chosen) if isinstance(chosen, list | tuple) else [chosen]


def _number(key: str, value: Any, kind: type) -> float | int:
    """``value`` as a float or an integer, or an error naming ``key`` (1.5 is not a seed)."""
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value  # exact, however large
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if math.isnan(number) or (kind is int and not number.is_integer()):
        expected = "a whole number" if kind is int else "a number"
        raise ValueError(f"{key}={value!r} is not {expected} (or a list of them)")
    return kind(number)


def _with_own_loss_weights(dataset: dict[str, Any]) -> dict[str, Any]:
    """``dataset`` with only the loss weights of its tasks: a setting that narrows an embedded
    config's tasks (synthetic_seg_depth from synthetic) inherits weights of tasks it does not
    have, which would otherwise enter its identity. A name that is no task at all is a typo."""
    weights, tasks = dataset.get("loss_weights") or {}, dataset.get("tasks")
    if tasks is None:
        return dataset
    unknown = sorted(set(weights) - set(tasks) - set(TASK_KINDS))
    if unknown:
        raise ValueError(
            f"dataset.loss_weights: {', '.join(unknown)} is not a task of this dataset "
            f"(tasks: {', '.join(tasks)}); use those names, e.g. "
            f"'++dataset.loss_weights={{{tasks[0]}: 1.0}}'"
        )
    return {**dataset, "loss_weights": {t: w for t, w in weights.items() if t in tasks}}


def expand_sweep(cfg: DictConfig) -> list[Cell]:
    """Cells in run order: dense first, then static, dynamic, pretrained, architectures."""
    base = {
        key: OmegaConf.to_container(cfg[key], resolve=True)
        for key in ("dataset", "model", "protocol")
    }
    base["dataset"] = _with_own_loss_weights(base["dataset"])
    base["protocol"] = with_loader_workers(base["protocol"], cfg)
    sparsities = [
        _number("sparsity", s, float) for s in _as_list(cfg.sparsity, cfg.sweep.sparsities)
    ]
    seeds = [_number("seed", s, int) for s in _as_list(cfg.seed, cfg.sweep.seeds)]
    for seed in seeds:
        if not 0 <= seed <= MAX_SEED:
            raise ValueError(
                f"seed={seed} is outside 0..{MAX_SEED} (the generators take cell seeds plus "
                "fixed offsets); choose a smaller non-negative seed"
            )
    for s in sparsities:
        if not 0.0 <= s < 1.0:
            raise ValueError(
                f"sparsity={s} is outside [0, 1): give the fraction of weights removed"
            )
    cells = []
    for method in _method_configs(cfg):
        shared_with = get_method(method["name"]).same_cell_as
        if shared_with:  # same network and training as another method: run (or find) its cell
            method = load_method_config(shared_with)
        for sparsity in sparsities if get_method(method["name"]).prunes else [0.0]:
            for seed in seeds:
                cells.append(Cell(**base, method=method, sparsity=sparsity, seed=seed))
    order = {name: i for i, name in enumerate(KIND_ORDER)}
    unique = list({c.cell_id: c for c in cells}.values())
    return sorted(
        unique,
        key=lambda c: (order[get_method(c.method_name).kind], c.method_name, c.sparsity, c.seed),
    )
