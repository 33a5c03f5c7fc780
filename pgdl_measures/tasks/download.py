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

* the download is resumable and verified (size, SHA-256 when known: ``size=``/``sha256=``,
  ``--sha256``), see :mod:`pgdl_measures.tasks.transfer`;
* the archive is validated entry by entry before anything is extracted
  (:mod:`pgdl_measures.tasks.archive`); extraction goes to a temporary folder inside ``DEST``
  that is renamed into place only when complete;
* an archive already downloaded, or a folder already unpacked, is not fetched again.

The base URL can be changed for a mirror (or a test server) with ``base_url=``, ``--url`` or the
environment variable ``PGDL_DATA_URL``.

Progress is reported to a :class:`TransferProgress` (the functions draw nothing themselves;
``pgdl data download`` passes one that draws rich bars on stderr).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pgdl_measures.errors import PGDLError
from pgdl_measures.tasks.archive import MAX_NAME_BYTES, check_archive, extract_zip
from pgdl_measures.tasks.transfer import (
    BASE_URL_ENV,
    CHUNK_BYTES,
    DEFAULT_BASE_URL,
    FileDownload,
    TransferProgress,
    _check_free_space,
    _human,
    check_url,
    download_file,
    verify_file,
)

__all__ = [
    "ARCHIVES",
    "BASE_URL_ENV",
    "CHUNK_BYTES",
    "DEFAULT_BASE_URL",
    "MAX_NAME_BYTES",
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
    "extract_zip",
    "find_data_root",
    "verify_file",
]

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


# --------------------------------------------------------------------------------- unpacking


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
        extract_zip(archive, tmp, entries=entries, progress=progress,
                    fix="; delete it to download it again")
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


def describe(name: str) -> str:
    """A one-line description of archive ``name`` for messages, e.g. ``public_data.zip (~8.8 GB)``."""
    info = _archive_info(name)
    return f"{info.filename} (~{_human(info.approx_bytes)})"

