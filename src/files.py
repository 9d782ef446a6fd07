"""Small file helpers shared by the pipeline stages."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
from pathlib import Path

from filelock import FileLock

from src.errors import DataError

# Staging folders carry host and pid: on a folder shared by cluster nodes, a pid means something
# only on its host.
_PROCESS = f"{socket.gethostname()}-{os.getpid()}"
# An output location the user must fix (permissions, read-only or full disk, a file in the way), as
# opposed to a bug: these become a one-line error naming the folder.
_USER_ERRNOS = {
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EEXIST,
    errno.ENOTDIR,
}


@contextlib.contextmanager
def atomic_directory(target: Path, key: str | None = None):
    """Yield a fresh temporary folder beside ``target`` that replaces ``target`` only on success.

    A stage killed half-way leaves its previous output (or nothing) in place, never a half-written
    folder that a later stage would take as valid. ``key`` (e.g. ``paths.prepared_dir``) is the
    setting named when the output cannot be written there.
    """
    target = Path(target)
    staging = target.with_name(f".{target.name}.tmp-{_PROCESS}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(target)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
    except OSError as error:
        raise _unwritable(target, key, error) from error
    try:
        yield staging
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        if error.errno in _USER_ERRNOS and _inside(error.filename, staging):
            raise _unwritable(target, key, error) from error
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    retired = target.with_name(f".{target.name}.old-{_PROCESS}")
    try:
        if target.exists():
            os.replace(target, retired)
        os.replace(staging, target)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        if retired.exists() and not target.exists():
            os.replace(retired, target)  # put the previous version back
        raise _unwritable(target, key, error) from error
    shutil.rmtree(retired, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: Path):
    """Yield a temporary path beside ``path`` to write; it replaces ``path`` only when the block
    succeeds."""
    path = Path(path)
    staging = path.with_name(f".{path.name}.tmp-{_PROCESS}")
    try:
        yield staging
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


# A write that failed for want of room: a full disk, a quota, a file-size limit (ulimit -f).
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def clear_dead_staging(folder: Path) -> None:
    """Remove the temporary files that killed processes of this host left in ``folder`` mid-write."""
    pattern = re.compile(r"^\..+\.tmp-(?:(?P<host>.+)-)?(?P<pid>\d+)$")
    for path in Path(folder).iterdir() if Path(folder).is_dir() else ():
        match = pattern.match(path.name)
        ours = match and path.is_file() and match["host"] in (None, socket.gethostname())
        if ours and (int(match["pid"]) == os.getpid() or not process_alive(int(match["pid"]))):
            path.unlink(missing_ok=True)


def whole_writer(save, what: str = "the snapshot"):
    """``save(obj, path, ...)`` made whole-or-absent: it writes a temporary file beside ``path`` and
    renames it into place. When the disk is full (or a file-size limit is reached) the temporary file
    is removed, the file written before stays as it was, and a :class:`DataError` says so in one line.
    A target that is not a path (an open file) is passed through unchanged."""

    def save_whole(obj, f, *args, **kwargs):
        if not isinstance(f, (str, os.PathLike)):
            return save(obj, f, *args, **kwargs)
        path = Path(f)
        staging = path.with_name(f".{path.name}.tmp-{_PROCESS}")
        try:
            # into a Python file: its OSError (no space, too large) is what the library's error comes from
            with open(staging, "wb") as file:
                save(obj, file, *args, **kwargs)
            os.replace(staging, path)
        except (OSError, RuntimeError) as error:
            staging.unlink(missing_ok=True)
            cause = error if isinstance(error, OSError) else error.__context__
            if isinstance(cause, OSError) and cause.errno in _FULL_ERRNOS:
                raise DataError(
                    f"cannot write {what} {path}: {cause.strerror}; free some space on the disk of "
                    f"{path.parent} (or raise the file-size limit, ulimit -f), then run the same "
                    "command again: it resumes from the last whole snapshot, which is kept"
                ) from error
            raise

    return save_whole


@contextlib.contextmanager
def atomic_files(target: Path):
    """Yield a temporary folder inside ``target``; on success each file written there replaces its
    namesake in ``target``.

    For output folders that also hold files of other tools (``reports/``): no file is ever seen
    half-written, and a failure leaves every previous file as it was.
    """
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    staging = target / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        for path in sorted(staging.iterdir()):
            os.replace(path, target / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def locked(path: Path):
    """Hold an exclusive lock on the file ``path`` (created if missing) while the block runs.

    Concurrent processes on this machine wait for each other; the lock (``flock``, through
    ``filelock``) goes with the process, so a killed holder never leaves it taken.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # filelock chmods its file to `mode` (default 0o644) whatever the umask: ask for what the umask
    # allows, so on a group-shared folder (umask 002) the group's users can take the lock too.
    with FileLock(path, mode=0o666 & ~_umask()):  # waits as long as it takes
        yield path


def _umask() -> int:
    """The process's umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_stale_staging(target: Path) -> list[Path]:
    """Remove ``.<name>.tmp-<host>-<pid>`` / ``.old-<host>-<pid>`` folders beside ``target`` left by
    processes of this host that died. Folders of live processes, and of other hosts (a cluster's
    shared disk), stay.
    """
    removed = []
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(tmp|old)-(?:(?P<host>.+)-)?(?P<pid>\d+)$")
    for path in target.parent.iterdir() if target.parent.is_dir() else ():
        match = pattern.match(path.name)
        if not match or match["host"] not in (None, socket.gethostname()):
            continue
        pid = int(match["pid"])
        # our own leftover from an earlier call, or a dead run's
        if pid == os.getpid() or not process_alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


# A placeholder: a folder a stage must write (DVC requires its outputs) but whose work the study
# does not need; it holds only NOT_NEEDED.txt, one line saying why (src/study/needs.py decides).
NOT_NEEDED = "NOT_NEEDED.txt"


def is_placeholder(folder: Path) -> bool:
    return (Path(folder) / NOT_NEEDED).is_file()


def placeholder_reason(folder: Path) -> str:
    return (Path(folder) / NOT_NEEDED).read_text(encoding="utf-8").strip()


def write_placeholder(folder: Path, reason: str, key: str | None = None) -> Path:
    """``folder`` as a placeholder: only ``NOT_NEEDED.txt``, one line saying why.

    Up-to-date placeholders are left as they are; so is a folder that holds real output (made
    before, e.g. by an earlier study): it is not deleted for being unneeded.
    """
    folder = Path(folder)
    text = f"not needed: {reason}\n"
    if folder.is_dir() and any(p.name != NOT_NEEDED for p in folder.iterdir()):
        return folder
    if (folder / NOT_NEEDED).is_file() and (folder / NOT_NEEDED).read_text("utf-8") == text:
        return folder
    with atomic_directory(folder, key=key) as staging:
        (staging / NOT_NEEDED).write_text(text, encoding="utf-8")
    return folder


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _inside(filename, folder: Path) -> bool:
    return filename is not None and Path(os.fsdecode(filename)).resolve().is_relative_to(
        folder.resolve()
    )


def _unwritable(target: Path, key: str | None, error: OSError):
    where = Path(os.fsdecode(error.filename)) if error.filename else target.parent
    if error.errno in (errno.EEXIST, errno.ENOTDIR):
        fix = f"{where} is a file where a folder must go; move it away"
    elif error.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = f"free some space on the disk of {target.parent}"
    else:
        fix = f"make {target.parent} writable (chmod u+w, or a folder you own)"
    setting = f" ({key})" if key else ""
    return DataError(
        f"cannot write the output {target}{setting}: {error.strerror or error} ({where}); {fix}, "
        f"or choose another folder{f' with {key}=...' if key else ''}."
    )
