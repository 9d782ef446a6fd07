"""src/files.py: the lock file follows the umask, so a group-shared folder stays lockable by the group."""

import os
import stat

import pytest

from src.files import locked


@pytest.mark.parametrize("umask, expected", [(0o002, 0o664), (0o022, 0o644), (0o077, 0o600)])
def test_lock_file_mode_follows_umask(tmp_path, umask, expected):
    previous = os.umask(umask)
    try:
        with locked(tmp_path / "shared" / "study.lock") as path:
            mode = stat.S_IMODE(path.stat().st_mode)
    finally:
        os.umask(previous)
    assert mode == expected
