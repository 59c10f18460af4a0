"""One benchmark cell: (dataset, model, protocol, method, sparsity, seed), its identity, its
resolved options and the fingerprint of the code that computes it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from benchmarks.cells import fingerprint, identity
from benchmarks.tracking.keys import CellKey
from benchmarks.training.protocol import Protocol
from datasets.registry import DATASETS
from methods.networks import MODELS
from methods.registry import get_method


def options(config: dict[str, Any], meta: tuple[str, ...] = ("name",)) -> dict[str, Any]:
    """A config group's options for its builder: everything but ``name`` (and other ``meta``)."""
    return {k: v for k, v in config.items() if k not in meta}


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> ``{"a.b.c": "value"}`` (MLflow params)."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def _shown(value: Any) -> str:
    """An option value as a config would spell it (100.0 as 100)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Cell:
    """Everything that determines a run's result. The device is not part of it (a CPU and a CUDA
    run of the same cell count as the same cell); tracking and output paths are not either.

    ``threads``: the torch threads of a CPU cell (``threads_per_cell``), which change its
    numbers in the last digits; None on a GPU. One thread (the default sweep's) is the identity
    cells had before it counted, so their runs keep their ids."""

    dataset: dict[str, Any]
    model: dict[str, Any]
    protocol: dict[str, Any]
    method: dict[str, Any]
    sparsity: float
    seed: int
    threads: int | None = None

    def groups(self) -> dict[str, dict[str, Any]]:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "protocol": self.protocol,
            "method": self.method,
        }

    def as_dict(self) -> dict[str, Any]:
        """The cell as configured (what ``config.yaml`` of its run holds)."""
        return {**self.groups(), "sparsity": self.sparsity, "seed": self.seed, **self._threads()}

    def _threads(self) -> dict[str, int]:
        """``{"threads": n}`` for a CPU cell, else nothing."""
        return {} if self.threads is None else {"threads": self.threads}

    def _counted_threads(self) -> dict[str, int]:
        """The thread count where it enters the ids: anything but one thread (or a GPU)."""
        return {} if self.threads in (None, 1) else {"threads": self.threads}

    @cached_property
    def typed_options(self) -> dict[str, Any]:
        """Each group read once into its typed options (``Protocol``, the dataset's, model's and
        method's options dataclasses), checked: what the builders take."""
        return {g: identity.typed_options(g, c) for g, c in self.groups().items()}

    @property
    def protocol_options(self) -> Protocol:
        return self.typed_options["protocol"]

    @property
    def dataset_options(self) -> Any:
        return self.typed_options["dataset"]

    @property
    def model_options(self) -> Any:
        return self.typed_options["model"]

    @property
    def method_options(self) -> Any:
        return self.typed_options["method"]

    def _identity(self, group: str) -> dict[str, Any]:
        return identity.identity(group, self.groups()[group], self.typed_options[group])

    @property
    def dataset_digest(self) -> str:
        """Identity of the cell's data (what it is, not where it is): its MLflow dataset digest."""
        return identity.stable_hash(self._identity("dataset"))

    @cached_property
    def resolved(self) -> dict[str, Any]:
        """Every option of every group with its value, defaults filled in (logged as params)."""
        groups = {
            g: identity.resolved(g, c, self.typed_options[g]) for g, c in self.groups().items()
        }
        return {**groups, "sparsity": self.sparsity, "seed": self.seed, **self._counted_threads()}

    @cached_property
    def cell_id(self) -> str:
        """Hash of the options that differ from their defaults (``benchmarks.cells.identity``)
        and of a thread count other than one."""
        groups = {g: self._identity(g) for g in self.groups()}
        cell = {**groups, "sparsity": self.sparsity, "seed": self.seed}
        return identity.stable_hash({**cell, **self._counted_threads()})

    @cached_property
    def setting_id(self) -> str:
        """Identity of the comparison a cell belongs to: same data, model, protocol and thread
        count (seeds of one row never mix thread counts)."""
        setting = {g: self._identity(g) for g in ("dataset", "model", "protocol")}
        return identity.stable_hash({**setting, **self._counted_threads()})

    @cached_property
    def start_from(self) -> str | None:
        """The registered method whose trained model this cell starts from, if any."""
        return get_method(self.method_name)(self.method_options).start_from

    @cached_property
    def code_fingerprint(self) -> str:
        """Hash of the code that computes this cell (``benchmarks.cells.fingerprint``)."""
        method = get_method(self.method_name)
        roots = [
            method.__module__,
            DATASETS.entry(self.dataset["name"]).builder.__module__,
            MODELS.entry(self.model["name"]).builder.__module__,
            fingerprint.RUNNER,
        ]
        if self.start_from:  # the cell's result depends on its source model's code too
            roots.append(get_method(self.start_from).__module__)
        return fingerprint.fingerprint(tuple(roots))

    @cached_property
    def key(self) -> CellKey:
        """How the store finds this cell's runs: id, resolved options (flat, without those that
        never count) and code fingerprint."""
        exempt = {
            f"{group}.{key}"
            for group, typed in self.typed_options.items()
            for key in identity.exempt_keys(typed)
        }
        flat = {k: v for k, v in flatten(self.resolved).items() if k not in exempt}
        return CellKey(self.cell_id, flat, self.code_fingerprint)

    @property
    def method_name(self) -> str:
        return self.method["name"]

    @property
    def loss_weights(self) -> dict[str, float]:
        return dict(self.dataset.get("loss_weights") or {})

    @property
    def variant(self) -> str:
        """The method's options that differ from its registered defaults ("key=value, ...");
        the leaderboard shows them beside the method's name, so runs of one method under other
        options never share a row. The sanity ablation is reported apart."""
        changed = self._identity("method")
        return ", ".join(
            f"{key}={_shown(value)}"
            for key, value in sorted(changed.items())
            if key not in ("name", "sanity")
        )

    @property
    def label(self) -> str:
        check = self.method.get("sanity", "none")
        ablation = "" if check == "none" else f" sanity={check}"
        return f"{self.method_name}{ablation} sparsity={self.sparsity:.2f} seed={self.seed}"

    def with_method(self, method: dict[str, Any], sparsity: float) -> Cell:
        return replace(self, method=method, sparsity=sparsity)
