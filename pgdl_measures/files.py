"""Reading the small JSON files a user hands the toolkit, with errors that name the file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pgdl_measures.errors import PGDLError


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
