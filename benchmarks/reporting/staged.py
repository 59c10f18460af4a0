"""Output files written all or nothing.

``staged_files``: each file is written under a temporary name beside its final one, and only
when every file is complete are they renamed into place (one file, as the export writes, is
replaced in one step). ``new_generation``: a whole folder of files (the leaderboard's) is
written into a hard-linked copy of the folder, and the copy takes the folder's place in one
step, so a reader sees every old file or every new one, never a mix of two generations. Either
killed midway leaves the previous files whole; hidden leftovers are removed by the next writer
once their process is gone.

Temporary files and folders are created by ``tempfile.mkstemp``/``mkdtemp``: unpredictable
names, created exclusively (``O_EXCL``), so a link planted at a guessed name is never followed
or overwritten.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import re
import shutil
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


NEXT, PREVIOUS = ".next", ".previous"  # a generation being written; one being swapped out
AT_FDCWD, RENAME_EXCHANGE = -100, 2  # Linux renameat2(2)


def _generation_pid(path: Path, name: str) -> int | None:
    """The writer's pid of a leftover generation folder ``.<name>.<pid>.<random><suffix>``."""
    match = re.match(rf"^\.{re.escape(name)}\.(\d+)\.[^.]+({NEXT}|{PREVIOUS})$", path.name)
    return int(match.group(1)) if match else None


def remove_leftover_generations(folder: Path) -> None:
    """Generation folders of writers killed midway: a swapped-out previous one whose new one
    never arrived is put back (a writer killed between two renames), others are deleted."""
    for path in sorted(folder.parent.glob(f".{folder.name}.*")):
        pid = _generation_pid(path, folder.name)
        if pid is None or pid == os.getpid() or _running(pid) or not path.is_dir():
            continue
        if path.name.endswith(PREVIOUS) and not folder.exists():
            path.rename(folder)
        else:
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _parent_locked(folder: Path) -> Iterator[None]:
    """One generation writer of ``folder`` at a time (a lock on its parent directory)."""
    descriptor = os.open(folder.parent, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    system or the file system has no such call."""
    call = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if call is None:
        return False
    if call(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _put_in_place(staging: Path, folder: Path) -> None:
    """``staging`` becomes ``folder``; the old generation ends up at ``staging``'s path."""
    if not folder.exists():
        staging.rename(folder)
    elif not _exchange(staging, folder):  # two renames: briefly no folder, never a mix
        previous = staging.with_name(staging.name.removesuffix(NEXT) + PREVIOUS)
        folder.rename(previous)
        staging.rename(folder)
        previous.rename(staging)


@contextmanager
def new_generation(folder: Path) -> Iterator[tuple[Path, StagedFiles]]:
    """``(staging, files)``: write the next generation of ``folder``'s files as
    ``files.write_text(staging / name, ...)`` or into ``files.path(staging / name)``. ``staging``
    starts as a copy of ``folder`` made of hard links (files this generation does not rewrite
    stay, at no cost; rewritten ones are replaced, never written through a link). When the block
    ends without an error, ``staging`` takes ``folder``'s place in one step; on an error nothing
    changes. A folder that holds the working directory is not swapped (that would move the
    directory out from under the process), nor one whose parent cannot be written (no room for
    the copy beside it): their files are replaced one by one instead."""
    folder = folder.resolve()
    if Path.cwd().is_relative_to(folder) or not os.access(folder.parent, os.W_OK):
        with staged_files() as files:
            yield folder, files
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _parent_locked(folder):
        remove_leftover_generations(folder)
        staging = Path(
            tempfile.mkdtemp(
                prefix=f".{folder.name}.{os.getpid()}.", suffix=NEXT, dir=folder.parent
            )
        )
        try:
            if folder.exists():
                shutil.copytree(
                    folder,
                    staging,
                    symlinks=True,
                    copy_function=os.link,
                    dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(f".*{PARTIAL}*"),
                )
            else:
                staging.chmod(0o777 & ~_umask())
            with staged_files() as files:
                yield staging, files
            _put_in_place(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # after a swap: the old generation
