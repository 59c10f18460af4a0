"""Reading dataset files with errors that name the file and the expected layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


class DatasetError(ValueError):
    """Bad or missing data on disk; the message names the path and what was expected."""


def require_dir(path: str | Path | None, option: str, layout: str) -> Path:
    if path is None or str(path) == "":
        raise DatasetError(f"{option} is not set: pass {option}=/path/to/data ({layout})")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DatasetError(
            f"{option}={folder} does not exist or is not a folder; expected {layout}"
        )
    return folder


def read_png(path: Path) -> np.ndarray:
    """Pixels of an image file as stored (uint8 or uint16; RGB or single channel)."""
    if not path.is_file():
        raise DatasetError(f"missing file {path}")
    try:
        with Image.open(path) as image:
            return np.array(image)
    except (OSError, ValueError) as error:
        raise DatasetError(f"cannot read image {path}: {error}") from error


def read_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"missing file {path}")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DatasetError(f"cannot read array {path}: {error}") from error


def read_array(path: Path) -> np.ndarray:
    """``.npy`` or an image file, by extension."""
    return read_npy(path) if path.suffix == ".npy" else read_png(path)


def resolve_layout(
    root: Path, requested: str, layouts: dict[str, tuple[str, str]], what: str
) -> str:
    """The layout to read: ``requested``, or with ``auto`` the first whose marker (a file or
    folder under ``root``) exists. ``layouts``: name -> (marker, description)."""
    if requested != "auto":
        if requested not in layouts:
            raise DatasetError(f"dataset.layout={requested!r}; choose auto, {', '.join(layouts)}")
        return requested
    for name, (marker, _) in layouts.items():
        if (root / marker).exists():
            return name
    expected = "; or ".join(f"{name}: {description}" for name, (_, description) in layouts.items())
    raise DatasetError(f"dataset.root={root} holds no known {what} layout; expected {expected}")


def numbered_ids(folder: Path, suffix: str = ".npy") -> list[str]:
    """File stems in ``folder`` in numeric order (``2`` before ``10``)."""
    return sorted((p.stem for p in folder.glob(f"*{suffix}")), key=lambda s: (len(s), s))
