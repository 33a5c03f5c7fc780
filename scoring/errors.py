"""The one exception type for errors a user can cause."""

from __future__ import annotations

import os


class PGDLError(Exception):
    """An error caused by user input: a missing or malformed file, an unknown layer, ...

    The message names the file (when there is one) and what is wrong, so the CLI can print it
    without a traceback and exit with status 2.

    Args:
        message: what is wrong and, where possible, how to fix it.
        path: the file or folder at fault, if any; it is prefixed to the message.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        self.problem = message
        super().__init__(f"{self.path}: {message}" if self.path else message)
