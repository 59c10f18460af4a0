"""Output files written all or nothing: each is written under a temporary name beside its final
one, and only when every file is complete are they renamed into place. A leaderboard killed
midway leaves the previous files whole (and at most some hidden ``.partial`` files, removed by
the next leaderboard once their process is gone), never empty or half-new ones.

Temporary files are created by ``tempfile.mkstemp``: an unpredictable name, created exclusively
(``O_EXCL``), so a link planted at a guessed name is never followed or overwritten.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PARTIAL = ".partial"
# .<stem>.<pid>.<random><.partial><suffix>: the pid says whether its writer may still be running
LEFTOVER = re.compile(rf"^\..+\.(\d+)\.[^.]+{re.escape(PARTIAL)}(\.\w+)?$")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class StagedFiles:
    """Temporary paths to write to, renamed onto their final paths by ``commit``."""

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []
        self.mode = 0o666 & ~_umask()  # what a plain open() would have created

    def path(self, final: Path) -> Path:
        """A new, empty file to write ``final`` to for now (same folder and suffix, hidden)."""
        descriptor, name = tempfile.mkstemp(
            prefix=f".{final.stem}.{os.getpid()}.",
            suffix=f"{PARTIAL}{final.suffix}",
            dir=final.parent,
        )
        os.fchmod(descriptor, self.mode)
        os.close(descriptor)
        temporary = Path(name)
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


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete staged files in ``folder`` whose writing process is gone (killed midway)."""
    removed = []
    for path in folder.glob(f".*{PARTIAL}*"):
        match = LEFTOVER.match(path.name)
        if match and int(match.group(1)) != os.getpid() and not _running(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


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
