"""Resumable, verified HTTP download of one file, with progress reported to a callback object.

:func:`download_file` writes to ``<file>.part`` and renames it only once complete and verified;
a later call resumes it with an HTTP ``Range`` request (a server that answers ``200`` instead of
``206`` restarts it, ``416`` means the part is already complete or stale). The size and
SHA-256 are checked when known. Progress goes to a :class:`TransferProgress` (this module
draws nothing; ``pgdl data download`` passes one that draws rich bars on stderr).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pgdl_measures import __version__
from pgdl_measures.errors import PGDLError

logger = logging.getLogger(__name__)

#: where the competition's archives are (``pgdl data download --url`` and this variable change it)
DEFAULT_BASE_URL = "http://storage.googleapis.com/gresearch/pgdl"
BASE_URL_ENV = "PGDL_DATA_URL"
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class FileDownload:
    """What :func:`download_file` did.

    Attributes:
        path: the complete, verified file.
        size: its size in bytes.
        sha256: its SHA-256 hex digest (``None`` when an existing file was kept unchecked).
        downloaded: ``False`` when the file was already there and nothing was fetched.
    """

    path: Path
    size: int
    sha256: str | None
    downloaded: bool


def check_url(url: str) -> None:
    """Refuse what is not an ``http://`` or ``https://`` URL with a host.

    Raises:
        PGDLError: naming the URL (given with ``--url`` or ``$PGDL_DATA_URL``).
    """
    import urllib.parse

    try:
        parts = urllib.parse.urlsplit(url)
        ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an invalid IPv6 host or port
        ok = False
    if not ok:
        raise PGDLError(f"{url!r} is not a URL: --url / ${BASE_URL_ENV} takes an http:// or "
                        f"https:// address, e.g. {DEFAULT_BASE_URL}")


class _Retry(Exception):
    """A failed attempt worth retrying (connection lost, timeout, server error)."""


def download_file(
    url: str,
    path: str | os.PathLike,
    *,
    size: int | None = None,
    sha256: str | None = None,
    progress: TransferProgress | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 1.0,
) -> FileDownload:
    """Download ``url`` to ``path`` through ``path.part``, resuming and verifying it.

    An existing ``path`` is kept (and checked against ``size``/``sha256`` when given); an
    existing ``path.part`` is resumed with a ``Range`` request. The part file is renamed to
    ``path`` only when its size matches what the server announced (and ``size``) and its
    SHA-256 matches ``sha256``; a checksum mismatch deletes it.

    Args:
        url: the file's ``http(s)://`` URL.
        path: where the complete file goes.
        size: its exact size in bytes, if known.
        sha256: its SHA-256 hex digest, if known.
        progress: told the bytes received (nothing is shown by default).
        retries: failed requests in a row (that bring no new data) tolerated before giving up;
            requests that make progress do not count, so the loop always ends.
        timeout: socket timeout in seconds.
        backoff: seconds to sleep after a failure, doubled after each further one (max 60).

    Returns:
        a :class:`FileDownload`.

    Raises:
        PGDLError: the server refuses the file, the network keeps failing, the size or
            checksum does not match, or the disk is too small.
    """
    path = Path(path)
    check_url(url)
    expected_sha = _normalise_sha256(sha256)
    if path.is_file():
        digest = verify_file(path, size=size, sha256=expected_sha, progress=progress)
        return FileDownload(path, path.stat().st_size, digest, downloaded=False)
    part = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)

    with _phase(progress, path.name, size) as bar:
        state = _PartState(part)
        failures = 0
        high_water = state.offset
        while True:
            try:
                total = _fetch_once(url, state, size, timeout, bar)
                break
            except _Retry as exc:
                if state.offset > high_water:
                    high_water, failures = state.offset, 0
                else:
                    failures += 1
                if failures > retries:
                    raise PGDLError(
                        f"download of {url} failed after {failures} attempt(s) without progress "
                        f"({exc}); run the command again to resume from {state.offset} bytes",
                        part) from None
                wait = min(backoff * 2 ** max(failures - 1, 0), 60.0)
                bar.note(f"{url}: {exc}; retrying from byte {state.offset}"
                      + (f" in {wait:.0f} s" if wait >= 1 else ""))
                time.sleep(wait)

    digest = state.hexdigest()
    got = part.stat().st_size
    for wanted, what in ((total, "the server announced"), (size, "expected")):
        if wanted is not None and got != wanted:
            part.unlink()
            raise PGDLError(f"downloaded {got} bytes but {what} {wanted}; the partial file was "
                            f"removed, run the command again", path)
    if expected_sha is not None and digest != expected_sha:
        part.unlink()
        raise PGDLError(f"SHA-256 mismatch for {url}: got {digest}, expected {expected_sha}; the "
                        f"download was removed (a corrupted transfer or a different file: check "
                        f"--sha256 and --url)", path)
    # Not scoring.files.atomic_write: the download streams to a resumable .part file (gigabytes,
    # never held in memory), which is renamed once its size and SHA-256 are checked.
    os.replace(part, path)
    return FileDownload(path, got, digest, downloaded=True)


class _PartState:
    """The ``.part`` file being written and a running SHA-256 of its bytes."""

    def __init__(self, part: Path):
        self.part = part
        self.offset = part.stat().st_size if part.is_file() else 0
        self._hash = hashlib.sha256()
        self._hashed = 0  # bytes of the part file covered by self._hash

    def restart(self):
        """Discard the part file and start from byte 0."""
        self.part.unlink(missing_ok=True)
        self.offset = 0
        self._hash, self._hashed = hashlib.sha256(), 0

    def catch_up(self):
        """Hash the bytes already on disk (after resuming a part left by an earlier run)."""
        if self._hashed == self.offset:
            return
        self._hash, self._hashed = hashlib.sha256(), 0
        with open(self.part, "rb") as f:
            while self._hashed < self.offset:
                block = f.read(min(CHUNK_BYTES, self.offset - self._hashed))
                if not block:
                    break
                self._hash.update(block)
                self._hashed += len(block)

    def append(self, f, block: bytes):
        f.write(block)
        self._hash.update(block)
        self.offset += len(block)
        self._hashed += len(block)

    def hexdigest(self) -> str:
        self.catch_up()
        return self._hash.hexdigest()


def _fetch_once(url, state: _PartState, size, timeout, bar: TransferProgress) -> int | None:
    """One HTTP request appending to the part file; returns the file's total size if known.

    Raises _Retry for transient failures and PGDLError for permanent ones.
    """
    headers = {"User-Agent": f"pgdl-toolkit/{__version__}", "Accept-Encoding": "identity"}
    if state.offset:
        headers["Range"] = f"bytes={state.offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and state.offset:
            total = _content_range_total(exc.headers.get("Content-Range"))
            if total is None:
                total = size
            if total is not None and total == state.offset:
                bar.update(total=total, completed=total)
                return total  # the part file is already complete
            stale = state.offset
            state.restart()
            raise _Retry(f"server refused resuming at byte {stale} (HTTP 416)") from None
        if exc.code in (408, 429) or exc.code >= 500:
            raise _Retry(f"HTTP {exc.code} {exc.reason}") from None
        raise PGDLError(f"the server answered HTTP {exc.code} {exc.reason} for {url}; check the "
                        f"archive name and --url / ${BASE_URL_ENV}") from None
    except urllib.error.URLError as exc:
        raise _Retry(f"cannot reach the server: {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Retry(f"connection failed: {exc or type(exc).__name__}") from None

    with response:
        status = response.status
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != state.offset:
                asked = state.offset
                state.restart()
                raise _Retry(f"server resumed at byte {start}, not {asked}")
            if total is None and length is not None:
                total = state.offset + length
        elif status == 200:
            if state.offset:
                state.restart()  # the server ignored Range: start again from the beginning
            total = length
        else:
            raise PGDLError(f"unexpected HTTP status {status} for {url}")
        if size is not None and total is not None and total != size:
            raise PGDLError(f"the server's file at {url} has {total} bytes, expected {size}; "
                            f"check --url", state.part)
        _check_free_space(state.part.parent, (total or 0) - state.offset)
        if state.offset:  # hash what an earlier run left, so the final check needs no re-read
            bar.update(description=f"checking {state.part.name}")
            state.catch_up()
            bar.update(description=state.part.name.removesuffix(".part"))
        bar.update(total=total, completed=state.offset)
        mode = "ab" if state.offset else "wb"
        with open(state.part, mode) as f:
            while total is None or state.offset < total:
                want = CHUNK_BYTES if total is None else min(CHUNK_BYTES, total - state.offset)
                try:
                    block = response.read(want)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Retry(f"connection lost: {exc or type(exc).__name__}") from None
                if not block:
                    break
                state.append(f, block)
                bar.update(completed=state.offset)
        if total is not None and state.offset < total:
            raise _Retry(f"connection closed after {state.offset} of {total} bytes")
        return total


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """Parse ``bytes START-END/TOTAL`` into (START, TOTAL); TOTAL may be ``*``."""
    try:
        _unit, spec = value.strip().split(" ", 1)
        span, total = spec.split("/", 1)
        start = int(span.split("-", 1)[0])
        return start, (None if total.strip() == "*" else int(total))
    except (AttributeError, ValueError):
        return None, None


def _content_range_total(value: str | None) -> int | None:
    """Parse the total of ``bytes */TOTAL`` (a 416 answer)."""
    try:
        return int(value.rsplit("/", 1)[1])
    except (AttributeError, IndexError, ValueError):
        return None


def verify_file(
    path: str | os.PathLike,
    *,
    size: int | None = None,
    sha256: str | None = None,
    progress: TransferProgress | None = None,
) -> str | None:
    """Check a file's size and SHA-256.

    Args:
        path: the file.
        size: its expected size in bytes, or ``None`` to skip the check.
        sha256: its expected SHA-256 hex digest, or ``None`` to skip hashing.
        progress: told the bytes hashed (nothing is shown by default).

    Returns:
        the file's SHA-256 hex digest when ``sha256`` was given, else ``None``.

    Raises:
        PGDLError: the size or digest differs (the file is left alone).
    """
    path = Path(path)
    got = path.stat().st_size
    if size is not None and got != size:
        raise PGDLError(f"has {got} bytes, expected {size}; delete it to download it again", path)
    expected = _normalise_sha256(sha256)
    if expected is None:
        return None
    digest = hashlib.sha256()
    with _phase(progress, f"checking {path.name}", got) as bar, open(path, "rb") as f:
        while block := f.read(CHUNK_BYTES):
            digest.update(block)
            bar.advance(len(block))
    if digest.hexdigest() != expected:
        raise PGDLError(f"SHA-256 is {digest.hexdigest()}, expected {expected}; delete it to "
                        f"download it again (or check --sha256)", path)
    return expected


def _normalise_sha256(sha256: str | None) -> str | None:
    if sha256 is None or not sha256.strip():
        return None
    value = sha256.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise PGDLError(f"{sha256!r} is not a SHA-256 hex digest (64 hexadecimal characters)")
    return value


def _check_free_space(folder: Path, needed: int):
    if needed <= 0:
        return
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise PGDLError(f"needs {_human(needed)} of free disk space but only {_human(free)} is "
                        f"left; choose another --out", folder)


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} TB"


class TransferProgress:
    """Progress callbacks of a download, a checksum or an unpacking; this base class ignores them
    (and logs :meth:`note` as a warning).

    Each step (downloading a file, hashing it, unpacking an archive) is one phase:
    :meth:`start`, then :meth:`update` / :meth:`advance`, then :meth:`stop`. Amounts are bytes.
    """

    def start(self, description: str, total: int | None) -> None:
        """A phase starts: `description` (e.g. the file's name), `total` bytes (None: unknown)."""

    def update(self, *, completed: int | None = None, total: int | None = None,
               description: str | None = None) -> None:
        """The bytes done so far, a newly known total, or a new description."""

    def advance(self, amount: int) -> None:
        """`amount` more bytes done."""

    def stop(self) -> None:
        """The phase ended (normally or not)."""

    def note(self, message: str) -> None:
        """Something worth telling the user (a retry and why)."""
        logger.warning(message)


@contextmanager
def _phase(progress: TransferProgress | None, description: str, total: int | None) -> Iterator[TransferProgress]:
    progress = progress or TransferProgress()  # None (or False, as before): report nothing
    progress.start(description, total)
    try:
        yield progress
    finally:
        progress.stop()
