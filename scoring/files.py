"""Files: reading the small JSON files a user hands the toolkit, with errors that name the file,
and writing files atomically (the one implementation of both in the project)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from scoring.errors import PGDLError


class _Rejected(ValueError):
    """A number or constant the JSON text holds but the file's format forbids."""


def _reject_constant(name: str) -> Any:
    raise _Rejected(f"{name} is not finite, and not a number JSON allows (write a finite number)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Rejected(f"the number {text[:40]}{'...' if len(text) > 40 else ''} is too large "
                        "for a float (not finite)")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Rejected(f"the key {key!r} appears twice in one object (JSON would keep only the last "
                            "value; remove the duplicate)")
        out[key] = value
    return out


def read_json(path: str | os.PathLike, what: str, *, allow_nan: bool = False, unique_keys: bool = False) -> Any:
    """Parse the JSON file `path`.

    Whatever the bytes, the result is the parsed value or one :class:`PGDLError`: besides
    syntax errors, text that is not UTF-8, nesting too deep for the parser, integers longer
    than Python converts (4,300 digits) and, unless `allow_nan`, the non-standard constants
    ``NaN``, ``Infinity``, ``-Infinity`` and numbers too large for a float (``1e400``) are
    refused. The type of each field is the caller's to check.

    Args:
        path: the file.
        what: what the file is, for messages (``"config.json"``, ``"the spec"``).
        allow_nan: keep ``NaN``/``Infinity`` and overflowing numbers as float NaN/inf (for a
            caller that reports them itself, naming the entry).
        unique_keys: refuse an object that holds a key twice (``.predict`` files and
            ``model_configs.json``, where a repeated model id would silently keep the last one).

    Raises:
        PGDLError: naming the file: it is missing, unreadable, or not valid JSON (with the
            line and column of the first syntax error).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PGDLError(f"{what} not found", path) from None
    except IsADirectoryError:
        raise PGDLError(f"{what} is a folder, not a file", path) from None
    except UnicodeDecodeError as exc:
        raise PGDLError(f"cannot read {what}: not UTF-8 text (byte {exc.start}: {exc.reason})",
                        path) from None
    except OSError as exc:
        raise PGDLError(f"cannot read {what}: {exc.strerror or exc}", path) from None
    hooks = {} if allow_nan else {"parse_constant": _reject_constant, "parse_float": _finite_float}
    if unique_keys:
        hooks["object_pairs_hook"] = _unique_keys
    try:
        return json.loads(text, **hooks)
    except json.JSONDecodeError as exc:
        raise PGDLError(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", path) from None
    except _Rejected as exc:
        raise PGDLError(f"malformed {what}: {exc}", path) from None
    except RecursionError:
        raise PGDLError(f"malformed {what}: arrays or objects nested too deeply to read", path) from None
    except ValueError as exc:  # an integer over Python's digit limit for int(str)
        raise PGDLError(f"malformed {what}: {str(exc).split(';')[0]}", path) from None


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


def check_writable(folder: str | os.PathLike, what: str = "the output folder") -> Path:
    """Create `folder` if needed and check that a file can be written in it.

    Returns:
        The folder as a Path.

    Raises:
        PGDLError: naming the folder, when it cannot be created or written to.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".pgdl-write-check-"):
            pass
    except OSError as exc:
        raise PGDLError(f"cannot write to {what}: {exc.strerror or exc}", folder) from None
    return folder


class FolderBusy(PGDLError):
    """Another process holds the folder's lock (:func:`folder_lock`); ``holder`` is its pid as the
    lock file says it ("?" when unknown)."""

    def __init__(self, message: str, path: Path, holder: str):
        super().__init__(message, path)
        self.holder = holder


_HELD: dict[str, int] = {}


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, name: str, *,
                on_wait: Callable[[Path], None] | None = None) -> Iterator[None]:
    """Hold the exclusive lock of a folder: ``flock`` on ``folder/name``, holding the holder's pid.

    The kernel releases the lock when its holder exits, killed included, so a stale lock file
    never blocks. When another process holds it: with `on_wait`, that is told (the folder) and
    the lock waited for; without, :class:`FolderBusy` is raised. A process that holds the lock
    already holds it again at once.

    Raises:
        PGDLError: the lock file cannot be created.
        FolderBusy: another process holds the lock and `on_wait` is None.
    """
    import fcntl

    path = Path(folder) / name
    key = str(path.resolve())
    if key in _HELD:
        yield
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise PGDLError(f"cannot create the folder's lock: {exc.strerror or exc}", path) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is None:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
                raise FolderBusy("another process holds the folder's lock", path, holder) from None
            on_wait(Path(folder))
            fcntl.flock(fd, fcntl.LOCK_EX)
        with contextlib.suppress(OSError):  # the lock holds without the pid
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        _HELD[key] = fd
        try:
            yield
        finally:
            del _HELD[key]
    finally:
        os.close(fd)
