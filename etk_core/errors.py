"""Errors a user can cause: each carries one line saying what, where and how to fix."""

from __future__ import annotations


class EtkError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits with `exit_code`."""

    exit_code = 2


class ConfigError(EtkError):
    """A bad configuration key or value."""


class DataError(EtkError):
    """Malformed input data; the message names the file and line or row."""


class UnknownComponentError(EtkError):
    """A name that no installed plugin registers."""


class DuplicateComponentError(EtkError):
    """Two plugins register the same component name."""


class ArtifactError(EtkError):
    """A run folder or model artifact that is missing or incomplete."""


class DamagedFileError(EtkError):
    """A file etk wrote earlier (checkpoint, artifact, record) that is truncated, garbled or fails its digest:
    the input is not the user's typing but what is on disk, so it has its own exit code."""

    exit_code = 3
