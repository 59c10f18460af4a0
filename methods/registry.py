"""The method registry: every compared method is a class registered by name.

Adding a method = one file in ``methods/`` with a ``@register_method("name")`` class, plus one
config file ``benchmarks/conf/method/name.yaml``. Files in ``methods/`` are discovered on first use.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from datasets.options import describe_options, options_from_mapping
from datasets.tasks import TaskSpec
from methods.context import PruneContext
from methods.masks import MaskSet
from methods.networks import Backbone, MultiTaskNet

if TYPE_CHECKING:
    import torch


class MethodKind(str, Enum):
    """When a method acts, which decides what the runner does around it."""

    DENSE = "dense"  # no pruning: the baseline
    PRUNE_AT_INIT = "prune_at_init"  # masks chosen at initialisation, then full training
    PRUNE_PRETRAINED = "prune_pretrained"  # masks chosen on the trained dense model, fine-tune
    DYNAMIC = "dynamic"  # masks change during training
    ARCHITECTURE = "architecture"  # a dedicated multitask network, trained dense

    @property
    def prunes(self) -> bool:
        return self not in (MethodKind.DENSE, MethodKind.ARCHITECTURE)


# How the leaderboard groups rows, in the paper's order.
GROUP_OF_KIND = {
    MethodKind.DENSE: "dense",
    MethodKind.PRUNE_AT_INIT: "static",
    MethodKind.DYNAMIC: "dynamic",
    MethodKind.PRUNE_PRETRAINED: "pretrained",
    MethodKind.ARCHITECTURE: "architecture",
}


@dataclass
class TrainingState:
    """What a dynamic method may read and change during training."""

    ctx: PruneContext
    masks: MaskSet
    optimizer: torch.optim.Optimizer
    batch: dict[str, torch.Tensor]


class Method:
    """Base class. Subclasses set ``kind`` and ``Hparams`` and override what differs."""

    name: ClassVar[str] = ""
    kind: ClassVar[MethodKind]
    Hparams: ClassVar[type]
    paper: ClassVar[str] = ""
    # Another registered method whose cells this one shares (same network and training): the
    # sweep runs that method's cell instead and the leaderboard shows the row under both names.
    same_cell_as: ClassVar[str | None] = None

    def __init__(self, hparams: Any):
        self.hparams = hparams

    @property
    def group(self) -> str:
        return GROUP_OF_KIND[self.kind]

    @property
    def prunes(self) -> bool:
        return self.kind.prunes

    def make_masks(self, ctx: PruneContext) -> MaskSet:
        """Choose which weights survive. Dense and architecture methods keep everything."""
        return MaskSet.dense(ctx.model)

    def build_network(self, backbone: Backbone, tasks: Sequence[TaskSpec]) -> MultiTaskNet:
        """The network this method trains: the hard-sharing one unless it is an architecture."""
        return backbone.hard_sharing(tasks)

    def training_steps(self, steps: int, finetune_steps: int) -> int:
        """Steps the runner trains after ``make_masks``: fine-tuning for pretrained methods."""
        return finetune_steps if self.kind == MethodKind.PRUNE_PRETRAINED else steps

    def after_backward(self, step: int, total_steps: int, state: TrainingState) -> None:
        """Called after every backward pass, before the optimiser step (dynamic methods)."""


M = TypeVar("M", bound=type[Method])
_METHODS: dict[str, type[Method]] = {}


def register_method(name: str) -> Callable[[M], M]:
    """Class decorator: make a method available under ``name`` (``method=name`` in configs)."""

    def decorate(cls: M) -> M:
        if name in _METHODS and _METHODS[name] is not cls:
            raise ValueError(f"method {name!r} is registered twice")
        cls.name = name
        _METHODS[name] = cls
        return cls

    return decorate


@functools.cache
def _discover() -> None:
    """Import every module of ``methods`` once, so their ``@register_method`` calls run."""
    import methods

    for module in pkgutil.iter_modules(methods.__path__):
        importlib.import_module(f"methods.{module.name}")


def list_methods() -> list[str]:
    _discover()
    return sorted(_METHODS)


def get_method(name: str) -> type[Method]:
    _discover()
    if name not in _METHODS:
        raise KeyError(
            f"unknown method {name!r}; registered methods: {', '.join(sorted(_METHODS))}"
        )
    return _METHODS[name]


def build_method(name: str, options: Mapping[str, Any]) -> Method:
    """Instantiate a registered method from its config options (everything but ``name``)."""
    cls = get_method(name)
    return cls(options_from_mapping(cls.Hparams, options, f"method={name}"))


def method_help(name: str) -> list[tuple[str, str, str]]:
    return describe_options(get_method(name).Hparams)
