"""Dataset registry: a dataset is a builder function registered by name with its typed options
(``core.registry``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch.utils.data import Dataset

from core.registry import Registry
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
    crop: tuple[int, int] | None = None  # the training crop, when training images are cropped

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of an evaluation image, the input size costs are counted at."""
        return (IMAGE_CHANNELS, *self.resolution)

    @property
    def train_image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of a training image (the crop, if any): what a training step costs at."""
        return (IMAGE_CHANNELS, *(self.crop or self.resolution))

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


DATASETS: Registry[Callable[[Any], DatasetBundle]] = Registry(
    "dataset", "datasets", where=lambda name: "dataset"
)


def register_dataset(name: str, options: type[DatasetOptions]):
    """Function decorator: ``builder(options) -> DatasetBundle`` is ``dataset=name``."""
    return DATASETS.register(name, options)


def list_datasets() -> list[str]:
    return DATASETS.names()


def dataset_options(name: str, config: Mapping[str, Any]) -> DatasetOptions:
    """The typed, checked options of dataset ``name`` (``config``: everything but ``name``)."""
    return DATASETS.options(name, config)


def build_dataset(name: str, config: Mapping[str, Any]) -> DatasetBundle:
    """Build dataset ``name`` from its config options (everything but ``name``)."""
    return DATASETS.entry(name).builder(dataset_options(name, config))


TRAINING_KEYS = ("loss_weights",)  # in a dataset config section, but for training, not loading


def dataset_from_config(section: Mapping[str, Any]) -> DatasetBundle:
    """The dataset of a config's ``dataset:`` section, as a run's ``config.yaml`` logs it
    (``name``, the loader's options, and the training-only ``loss_weights``)."""
    options = {k: v for k, v in section.items() if k not in ("name", *TRAINING_KEYS)}
    return build_dataset(section["name"], options)
