"""Which code and which machine made a run: the git commit and the software and hardware
versions, recorded as tags so a number can be traced to what produced it."""

from __future__ import annotations

import contextlib
import platform
import subprocess
import sys
from pathlib import Path

from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_SOURCE_NAME, MLFLOW_SOURCE_TYPE

from benchmarks import PROJECT_ROOT
from benchmarks.tracking.schema import ENVIRONMENT_PREFIX


def _git(*args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return result.stdout.strip()


def code_version() -> str:
    """Git commit of the checkout (with ``-dirty`` for local changes), else the package version."""
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("mtl-sparse-bench")
        except PackageNotFoundError:
            return "unknown"


def source_tags() -> dict[str, str]:
    """MLflow's own source tags (the run page's "Source" and its git commit), where git knows
    the checkout."""
    tags = {MLFLOW_SOURCE_NAME: "benchmarks.run", MLFLOW_SOURCE_TYPE: "LOCAL"}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        tags[MLFLOW_GIT_COMMIT] = _git("rev-parse", "HEAD")
    return tags


def cpu_model() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


# The packages whose versions can change a result (the suite's direct dependencies).
RECORDED_PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "pandas",
    "mlflow",
    "hydra-core",
    "torch-pruning",
    "pillow",
)


def package_versions() -> str:
    """``name==version`` of ``RECORDED_PACKAGES``, comma-separated (``none`` when absent)."""
    from importlib.metadata import PackageNotFoundError, version

    def one(name: str) -> str:
        try:
            return f"{name}=={version(name)}"
        except PackageNotFoundError:
            return f"{name}==none"

    return ",".join(one(name) for name in RECORDED_PACKAGES)


def environment_tags(device: str) -> dict[str, str]:
    """Python, torch, CUDA and cuDNN versions, CPU and GPU model, torch's thread count, and the
    versions of the packages that can change a result (``env/packages``)."""
    import torch

    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else "none"
    tags = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": str(torch.version.cuda),
        "cudnn": str(torch.backends.cudnn.version()),
        "cpu": cpu_model(),
        "gpu": gpu,
        "threads": str(torch.get_num_threads()),
        "platform": platform.platform(),
        "packages": package_versions(),
    }
    return {ENVIRONMENT_PREFIX + key: value for key, value in tags.items()}
