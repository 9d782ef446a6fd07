"""Errors a user can fix, and how entry points show them: one line, exit status 2."""

from __future__ import annotations

import contextlib
import logging
import sys

from omegaconf.errors import MissingMandatoryValue

log = logging.getLogger(__name__)


class DataError(ValueError):
    """Bad input data. The message names the file or key at fault and how to fix it."""


@contextlib.contextmanager
def exit_on_data_error():
    """In an entry point: show a DataError as one clear line and exit with status 2, no traceback."""
    try:
        yield
    except DataError as error:
        print(
            f"error: {' '.join(str(error).splitlines())}", file=sys.stderr
        )  # one line, whatever a library said
        sys.exit(2)
    except MissingMandatoryValue as error:  # a required key left at ??? in conf/, e.g. data.root
        print(
            f"error: {error.full_key} is required but not set (???); give it on the command line, "
            f"{error.full_key}=...",
            file=sys.stderr,
        )
        sys.exit(2)


class ConfigError(DataError):
    """A configuration value outside what the pipeline accepts. Names the key and the allowed values."""
