"""Dataset registry: a dataset is a builder function registered by name."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch.utils.data import Dataset

from core.tasks import TaskSpec

SPLITS = ("train", "val", "test")
IMAGE_CHANNELS = 3  # every loader yields RGB images


@dataclass
class DatasetBundle:
    """What a run needs from a dataset: its tasks and one torch ``Dataset`` per split.

    Each split yields dicts with ``image`` plus one label tensor per task name.
    """

    name: str
    tasks: tuple[TaskSpec, ...]
    splits: dict[str, Dataset]
    resolution: tuple[int, int]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of an evaluation image, the input size costs are counted at."""
        return (IMAGE_CHANNELS, *self.resolution)

    def summary(self) -> list[str]:
        task_list = ", ".join(t.name for t in self.tasks)
        h, w = self.resolution
        return [
            f"{self.name}/{split}: {len(ds)} samples, {h}x{w}, tasks {task_list}"  # type: ignore[arg-type]
            for split, ds in self.splits.items()
        ]


@dataclass(frozen=True)
class DatasetOptions:
    """Options every dataset takes (each dataset's options dataclass extends this)."""

    limit: int | None = field(
        default=None,
        metadata={
            "help": "at most this many samples per split (the first ones); null: all. For "
            "quick checks of a setup (experiment=smoke)"
        },
    )

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"dataset.limit must be >= 1 or null, got {self.limit}")

    def capped(self, count: int) -> int:
        """``count`` samples, or ``limit`` when that is smaller."""
        return count if self.limit is None else min(count, self.limit)


DatasetBuilder = Callable[[Mapping[str, Any]], DatasetBundle]
_BUILDERS: dict[str, DatasetBuilder] = {}


def register_dataset(name: str) -> Callable[[DatasetBuilder], DatasetBuilder]:
    def decorate(builder: DatasetBuilder) -> DatasetBuilder:
        if name in _BUILDERS and _BUILDERS[name] is not builder:
            raise ValueError(f"dataset {name!r} is registered twice")
        _BUILDERS[name] = builder
        return builder

    return decorate


@functools.cache
def _discover() -> None:
    """Import every module of ``datasets`` once so their ``@register_dataset`` calls run."""
    import datasets

    for module in pkgutil.iter_modules(datasets.__path__):
        importlib.import_module(f"datasets.{module.name}")


def list_datasets() -> list[str]:
    _discover()
    return sorted(_BUILDERS)


def build_dataset(name: str, options: Mapping[str, Any]) -> DatasetBundle:
    """Build dataset ``name`` from its config options (everything but ``name``)."""
    if name not in list_datasets():
        raise KeyError(
            f"unknown dataset {name!r}; registered datasets: {', '.join(list_datasets())}"
        )
    return _BUILDERS[name](options)
