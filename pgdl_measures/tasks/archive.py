"""Zip archives checked entry by entry before anything is written, and extracted by one
function, :func:`extract_zip`, for the competition's data (:mod:`pgdl_measures.tasks.download`)
and for submissions (:mod:`pgdl_measures.competition.submission`) alike.

Refused, for the whole archive: absolute paths, ``..`` components, NUL characters, symbolic
links and other special files, encrypted entries, over-long names, duplicate entries and a
path that is both a file and a folder. An entry is a folder when its name ends with ``/`` or
its mode bits say so (``S_ISDIR`` of ``external_attr >> 16``, as some zip tools write it).
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path

from pgdl_measures.errors import PGDLError
from pgdl_measures.tasks.transfer import CHUNK_BYTES, TransferProgress, _phase

#: one entry of an archive and its path's components
Entry = tuple[zipfile.ZipInfo, tuple[str, ...]]


def is_folder(info: zipfile.ZipInfo) -> bool:
    """Whether a zip entry is a folder: its name ends with ``/`` or its mode bits say so."""
    return info.is_dir() or stat.S_ISDIR(info.external_attr >> 16)


def check_archive(archive: str | os.PathLike) -> list[Entry]:
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


def _check_unique_paths(archive: Path, entries: list[Entry]):
    """Refuse duplicate paths and a path that is a file in one entry and a folder in another."""
    files: set[tuple[str, ...]] = set()
    folders: set[tuple[str, ...]] = set()  # explicit folder entries and every entry's parents
    for info, parts in entries:
        folder = is_folder(info)
        if not folder and parts in files:
            raise PGDLError(f"duplicate entry {info.filename!r} (two entries write the same "
                            f"file); the archive was not extracted", archive)
        (folders if folder else files).add(parts)
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


def extract_zip(archive: str | os.PathLike, dest: str | os.PathLike, *,
                entries: list[Entry] | None = None, progress: TransferProgress | None = None,
                fix: str = "") -> list[Entry]:
    """Check every entry of a zip (:func:`check_archive`), then write them all under `dest`.

    Args:
        archive: the zip file.
        dest: the folder to write into (created if needed).
        entries: what :func:`check_archive` returned for it already (it is not read twice).
        progress: told the bytes unpacked, as the phase ``unpacking <name>``.
        fix: what a corrupt archive's message adds (e.g. ``"; delete it to download it again"``).

    Returns:
        The entries written.

    Raises:
        PGDLError: an unsafe or corrupt archive, or an entry that cannot be written (a path
            too long for the file system, a full disk); what was written stays in `dest`.
    """
    archive, dest = Path(archive), Path(dest)
    entries = check_archive(archive) if entries is None else entries
    dest.mkdir(parents=True, exist_ok=True)
    info = None
    try:
        with zipfile.ZipFile(archive) as zf, _phase(progress, f"unpacking {archive.name}",
                                                    sum(i.file_size for i, _ in entries)) as bar:
            for info, parts in entries:
                target = dest.joinpath(*parts)
                if not _inside(target, dest):  # belt and braces: check_archive already refused it
                    raise PGDLError(f"unsafe entry {info.filename!r}", archive)
                if is_folder(info):
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, CHUNK_BYTES)
                bar.advance(info.file_size)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise PGDLError(f"corrupt zip archive ({exc}){fix}", archive) from None
    except OSError as exc:
        entry = f"entry {info.filename!r}" if info is not None else "it"
        raise PGDLError(f"cannot unpack {entry} into {dest}: {exc.strerror or exc}",
                        archive) from None
    return entries


def _inside(path: Path, root: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))
