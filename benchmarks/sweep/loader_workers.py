"""``protocol.num_workers: auto``: each cell's DataLoader processes from the cores the job has,
resolved where the sweep runs (a SLURM job counts the CPUs it was given)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

AUTO = "auto"
# What ``auto`` means, added to the option's help (``Protocol`` takes counts only).
RESOLVED_HELP = {
    "num_workers": "auto: resolved where the sweep runs, 0 on the CPU, on a GPU the job's cores "
    "shared among the cells running at once, less one for each cell's own process"
}


def protocol_help(option: str, text: str) -> str:
    """A protocol option's help, with what the sweep resolves for it."""
    return "; ".join(filter(None, (text, RESOLVED_HELP.get(option))))


def loader_workers(device_type: str, cells_at_once: int, cores: int) -> int:
    """None on the CPU (the cells' torch threads use every core, and loader processes would
    take cores from training); on a GPU the cores shared among the cells running at once, one
    kept for each cell's own process."""
    if device_type == "cpu":
        return 0
    return max(1, cores // max(1, cells_at_once) - 1)


def with_loader_workers(protocol: dict[str, Any], cfg: DictConfig) -> dict[str, Any]:
    """``protocol`` with ``num_workers: auto`` replaced by its count for this job. The device is
    the one the sweep names, not checked here (a preset's cells expand on a machine without a
    GPU, for estimates and listings; running them there fails at start-up)."""
    if protocol.get("num_workers") != AUTO:
        return protocol
    import torch

    from benchmarks.sweep.workers import available_cores, cells_per_gpu, resolve_workers

    device = str(cfg.device)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    cells = resolve_workers(cfg.workers, device, cells_per_gpu(cfg.get("cells_per_gpu", 1)))
    count = loader_workers(device.split(":")[0], cells, available_cores())
    return {**protocol, "num_workers": count}
