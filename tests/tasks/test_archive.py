"""pgdl_measures.tasks.archive: one extractor for the data download and the submission unpacker."""

from __future__ import annotations

import stat
import zipfile

import pytest

from pgdl_measures.competition.submission import unpack_submission
from pgdl_measures.errors import PGDLError
from pgdl_measures.tasks.archive import check_archive, extract_zip, is_folder
from pgdl_measures.tasks.download import extract_archive


def _folder_by_mode(name: str) -> zipfile.ZipInfo:
    """An entry that is a folder only by its mode bits (no trailing slash), as some tools write."""
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFDIR | 0o755) << 16
    return info


def _zip(path, entries):
    import warnings

    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as zf:
        warnings.simplefilter("ignore")  # zipfile warns about a duplicate name
        for entry, data in entries:
            zf.writestr(entry, data)
    return path


def test_a_folder_by_its_mode_bits_is_a_folder(tmp_path):
    archive = _zip(tmp_path / "a.zip", [(_folder_by_mode("d"), b""), ("d/f.txt", b"x"),
                                        (_folder_by_mode("empty"), b"")])
    assert [is_folder(info) for info, _ in check_archive(archive)] == [True, False, True]
    extract_zip(archive, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "f.txt").read_text() == "x"
    assert (tmp_path / "out" / "empty").is_dir()


def test_the_submission_unpacker_makes_such_an_entry_a_folder(tmp_path):
    archive = _zip(tmp_path / "s.zip", [
        ("complexity.py", "def complexity(model, dataset):\n    return 0.0\n"),
        (_folder_by_mode("helper"), b""), (_folder_by_mode("cache"), b""),
        ("helper/scale.json", "2.5"),
    ])
    root = unpack_submission(archive, tmp_path / "dest")
    assert (root / "helper" / "scale.json").read_text() == "2.5"
    assert (root / "cache").is_dir()


def test_the_data_download_makes_such_an_entry_a_folder(tmp_path):
    archive = _zip(tmp_path / "public_data.zip", [
        (_folder_by_mode("public_data"), b""), (_folder_by_mode("public_data/reference_data"), b""),
        ("public_data/input_data/task1/model_0/config.json", "{}"),
    ])
    folder = extract_archive(archive, tmp_path / "public")
    assert (folder / "reference_data").is_dir()
    assert (folder / "input_data" / "task1" / "model_0" / "config.json").read_text() == "{}"


def test_a_file_inside_a_file_is_refused_before_writing(tmp_path):
    archive = _zip(tmp_path / "bad.zip", [("a", b"file"), (_folder_by_mode("a"), b"")])
    with pytest.raises(PGDLError, match="both a file and a folder"):
        extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
