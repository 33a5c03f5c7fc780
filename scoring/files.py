"""Files: reading the small JSON files a user hands the toolkit, with errors that name the file,
and writing files atomically (the one implementation of both in the project)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from scoring.errors import PGDLError


def read_json(path: str | os.PathLike, what: str) -> Any:
    """Parse the JSON file `path`.

    Args:
        path: the file.
        what: what the file is, for messages (``"config.json"``, ``"the spec"``).

    Raises:
        PGDLError: naming the file: it is missing, unreadable, or not valid JSON (with the
            line and column of the first error).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PGDLError(f"{what} not found", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PGDLError(f"cannot read {what}: {getattr(exc, 'strerror', None) or exc}", path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PGDLError(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", path) from None


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write `data` to `path` so that a reader sees the old file or the new one, never a part.

    The bytes (a str is written as UTF-8) go to a temporary file beside `path`
    (``.<name>.<pid>.tmp``, so two processes never share one), are flushed to disk, and the
    temporary file replaces `path`; on any failure it is removed and `path` is left as it was.
    The folder is created when missing.

    Raises:
        OSError: the folder or file cannot be written.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
