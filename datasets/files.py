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
