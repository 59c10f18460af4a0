"""One benchmark cell: (dataset, model, protocol, method, sparsity, seed) and its identity."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from methods.registry import get_method


def options(config: dict[str, Any], meta: tuple[str, ...] = ("name",)) -> dict[str, Any]:
    """A config group's options for its builder: everything but ``name`` (and other ``meta``)."""
    return {k: v for k, v in config.items() if k not in meta}


def _plain(value: Any) -> Any:
    """Lists as tuples, so a config's list equals a dataclass default's tuple."""
    return tuple(value) if isinstance(value, list) else value


def stable_hash(value: Any, length: int = 12) -> str:
    """Hash of a JSON-serialisable value, independent of key order."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


# Protocol options that change how a cell runs, not what it computes: left out of the hashes, so
# turning on checkpoints or loader workers does not make finished cells count as new ones.
EXECUTION_ONLY = ("checkpoint_every", "num_workers")


@dataclass(frozen=True)
class Cell:
    """Everything that determines a run's result. The device is not part of it (a CPU and a CUDA
    run of the same cell count as the same cell); tracking and output paths are not either."""

    dataset: dict[str, Any]
    model: dict[str, Any]
    protocol: dict[str, Any]
    method: dict[str, Any]
    sparsity: float
    seed: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "protocol": self.protocol,
            "method": self.method,
            "sparsity": self.sparsity,
            "seed": self.seed,
        }

    @property
    def method_name(self) -> str:
        return self.method["name"]

    @property
    def method_options(self) -> dict[str, Any]:
        return options(self.method)

    @property
    def model_options(self) -> dict[str, Any]:
        return options(self.model)

    @property
    def dataset_options(self) -> dict[str, Any]:
        """What the dataset builder takes (loss weights belong to training, not to loading)."""
        return options(self.dataset, ("name", "loss_weights"))

    @property
    def loss_weights(self) -> dict[str, float]:
        return dict(self.dataset.get("loss_weights") or {})

    @property
    def result_protocol(self) -> dict[str, Any]:
        """The protocol without its execution-only options."""
        return {k: v for k, v in self.protocol.items() if k not in EXECUTION_ONLY}

    @property
    def config_hash(self) -> str:
        return stable_hash(self.as_dict() | {"protocol": self.result_protocol})

    @property
    def setting_hash(self) -> str:
        """Identity of the comparison a cell belongs to: same data, model and protocol."""
        return stable_hash(
            {"dataset": self.dataset, "model": self.model, "protocol": self.result_protocol}
        )

    @property
    def variant(self) -> str:
        """The method's options that differ from its registered defaults ("key=value, ...");
        the leaderboard shows them beside the method's name, so runs of one method under other
        options never share a row. The sanity ablation is reported apart."""
        fields = dataclasses.fields(get_method(self.method_name).Hparams)
        defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
        changed = [
            f"{key}={value}"
            for key, value in sorted(self.method_options.items())
            if key != "sanity" and key in defaults and _plain(value) != _plain(defaults[key])
        ]
        return ", ".join(changed)

    @property
    def label(self) -> str:
        check = self.method.get("sanity", "none")
        ablation = "" if check == "none" else f" sanity={check}"
        return f"{self.method_name}{ablation} sparsity={self.sparsity:.2f} seed={self.seed}"

    def with_method(self, method: dict[str, Any], sparsity: float) -> Cell:
        return replace(self, method=method, sparsity=sparsity)
