"""A cohort config as a plain dict, and the independent random stream of each of its parts."""

from __future__ import annotations

import zlib

import numpy as np
from omegaconf import DictConfig, OmegaConf


class Settings(dict):
    """A cohort config as a plain dict with attribute access (OmegaConf nodes are slow in inner
    loops)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def settings(cfg) -> Settings:
    """Plain, resolved copy of a cohort config (DictConfig or dict)."""
    if isinstance(cfg, Settings):
        return cfg
    return Settings(
        OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    )


def stream(cfg, *keys: int) -> np.random.Generator:
    """Independent random stream per cohort/participant/video/purpose: adding a participant changes
    no other."""
    return np.random.default_rng([int(cfg.seed), zlib.crc32(str(cfg.name).encode()), *keys])
