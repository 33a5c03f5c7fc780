"""Download and unpack the PGDL competition's data archives.

The NeurIPS 2020 "Predicting Generalization in Deep Learning" competition published three zip
archives under ``http://storage.googleapis.com/gresearch/pgdl/<name>_data.zip``:

========== ========= ==============================================
name       size      what
========== ========= ==============================================
public     ~8.8 GB   the public tasks (1, 2, 4, 5, 6, 7, 8, 9)
phase_one  ~2.5 GB   the tasks of the first (development) phase
phase_two  ~9.0 GB   the tasks of the final phase
========== ========= ==============================================

:func:`download_data` fetches one of them into ``DEST/<name>_data.zip`` and unpacks it so that
``DEST/<name>/input_data/<task>/`` and ``DEST/<name>/reference_data/<task>/`` exist, whatever
folder the archive wraps them in. It is safe to interrupt and to run again:

* the download goes to ``<archive>.part`` and is renamed only once complete and verified; a
  later call resumes it with an HTTP ``Range`` request (a server that answers ``200`` instead of
  ``206`` restarts it, ``416`` means the part is already complete or stale);
* the size and SHA-256 are checked when known (``size=``/``sha256=``, ``--sha256``);
* the archive is validated entry by entry before anything is extracted: absolute paths, ``..``
  components, links and special files refuse the whole archive; extraction goes to a temporary
  folder inside ``DEST`` that is renamed into place only when complete;
* an archive already downloaded, or a folder already unpacked, is not fetched again.

The base URL can be changed for a mirror (or a test server) with ``base_url=``, ``--url`` or the
environment variable ``PGDL_DATA_URL``.

Progress is reported to a :class:`TransferProgress` (the functions draw nothing themselves;
``pgdl data download`` passes one that draws rich bars on stderr).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import stat
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pgdl_measures import __version__
from pgdl_measures.errors import PGDLError

__all__ = [
    "ARCHIVES",
    "DEFAULT_BASE_URL",
    "ArchiveInfo",
    "DataDownload",
    "FileDownload",
    "TransferProgress",
    "archive_url",
    "check_archive",
    "check_url",
    "describe",
    "download_data",
    "download_file",
    "extract_archive",
    "find_data_root",
    "verify_file",
]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://storage.googleapis.com/gresearch/pgdl"
BASE_URL_ENV = "PGDL_DATA_URL"
CHUNK_BYTES = 1 << 20
DATA_FOLDERS = ("input_data", "reference_data")


@dataclass(frozen=True)
class ArchiveInfo:
    """One of the competition's data archives.

    Attributes:
        name: the short name used on the command line (``public``, ``phase_one``, ...).
        filename: the archive's file name on the server.
        approx_bytes: its approximate size, for messages only (never checked).
        size: its exact size in bytes, checked when set.
        sha256: its SHA-256 hex digest, checked when set.
    """

    name: str
    filename: str
    approx_bytes: int
    size: int | None = None
    sha256: str | None = None


# Sizes are as announced by the competition (approximate). Fill in `size`/`sha256` once exact
# values are confirmed; until then only `--sha256`/`sha256=` given by the user are checked.
ARCHIVES: dict[str, ArchiveInfo] = {
    "public": ArchiveInfo("public", "public_data.zip", approx_bytes=8_800_000_000),
    "phase_one": ArchiveInfo("phase_one", "phase_one_data.zip", approx_bytes=2_500_000_000),
    "phase_two": ArchiveInfo("phase_two", "phase_two_data.zip", approx_bytes=9_000_000_000),
}


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


@dataclass(frozen=True)
class DataDownload:
    """What :func:`download_data` did.

    Attributes:
        name: the archive's short name.
        folder: ``DEST/<name>``, holding ``input_data/`` and ``reference_data/`` (``None`` when
            not unpacked).
        archive: the archive file, or ``None`` when it was removed or never needed.
        file: the download step's result, or ``None`` when the unpacked folder already existed.
        unpacked: ``True`` when the archive was unpacked by this call.
        missing: data folders (of ``input_data``, ``reference_data``) the archive lacked.
    """

    name: str
    folder: Path | None
    archive: Path | None
    file: FileDownload | None
    unpacked: bool
    missing: tuple[str, ...] = ()


def archive_url(name: str, base_url: str | None = None) -> str:
    """The URL of archive ``name``.

    Args:
        name: a key of :data:`ARCHIVES`.
        base_url: the folder URL holding the archives; ``None`` uses ``$PGDL_DATA_URL`` or
            :data:`DEFAULT_BASE_URL`. A URL ending in ``.zip`` is taken as the archive itself.

    Returns:
        ``<base_url>/<name>_data.zip``.

    Raises:
        PGDLError: ``name`` is not a known archive, or the base is not an ``http(s)://`` URL.
    """
    info = _archive_info(name)
    base = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    check_url(base)
    if base.lower().endswith(".zip"):
        return base
    return f"{base.rstrip('/')}/{info.filename}"


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


def download_data(
    name: str = "public",
    dest: str | os.PathLike = ".",
    *,
    base_url: str | None = None,
    size: int | None = None,
    sha256: str | None = None,
    unpack: bool = True,
    keep_archive: bool = True,
    overwrite: bool = False,
    progress: TransferProgress | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 1.0,
) -> DataDownload:
    """Download competition archive ``name`` into ``dest`` and unpack it to ``dest/<name>``.

    Does nothing when ``dest/<name>/input_data`` already exists (unless ``overwrite``), and
    does not fetch the archive again when ``dest/<name>_data.zip`` is already complete.

    Args:
        name: ``public``, ``phase_one`` or ``phase_two``.
        dest: the destination folder (created if needed).
        base_url: a mirror's folder URL (see :func:`archive_url`).
        size: the archive's exact size in bytes, if known (overrides :data:`ARCHIVES`).
        sha256: the archive's SHA-256 hex digest, if known (overrides :data:`ARCHIVES`).
        unpack: unpack the archive after downloading it.
        keep_archive: keep the zip after unpacking it.
        overwrite: replace an existing ``dest/<name>`` folder.
        progress: told the progress of each step (nothing is shown by default).
        retries: how many failed requests in a row (without new data) to tolerate.
        timeout: seconds to wait for the server before a request counts as failed.
        backoff: seconds to wait after the first failure, doubling after each further one.

    Returns:
        a :class:`DataDownload` describing the result.

    Raises:
        PGDLError: unknown name, network failure after ``retries``, size or checksum
            mismatch, an unsafe or malformed archive, or too little disk space.
    """
    info = _archive_info(name)
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PGDLError(f"cannot create the destination folder: {exc.strerror or exc}", dest) from None
    folder = dest / info.name
    archive = dest / info.filename
    if unpack and not overwrite and _is_unpacked(folder):
        return DataDownload(info.name, folder, archive if archive.is_file() else None,
                            None, unpacked=False)
    if unpack and not overwrite and folder.exists():
        raise PGDLError("exists but holds no input_data/ or reference_data/; remove it (or pass "
                        "--overwrite) before downloading", folder)
    file = download_file(
        archive_url(name, base_url), archive,
        size=size if size is not None else info.size,
        sha256=sha256 or info.sha256,
        progress=progress, retries=retries, timeout=timeout, backoff=backoff,
    )
    if not unpack:
        return DataDownload(info.name, None, archive, file, unpacked=False)
    folder = extract_archive(archive, folder, overwrite=overwrite, progress=progress)
    missing = tuple(sub for sub in DATA_FOLDERS if not (folder / sub).is_dir())
    if not keep_archive:
        archive.unlink()
    return DataDownload(info.name, folder, archive if keep_archive else None, file,
                        unpacked=True, missing=missing)


# --------------------------------------------------------------------------------- download


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


# --------------------------------------------------------------------------------- unpacking


def check_archive(archive: str | os.PathLike) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """Validate every entry of a zip archive before anything is extracted.

    Refused: absolute paths (``/x``, ``\\x``, ``C:x``), ``..`` components, NUL characters,
    symbolic links and other non-regular entries, encrypted entries, names longer than a file
    system allows (a component over :data:`MAX_NAME_BYTES` bytes), two entries with the same
    path, and a path that is both a file and a folder (``a`` and ``a/b``).

    Args:
        archive: the zip file.

    Returns:
        ``(entry, path components)`` for every entry, in archive order; backslashes count as
        separators, ``.`` and empty components are dropped.

    Raises:
        PGDLError: naming the archive and the first offending entry, or a file that is not a
            zip archive.
    """
    archive = Path(archive)
    entries = []
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                entries.append((info, _safe_parts(archive, info)))
    except zipfile.BadZipFile as exc:
        raise PGDLError(f"not a valid zip archive ({exc}); delete it to download it again",
                        archive) from None
    _check_unique_paths(archive, entries)
    return entries


#: the longest file or folder name (in UTF-8 bytes) most file systems accept
MAX_NAME_BYTES = 255


def _check_unique_paths(archive: Path, entries: list[tuple[zipfile.ZipInfo, tuple[str, ...]]]):
    """Refuse duplicate paths and a path that is a file in one entry and a folder in another."""
    files: set[tuple[str, ...]] = set()
    folders: set[tuple[str, ...]] = set()  # explicit folder entries and every entry's parents
    for info, parts in entries:
        is_folder = info.is_dir() or stat.S_ISDIR(info.external_attr >> 16)
        if not is_folder and parts in files:
            raise PGDLError(f"duplicate entry {info.filename!r} (two entries write the same "
                            f"file); the archive was not extracted", archive)
        (folders if is_folder else files).add(parts)
        folders.update(parts[:i] for i in range(1, len(parts)))
    clash = files & folders
    if clash:
        name = "/".join(min(clash))
        raise PGDLError(f"entry {name!r} is both a file and a folder in the archive; the archive "
                        f"was not extracted", archive)


def _safe_parts(archive: Path, info: zipfile.ZipInfo) -> tuple[str, ...]:
    name = info.filename

    def refuse(why):
        raise PGDLError(f"unsafe entry {name!r} ({why}); the archive was not extracted", archive)

    if not name or "\x00" in name:
        refuse("empty name or NUL character")
    normal = name.replace("\\", "/")
    if normal.startswith("/") or (len(normal) > 1 and normal[1] == ":" and normal[0].isalpha()):
        refuse("absolute path")
    parts = tuple(p for p in normal.split("/") if p not in ("", "."))
    if ".." in parts:
        refuse("'..' path component")
    if not parts:
        refuse("empty path")
    if any(len(p.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for p in parts):
        refuse(f"a name too long: over {MAX_NAME_BYTES} bytes")
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        refuse("symbolic link")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        refuse("special file (device, pipe or socket)")
    if info.flag_bits & 0x1:
        refuse("encrypted")
    return parts


def extract_archive(
    archive: str | os.PathLike,
    folder: str | os.PathLike,
    *,
    overwrite: bool = False,
    progress: TransferProgress | None = None,
) -> Path:
    """Safely unpack a PGDL data archive into ``folder``.

    All entries are validated first (:func:`check_archive`); the archive is extracted into a
    temporary folder next to ``folder`` and the folder holding ``input_data/`` and/or
    ``reference_data/`` (at any depth up to 3, e.g. ``public_data/``) is renamed to ``folder``.
    On any error the temporary folder is removed and ``folder`` is untouched.

    Args:
        archive: the zip file.
        folder: the final folder, e.g. ``DEST/public``.
        overwrite: replace ``folder`` if it exists (otherwise an existing one is an error).
        progress: told the bytes unpacked (nothing is shown by default).

    Returns:
        ``folder``.

    Raises:
        PGDLError: an unsafe or corrupt archive, no ``input_data``/``reference_data`` folder
            in it, ``folder`` already exists, or too little disk space.
    """
    archive, folder = Path(archive), Path(folder)
    if folder.exists() and not overwrite:
        raise PGDLError("already exists; remove it (or pass --overwrite) to unpack again", folder)
    entries = check_archive(archive)
    parent = folder.parent
    parent.mkdir(parents=True, exist_ok=True)
    _check_free_space(parent, sum(info.file_size for info, _ in entries))
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.unpacking-", dir=parent))
    try:
        with zipfile.ZipFile(archive) as zf, _phase(progress, f"unpacking {archive.name}",
                                                    sum(info.file_size for info, _ in entries)) as bar:
            for info, parts in entries:
                target = tmp.joinpath(*parts)
                if not _inside(target, tmp):  # belt and braces: check_archive already refused it
                    raise PGDLError(f"unsafe entry {info.filename!r}", archive)
                if info.is_dir() or stat.S_ISDIR(info.external_attr >> 16):
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, CHUNK_BYTES)
                bar.advance(info.file_size)
        root = find_data_root(tmp)
        if root is None:
            raise PGDLError(f"contains no {' or '.join(f'{d}/' for d in DATA_FOLDERS)} folder; is "
                            f"it a PGDL data archive?", archive)
        # folders, not files (atomic_write's case): renamed into place once complete
        if folder.exists():  # overwrite: swap the old folder out only now that the new is ready
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=parent))
            os.replace(folder, old / folder.name)
            os.replace(root, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(root, folder)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise PGDLError(f"corrupt zip archive ({exc}); delete it to download it again",
                        archive) from None
    except OSError as exc:
        raise PGDLError(f"cannot unpack into {parent}: {exc}", archive) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def find_data_root(folder: str | os.PathLike, max_depth: int = 3) -> Path | None:
    """The shallowest folder under ``folder`` holding ``input_data/`` or ``reference_data/``.

    Hidden folders and ``__MACOSX`` are ignored.

    Args:
        folder: where an archive was unpacked.
        max_depth: how many enclosing folders to look through.

    Returns:
        that folder (possibly ``folder`` itself), or ``None``.

    Raises:
        PGDLError: two candidates at the same depth (the layout is ambiguous).
    """
    level = [Path(folder)]
    for _ in range(max_depth + 1):
        found = [d for d in level if any((d / sub).is_dir() for sub in DATA_FOLDERS)]
        if len(found) > 1:
            raise PGDLError(f"ambiguous layout: several folders hold input_data/ or "
                            f"reference_data/ ({', '.join(str(d) for d in found)})", folder)
        if found:
            return found[0]
        level = sorted(sub for d in level for sub in d.iterdir()
                       if sub.is_dir() and not sub.name.startswith((".", "__MACOSX")))
    return None


# --------------------------------------------------------------------------------- helpers


def _archive_info(name: str) -> ArchiveInfo:
    try:
        return ARCHIVES[name]
    except KeyError:
        raise PGDLError(f"unknown archive {name!r}; choose one of {', '.join(ARCHIVES)}") from None


def _is_unpacked(folder: Path) -> bool:
    return any((folder / sub).is_dir() for sub in DATA_FOLDERS)


def _inside(path: Path, root: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


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


def describe(name: str) -> str:
    """A one-line description of archive ``name`` for messages, e.g. ``public_data.zip (~8.8 GB)``."""
    info = _archive_info(name)
    return f"{info.filename} (~{_human(info.approx_bytes)})"

