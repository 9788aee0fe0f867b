"""The one exception type the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations

from os import PathLike


class PhysrepError(Exception):
    """A problem with the user's input (file, config, argument) that deserves one clear line.

    `where` is the file, folder or config key at fault; the message says what is wrong with it.
    """

    def __init__(self, message: str, where: str | PathLike | None = None):
        self.where = None if where is None else str(where)
        self.message = message
        super().__init__(f"{self.where}: {message}" if self.where else message)


class DataError(PhysrepError):
    """A dataset file or folder that is missing, malformed or holds bad values."""


class ConfigError(PhysrepError):
    """A config file or `key=value` override that does not fit its dataclass."""
