"""The benchmark: entry points here, their parts in sub-packages by concern (README:
Architecture)."""

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent / "conf"  # the Hydra config groups
PROJECT_ROOT = Path(__file__).resolve().parents[1]  # README.md, results/, a git checkout
