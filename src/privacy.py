"""Pseudonyms for participant and video identifiers in everything that leaves the data folder.

Clinical video names often carry a patient's name, initials or record number. Whatever is logged to
MLflow or written to a report names videos and participants only by a keyed pseudonym
(``video-3f9a02c1``, ``participant-81b4d7e0``): an HMAC-SHA256 of the identifier under a secret
key that is made once and kept in ``privacy.key_dir`` (inside the data folder, git-ignored, never
logged). The same key gives the same pseudonym in every run, so runs stay comparable;
``pseudonyms.csv`` beside the key maps pseudonyms back to identifiers for the people allowed to
read the data folder.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from hashlib import sha256
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from src.files import atomic_file, locked

KEY_FILE = "pseudonym.key"
MAPPING_FILE = "pseudonyms.csv"
MAPPING_COLUMNS = ["kind", "pseudonym", "identifier"]


class Pseudonyms:
    """Maps identifiers to pseudonyms.

    ``enabled=False`` (``privacy.pseudonymise: false``) keeps identifiers as they are.
    """

    def __init__(self, key_dir: Path, enabled: bool = True) -> None:
        self.key_dir = Path(key_dir)
        self.enabled = enabled
        self._key = _load_or_create_key(self.key_dir / KEY_FILE) if enabled else b""
        self._new: dict[tuple[str, str], str] = {}

    def __call__(self, identifier: str, kind: str = "video") -> str:
        """The pseudonym of ``identifier`` (kind: video | participant | session ...)."""
        if not self.enabled:
            return str(identifier)
        code = hmac.new(self._key, f"{kind}:{identifier}".encode(), sha256).hexdigest()[:8]
        pseudonym = f"{kind}-{code}"
        self._new[(kind, pseudonym)] = str(identifier)
        return pseudonym

    def table(self, frame: pd.DataFrame, columns: dict[str, str] | None = None) -> pd.DataFrame:
        """A copy of ``frame`` with its identifier columns pseudonymised (column -> kind).

        By default the columns ``video``, ``participant`` and ``session`` (often a recording date)
        are replaced, where present.
        """
        columns = columns or {"video": "video", "participant": "participant", "session": "session"}
        frame = frame.copy()
        for column, kind in columns.items():
            if column in frame:
                frame[column] = [self(value, kind) for value in frame[column].astype(str)]
        return frame

    def save(self) -> Path | None:
        """Add the pseudonyms handed out so far to ``pseudonyms.csv``.

        The file is locked while it is rewritten: concurrent runs lose nothing.
        """
        if not self.enabled or not self._new:
            return None
        path = self.key_dir / MAPPING_FILE
        with locked(self.key_dir / f".{MAPPING_FILE}.lock"):
            known = (
                pd.read_csv(path, dtype=str)
                if path.is_file()
                else pd.DataFrame(columns=MAPPING_COLUMNS)
            )
            new = pd.DataFrame(
                [(k, p, i) for (k, p), i in self._new.items()], columns=MAPPING_COLUMNS
            )
            merged = (
                pd.concat([known, new])
                .drop_duplicates(["kind", "pseudonym"])
                .sort_values(["kind", "identifier"])
            )
            with atomic_file(path) as staging:
                merged.to_csv(staging, index=False)
        self._new.clear()
        return path


def from_config(cfg: DictConfig) -> Pseudonyms:
    """The pseudonyms of the configured data folder (privacy.key_dir, privacy.pseudonymise)."""
    return Pseudonyms(Path(str(cfg.privacy.key_dir)), bool(cfg.privacy.pseudonymise))


def _load_or_create_key(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: two runs starting at once agree on one key
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it this very moment
            key = path.read_text(encoding="ascii").strip()
            if key:
                return bytes.fromhex(key)
            time.sleep(0.1)
        raise RuntimeError(
            f"{path} is empty; delete it to make a new key (pseudonyms then change)"
        ) from None
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text(encoding="ascii").strip())
