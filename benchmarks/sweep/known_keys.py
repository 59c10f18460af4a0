"""Top-level options, and those of ``sweep``, ``leaderboard`` and ``tracking``, checked by name:
Hydra accepts any key forced with ``+``/``++`` and nothing would read a misspelt one, so
``+sparsty=0.5`` would silently run every sparsity. The groups that are read into typed options
(dataset, model, protocol, method) name their unknown options themselves."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from omegaconf import DictConfig, OmegaConf

from benchmarks import CONF_DIR

GROUPS = ("dataset", "model", "method", "protocol", "tracking", "experiment")
SECTIONS = ("sweep", "leaderboard")  # nested sections of config.yaml itself


def _known() -> dict[str, set[str]]:
    """Known keys at the top (``""``) and in each checked section."""
    root = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "config.yaml"))
    assert isinstance(root, dict)
    tracking = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "tracking" / "mlflow.yaml"))
    assert isinstance(tracking, dict)
    known = {"": (set(root) - {"defaults"}) | set(GROUPS)}
    known |= {section: set(root[section]) for section in SECTIONS}
    known["tracking"] = set(tracking)
    return known


def _unknown(keys: Iterable[str], known: set[str], where: str) -> list[str]:
    messages = []
    for key in sorted(set(keys) - known):
        close = difflib.get_close_matches(key, sorted(known), n=2)
        hint = f" (did you mean {' or '.join(where + c for c in close)}?)" if close else ""
        messages.append(f"{where}{key}{hint}")
    return messages


def check_known_keys(cfg: DictConfig) -> None:
    """Raise ``ValueError`` naming every unknown key and the close valid ones."""
    known = _known()
    problems = _unknown((str(k) for k in cfg), known[""], "")
    for section in (*SECTIONS, "tracking"):
        values = cfg.get(section)
        if isinstance(values, Mapping | DictConfig):
            problems += _unknown((str(k) for k in values), known[section], f"{section}.")
    if problems:
        raise ValueError(
            f"unknown option(s) {', '.join(problems)}; `python -m benchmarks.run --help` lists "
            "every option"
        )
