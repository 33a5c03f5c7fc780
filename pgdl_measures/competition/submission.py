"""A submission made ready to run: the folder holding ``complexity.py`` found (or a zip
unpacked safely into a temporary one) and its digest.

A *submission* is a folder, or a zip of one, holding ``complexity.py`` that defines
``complexity(model, dataset)`` (optionally a third parameter ``program_dir``, and any further
keyword parameters with defaults) and whatever helper files it reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from pgdl_measures.errors import PGDLError
from pgdl_measures.tasks.archive import extract_zip

_IGNORED_ENTRIES = ("__MACOSX",)


def find_submission_root(folder: str | os.PathLike) -> Path:
    """The folder holding ``complexity.py``: `folder` itself or its single sub-folder.

    A zip made by compressing the files (top level) or the folder holding them (one level down)
    both work; ``__MACOSX`` and hidden entries are ignored.

    Raises:
        PGDLError: no ``complexity.py`` at either place.
    """
    folder = Path(folder)
    if (folder / "complexity.py").is_file():
        return folder
    subfolders = [p for p in folder.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and p.name not in _IGNORED_ENTRIES]
    if len(subfolders) == 1 and (subfolders[0] / "complexity.py").is_file():
        return subfolders[0]
    raise PGDLError("no complexity.py here (nor in a single sub-folder); a submission holds "
                    "complexity.py defining complexity(model, dataset)", folder)


def unpack_submission(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Safely unpack a submission zip into `dest` and return the folder with ``complexity.py``.

    Every entry is checked before anything is written (:func:`pgdl_measures.tasks.archive.extract_zip`:
    absolute paths, ``..`` components, symbolic links and other special files, over-long names,
    duplicate entries and a name that is both a file and a folder are refused).

    Raises:
        PGDLError: an unsafe or corrupt archive, or no ``complexity.py`` in it.
    """
    extract_zip(archive, dest)
    try:
        return find_submission_root(dest)
    except PGDLError:
        raise PGDLError("the archive holds no complexity.py (at its top level or in its single "
                        "folder)", archive) from None


@contextlib.contextmanager
def prepared_submission(submission: str | os.PathLike) -> Iterator[Path]:
    """Yield the folder holding ``complexity.py`` for a submission folder or zip.

    A zip is unpacked into a temporary folder, removed on exit.

    Raises:
        PGDLError: the path does not exist, is neither a folder nor a zip, or holds no
            ``complexity.py``.
    """
    path = Path(submission)
    if path.is_dir():
        yield find_submission_root(path).resolve()
        return
    if not path.is_file():
        raise PGDLError("no such submission (expected a folder or a .zip holding complexity.py)",
                        path)
    if not zipfile.is_zipfile(path):
        raise PGDLError("not a zip archive nor a folder; a submission is a folder or a zip "
                        "holding complexity.py", path)
    with tempfile.TemporaryDirectory(prefix="pgdl-submission-") as tmp:
        yield unpack_submission(path, tmp).resolve()


def submission_digest(folder: str | os.PathLike) -> str:
    """SHA-256 over the relative paths and bytes of a submission's files (``__pycache__`` and
    hidden entries left out): the same submission, as a folder or a zip, has the same digest."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(p == "__pycache__" or p.startswith(".") for p in rel.parts) or not path.is_file():
            continue
        digest.update(rel.as_posix().encode("utf-8", "surrogateescape") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
