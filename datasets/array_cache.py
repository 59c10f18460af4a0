"""A file dataset's raw arrays, read from their files once and kept in memory-mapped ``.npy``
files, so an epoch reads arrays instead of decoding PNGs again (on NYUv2, about half of the
loader's CPU time per image).

What is cached is exactly what ``read_array`` returns for each file (the stored pixels, before
any decoder), one ``[samples, ...]`` array per field: the decoders then run on the very arrays
the files hold, so a cached dataset yields the same tensors as one that reads its files. A
field whose samples differ in shape or dtype is not cached (its files are read as before).

Each field keeps the size and modification time of every source file beside its array; when
the dataset is opened, a file whose size or time changed is read again into its row, so the
cache is never silently stale. One process at a time builds or refreshes a cache (a file lock);
the arrays are opened read-only, lazily, in each process that reads them (DataLoader workers
included), so nothing large is pickled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.file_lock import exclusive
from datasets.files import read_array

log = logging.getLogger(__name__)
FORMAT = 1


def _stats(paths: Sequence[Path]) -> list[list[int]]:
    return [[(s := p.stat()).st_size, s.st_mtime_ns] for p in paths]


class ArrayCache:
    """The raw arrays of ``fields`` of ``paths`` (one list of files per field, row i being
    sample i), under ``root`` in a folder named after those files."""

    def __init__(self, root: Path, paths: dict[str, list[Path]]):
        listing = json.dumps({f: [str(p) for p in ps] for f, ps in sorted(paths.items())})
        self.folder = Path(root) / hashlib.sha256(listing.encode()).hexdigest()[:16]
        self.paths = paths
        self.cached: set[str] = set()  # fields with a complete array
        self._open: dict[str, np.ndarray] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_open": {}}  # DataLoader workers open their own maps

    def prepare(self) -> ArrayCache:
        """Build the arrays, or read again the files that changed since they were built."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with exclusive(self.folder / ".lock"):
            for field, paths in self.paths.items():
                if self._prepare(field, paths):
                    self.cached.add(field)
        return self

    def _prepare(self, field: str, paths: list[Path]) -> bool:
        data, manifest = self.folder / f"{field}.npy", self.folder / f"{field}.json"
        stats = _stats(paths)
        known = json.loads(manifest.read_text()) if manifest.is_file() else {}
        if known.get("format") != FORMAT or not data.is_file():
            known = {}
        if known.get("uncached"):
            return False
        if known and known["stats"] == stats:
            return True
        if known:
            rows = [
                i
                for i, (now, then) in enumerate(zip(stats, known["stats"], strict=True))
                if now != then
            ]
            array = np.load(data, mmap_mode="r+")
            log.info(
                "array cache %s: %d changed %s file(s) read again", self.folder, len(rows), field
            )
        else:
            first = read_array(paths[0])
            rows = list(range(len(paths)))
            array = np.lib.format.open_memmap(
                data, mode="w+", dtype=first.dtype, shape=(len(paths), *first.shape)
            )
            log.info("array cache %s: reading %d %s files once", self.folder, len(paths), field)
        for row in rows:
            raw = read_array(paths[row])
            if raw.shape != array.shape[1:] or raw.dtype != array.dtype:
                del array
                data.unlink()
                self._write_manifest(manifest, {"format": FORMAT, "uncached": True})
                return False
            array[row] = raw
        array.flush()
        del array
        self._write_manifest(manifest, {"format": FORMAT, "stats": stats})
        return True

    @staticmethod
    def _write_manifest(path: Path, content: dict) -> None:
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(content))
        os.replace(partial, path)

    def read(self, field: str, row: int, copy: bool = True) -> np.ndarray | None:
        """Row ``row`` of ``field`` (a copy, or the read-only map itself: a reader that takes a
        few pixels reads only those pages), or None when the field is not cached."""
        if field not in self.cached:
            return None
        if field not in self._open:
            self._open[field] = np.load(self.folder / f"{field}.npy", mmap_mode="r")
        return np.array(self._open[field][row]) if copy else self._open[field][row]
