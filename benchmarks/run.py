"""``python -m benchmarks.run [overrides]``: the sweep (Hydra app; ``--help`` lists options)."""

from __future__ import annotations

import sys

from benchmarks.sweep.requeue import preempt_with_sigterm, sigterm_stops_the_sweep

preempt_with_sigterm()  # before Hydra's submitit launcher imports submitit

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from benchmarks.sweep.main import sweep

    with sigterm_stops_the_sweep():
        sweep(cfg)


if __name__ == "__main__":
    from benchmarks.cells.config_files import with_plugin_configs
    from benchmarks.sweep.overrides import check_command_line

    sys.argv[1:] = with_plugin_configs(sys.argv[1:])
    check_command_line(sys.argv[1:])
    main()
