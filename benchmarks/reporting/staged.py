"""Output files written all or nothing: each is written under a temporary name beside its final
one, and only when every file is complete are they renamed into place. A leaderboard killed
midway leaves the previous files whole (and at most some hidden ``.partial`` files), never
empty or half-new ones."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class StagedFiles:
    """Temporary paths to write to, renamed onto their final paths by ``commit``."""

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []

    def path(self, final: Path) -> Path:
        """Where to write ``final`` for now (same folder and suffix, hidden name)."""
        # one name per process: two sweeps ending at once write the same files side by side
        temporary = final.with_name(f".{final.stem}.{os.getpid()}.partial{final.suffix}")
        self.pending.append((temporary, final))
        return temporary

    def write_text(self, final: Path, text: str) -> None:
        self.path(final).write_text(text)

    def commit(self) -> None:
        for temporary, final in self.pending:
            os.replace(temporary, final)
        self.pending = []

    def discard(self) -> None:
        for temporary, _ in self.pending:
            temporary.unlink(missing_ok=True)
        self.pending = []


@contextmanager
def staged_files() -> Iterator[StagedFiles]:
    """Files staged inside the block, renamed into place when it ends without an error."""
    files = StagedFiles()
    try:
        yield files
    except BaseException:
        files.discard()
        raise
    files.commit()
