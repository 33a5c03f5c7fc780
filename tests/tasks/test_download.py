"""`pgdl data download` against a real HTTP server on 127.0.0.1 (no outside network).

The server supports Range requests and has knobs to cut the connection after N bytes, to
ignore Range (answer 200 instead of 206) and to corrupt a byte of what it sends.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import shutil
import stat
import threading
import zipfile
from pathlib import Path

import pytest

from pgdl_measures.errors import PGDLError
from pgdl_measures.tasks import download as dl

pytestmark = pytest.mark.timeout(60)


# ----------------------------------------------------------------------------- test server


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        srv = self.server
        with srv.lock:
            srv.requests.append((self.path, self.headers.get("Range")))
            down = srv.down
            cut = srv.cut_after if srv.cuts_left > 0 else None
            if cut is not None:
                srv.cuts_left -= 1
                srv.down = srv.down_after_cut
        if down:
            self.send_error(503)
            return
        body = srv.files.get(self.path.rsplit("/", 1)[-1])
        if body is None:
            self.send_error(404)
            return
        if srv.corrupt_at is not None:
            body = bytearray(body)
            body[srv.corrupt_at] ^= 0xFF
            body = bytes(body)
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and not srv.ignore_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        chunk = body[start:]
        self.send_response(status)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(chunk)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        if cut is not None:
            self.wfile.write(chunk[:cut])
            self.wfile.flush()
            self.close_connection = True  # the client sees fewer bytes than Content-Length
            return
        self.wfile.write(chunk)


@pytest.fixture
def server():
    """A ThreadingHTTPServer on 127.0.0.1 serving `server.files` by base name."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.lock = threading.Lock()
    srv.files, srv.requests = {}, []
    srv.cut_after, srv.cuts_left = None, 0
    srv.down = srv.down_after_cut = False  # 503 for every request (after the next cut)
    srv.ignore_range, srv.corrupt_at = False, None
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}/gresearch/pgdl"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


# ----------------------------------------------------------------------------- archives


def _zip(entries: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in entries.items():
            zf.writestr(zipfile.ZipInfo(name), content)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


def _public_layout(top: str = "public_data/") -> dict[str, bytes]:
    """A tiny archive with the public data's layout: one task, two models, a dataset."""
    # incompressible filler so the archive is large enough to be cut mid-way
    filler = hashlib.sha256(b"seed").digest() * 2048
    entries = {}
    for model in ("model_0", "model_1"):
        entries[f"{top}input_data/task1_v4/{model}/config.json"] = json.dumps(
            {"model_config": {"class_name": "Sequential"}}).encode()
        entries[f"{top}input_data/task1_v4/{model}/weights.hdf5"] = filler + model.encode()
    entries[f"{top}input_data/task1_v4/dataset_1/train/shard_0.tfrecord"] = filler
    entries[f"{top}reference_data/task1_v4/model_configs.json"] = json.dumps(
        {"0": {"metrics": {"train_acc": 1.0, "test_acc": 0.8}}}).encode()
    return entries


@pytest.fixture
def public_zip():
    return _zip(_public_layout())


def _get(srv, dest, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("backoff", 0)
    kw.setdefault("timeout", 10)
    return dl.download_data("public", dest, base_url=srv.base, **kw)


def _leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir() if p.name.startswith(".") or
                  p.name.endswith(".part"))


# ----------------------------------------------------------------------------- download


def test_archive_url_and_env(monkeypatch):
    monkeypatch.delenv(dl.BASE_URL_ENV, raising=False)
    assert dl.archive_url("phase_two") == (
        "http://storage.googleapis.com/gresearch/pgdl/phase_two_data.zip")
    assert dl.archive_url("public", "http://m/x/") == "http://m/x/public_data.zip"
    assert dl.archive_url("public", "http://m/a.zip") == "http://m/a.zip"
    monkeypatch.setenv(dl.BASE_URL_ENV, "http://mirror/pgdl")
    assert dl.archive_url("phase_one") == "http://mirror/pgdl/phase_one_data.zip"
    with pytest.raises(PGDLError, match="unknown archive"):
        dl.archive_url("phase_three")


def test_complete_download_and_unpack(server, public_zip, tmp_path):
    server.files["public_data.zip"] = public_zip
    sha = hashlib.sha256(public_zip).hexdigest()
    result = _get(server, tmp_path, sha256=sha, size=len(public_zip))

    assert result.unpacked and result.file.downloaded and result.missing == ()
    assert result.file.sha256 == sha
    assert (tmp_path / "public_data.zip").read_bytes() == public_zip
    root = tmp_path / "public"
    assert result.folder == root
    assert (root / "input_data/task1_v4/model_0/config.json").is_file()
    assert (root / "input_data/task1_v4/dataset_1/train/shard_0.tfrecord").is_file()
    assert json.loads((root / "reference_data/task1_v4/model_configs.json").read_text())
    assert _leftovers(tmp_path) == []
    assert server.requests == [("/gresearch/pgdl/public_data.zip", None)]


def test_second_call_fetches_nothing(server, public_zip, tmp_path):
    server.files["public_data.zip"] = public_zip
    _get(server, tmp_path)
    again = _get(server, tmp_path)
    assert again.file is None and not again.unpacked
    # the archive alone (already unpacked folder removed) is not fetched again either
    shutil.rmtree(tmp_path / "public")
    third = _get(server, tmp_path, sha256=hashlib.sha256(public_zip).hexdigest())
    assert third.unpacked and not third.file.downloaded
    assert len(server.requests) == 1


def test_resume_after_interrupted_download(server, public_zip, tmp_path):
    server.files["public_data.zip"] = public_zip
    cut = len(public_zip) // 3
    server.cut_after, server.cuts_left = cut, 1
    server.down_after_cut = True  # the connection dies mid-way, then the server is unavailable
    with pytest.raises(PGDLError, match="resume"):
        _get(server, tmp_path, retries=0)
    assert [r for _, r in server.requests] == [None, f"bytes={cut}-"]
    part = tmp_path / "public_data.zip.part"
    assert part.stat().st_size == cut
    assert not (tmp_path / "public_data.zip").exists() and not (tmp_path / "public").exists()

    server.down = False
    result = _get(server, tmp_path, sha256=hashlib.sha256(public_zip).hexdigest())
    assert len(server.requests) == 3 and server.requests[-1][1] == f"bytes={cut}-"
    assert (tmp_path / "public_data.zip").read_bytes() == public_zip
    assert result.file.sha256 == hashlib.sha256(public_zip).hexdigest()
    assert not part.exists()
    assert (tmp_path / "public/input_data/task1_v4/model_1/config.json").is_file()


def test_retries_within_one_call(server, public_zip, tmp_path):
    server.files["public_data.zip"] = public_zip
    server.cut_after, server.cuts_left = 1000, 3  # every response dies after 1000 bytes, 3 times
    result = _get(server, tmp_path, retries=1, unpack=False)
    ranges = [r for _, r in server.requests]
    assert ranges == [None, "bytes=1000-", "bytes=2000-", "bytes=3000-"]
    assert result.archive.read_bytes() == public_zip


def test_server_ignoring_range_restarts(server, public_zip, tmp_path):
    server.files["public_data.zip"] = public_zip
    (tmp_path / "public_data.zip.part").write_bytes(b"stale bytes from elsewhere")
    server.ignore_range = True
    result = _get(server, tmp_path, sha256=hashlib.sha256(public_zip).hexdigest())
    assert server.requests[0][1] == "bytes=26-"  # it asked to resume, got 200, restarted
    assert (tmp_path / "public_data.zip").read_bytes() == public_zip
    assert result.unpacked


def test_416_means_the_part_is_complete(server, public_zip, tmp_path):
    server.files["public_data.zip"] = public_zip
    (tmp_path / "public_data.zip.part").write_bytes(public_zip)
    result = _get(server, tmp_path, unpack=False)
    assert server.requests == [("/gresearch/pgdl/public_data.zip", f"bytes={len(public_zip)}-")]
    assert result.archive.read_bytes() == public_zip


def test_stale_part_longer_than_file_restarts(server, public_zip, tmp_path):
    server.files["public_data.zip"] = public_zip
    (tmp_path / "public_data.zip.part").write_bytes(public_zip + b"junk")
    result = _get(server, tmp_path, unpack=False)
    assert [r for _, r in server.requests] == [f"bytes={len(public_zip) + 4}-", None]
    assert result.archive.read_bytes() == public_zip


def test_bounded_when_server_keeps_failing(server, public_zip, tmp_path):
    server.files["public_data.zip"] = public_zip
    server.cut_after, server.cuts_left = 0, 100  # headers, then nothing: never any progress
    with pytest.raises(PGDLError, match="without progress"):
        _get(server, tmp_path, retries=2)
    assert len(server.requests) == 3


def test_checksum_mismatch_leaves_nothing(server, public_zip, tmp_path):
    server.files["public_data.zip"] = public_zip
    server.corrupt_at = len(public_zip) // 2
    with pytest.raises(PGDLError, match="SHA-256 mismatch") as err:
        _get(server, tmp_path, sha256=hashlib.sha256(public_zip).hexdigest())
    assert "public_data.zip" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_size_mismatch_is_refused(server, public_zip, tmp_path):
    server.files["public_data.zip"] = public_zip
    with pytest.raises(PGDLError, match="expected"):
        _get(server, tmp_path, size=len(public_zip) + 1)
    assert not (tmp_path / "public_data.zip").exists()


def test_existing_archive_with_wrong_checksum_is_kept_and_reported(server, public_zip, tmp_path):
    (tmp_path / "public_data.zip").write_bytes(public_zip)
    with pytest.raises(PGDLError, match="delete it"):
        _get(server, tmp_path, sha256="0" * 64)
    assert (tmp_path / "public_data.zip").is_file() and server.requests == []


def test_missing_file_is_a_user_error(server, tmp_path):
    with pytest.raises(PGDLError, match="HTTP 404"):
        _get(server, tmp_path)
    assert _leftovers(tmp_path) == []


def test_bad_sha256_argument(server, tmp_path):
    with pytest.raises(PGDLError, match="SHA-256 hex digest"):
        _get(server, tmp_path, sha256="xyz")


# ----------------------------------------------------------------------------- unpacking


def test_extra_enclosing_folder_and_no_folder(server, tmp_path):
    nested = _zip(_public_layout(top="pgdl/public_data/") | {"__MACOSX/._x": b"", "README": b""})
    server.files["public_data.zip"] = nested
    result = _get(server, tmp_path)
    assert (result.folder / "input_data/task1_v4/model_0/config.json").is_file()
    assert (result.folder / "reference_data").is_dir()

    flat = _zip(_public_layout(top=""))  # no enclosing folder at all
    server.files["public_data.zip"] = flat
    result = _get(server, tmp_path / "flat")
    assert (result.folder / "input_data/task1_v4/model_1/weights.hdf5").is_file()


def test_archive_without_data_folders_is_refused(server, tmp_path):
    server.files["public_data.zip"] = _zip({"something/else.txt": b"x"})
    with pytest.raises(PGDLError, match="no input_data/"):
        _get(server, tmp_path)
    assert not (tmp_path / "public").exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("bad, why", [
    ("../evil", "'..'"),
    ("public_data/input_data/../../../evil", "'..'"),
    ("/tmp/pgdl_abs_evil", "absolute path"),
    ("..\\evil", "'..'"),
    ("C:/evil", "absolute path"),
])
def test_unsafe_entries_refuse_the_whole_archive(server, tmp_path, bad, why):
    entries = _public_layout() | {bad: b"pwned"}
    server.files["public_data.zip"] = _zip(entries)
    dest = tmp_path / "dest"
    with pytest.raises(PGDLError, match=why) as err:
        _get(server, dest)
    message = str(err.value)
    assert "public_data.zip" in message and repr(bad) in message
    assert not (tmp_path / "evil").exists() and not Path("/tmp/pgdl_abs_evil").exists()
    assert not (dest / "public").exists() and _leftovers(dest) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest"]


def test_symlink_entry_is_refused(server, tmp_path):
    server.files["public_data.zip"] = _zip(_public_layout(),
                                           symlinks={"public_data/input_data/link": "/etc"})
    with pytest.raises(PGDLError, match="symbolic link"):
        _get(server, tmp_path)
    assert not (tmp_path / "public").exists() and _leftovers(tmp_path) == []


def test_check_archive_lists_safe_parts(tmp_path):
    path = tmp_path / "a.zip"
    path.write_bytes(_zip({"top/./input_data//x.txt": b"1"}))
    [(info, parts)] = dl.check_archive(path)
    assert parts == ("top", "input_data", "x.txt")
    (tmp_path / "b.zip").write_bytes(b"<html>not a zip</html>")
    with pytest.raises(PGDLError, match="not a valid zip"):
        dl.check_archive(tmp_path / "b.zip")


def test_existing_foreign_folder_is_not_clobbered(server, public_zip, tmp_path):
    server.files["public_data.zip"] = public_zip
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "mine.txt").write_text("keep")
    with pytest.raises(PGDLError, match="--overwrite"):
        _get(server, tmp_path)
    assert server.requests == []
    result = _get(server, tmp_path, overwrite=True)
    assert (result.folder / "input_data").is_dir()
    assert not (result.folder / "mine.txt").exists() and _leftovers(tmp_path) == []


class _Recorder(dl.TransferProgress):
    def __init__(self):
        self.calls = []

    def start(self, description, total):
        self.calls.append(("start", description, total))

    def update(self, *, completed=None, total=None, description=None):
        self.calls.append(("update", completed, total, description))

    def advance(self, amount):
        self.calls.append(("advance", amount))

    def stop(self):
        self.calls.append(("stop",))

    def note(self, message):
        self.calls.append(("note", message))


def test_progress_goes_to_a_callback_object_and_nothing_is_drawn(server, public_zip, tmp_path, capsys):
    """The library reports each step to a TransferProgress (the CLI draws it); it prints nothing."""
    server.files["public_data.zip"] = public_zip
    recorder = _Recorder()
    _get(server, tmp_path, progress=recorder, sha256=hashlib.sha256(public_zip).hexdigest())
    starts = [c[1] for c in recorder.calls if c[0] == "start"]
    assert starts == ["public_data.zip", "unpacking public_data.zip"]
    assert sum(c[0] == "stop" for c in recorder.calls) == 2
    assert ("update", len(public_zip), None, None) in recorder.calls
    unpacked = sum(c[1] for c in recorder.calls if c[0] == "advance")
    with zipfile.ZipFile(io.BytesIO(public_zip)) as zf:
        assert unpacked == sum(info.file_size for info in zf.infolist())
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    # a retry is a note
    server.files["other.zip"] = public_zip
    server.cut_after, server.cuts_left = len(public_zip) // 2, 1
    recorder = _Recorder()
    dl.download_file(server.base + "/other.zip", tmp_path / "other.zip", progress=recorder, backoff=0)
    assert [c for c in recorder.calls if c[0] == "note"]


def test_download_module_draws_nothing():
    import ast

    from pgdl_measures.tasks import archive, transfer

    for module in (dl, transfer, archive):
        tree = ast.parse(Path(module.__file__).read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert not {name for name in imported if name.split(".")[0] == "rich"}, module.__name__


def test_the_old_names_stay_importable_from_download():
    from pgdl_measures.tasks import archive, transfer

    assert dl.download_file is transfer.download_file and dl.verify_file is transfer.verify_file
    assert dl.check_archive is archive.check_archive and dl.extract_zip is archive.extract_zip
    assert dl.FileDownload is transfer.FileDownload and dl.TransferProgress is transfer.TransferProgress


# ----------------------------------------------------------------------------- CLI


def test_cli_download(cli, server, public_zip, tmp_path):
    server.files["public_data.zip"] = public_zip
    sha = hashlib.sha256(public_zip).hexdigest()
    res = cli(["data", "download", "public", "--dest", str(tmp_path), "--url", server.base,
               "--sha256", sha])
    assert res.exit_code == 0, res.output
    assert sha in res.stdout and "unpacked into" in res.stdout
    assert (tmp_path / "public/input_data/task1_v4/model_0/config.json").is_file()
    assert (tmp_path / "public/reference_data/task1_v4/model_configs.json").is_file()

    res = cli(["data", "download", "--dest", str(tmp_path), "--url", server.base, "-q"])
    assert res.exit_code == 0 and "nothing to do" in res.stdout
    assert len(server.requests) == 1


def test_cli_env_url_and_errors(cli, server, public_zip, tmp_path, monkeypatch):
    server.files["public_data.zip"] = public_zip
    server.corrupt_at = 10
    monkeypatch.setenv(dl.BASE_URL_ENV, server.base)
    res = cli(["data", "download", "public", "--dest", str(tmp_path), "-q",
               "--sha256", hashlib.sha256(public_zip).hexdigest()])
    assert res.exit_code == 2
    assert "SHA-256 mismatch" in res.output and "Traceback" not in res.output
    assert list(tmp_path.iterdir()) == []
    assert server.requests  # the env variable's URL was used

    res = cli(["data", "download", "phase_three", "--dest", str(tmp_path)])
    assert res.exit_code == 2 and "phase_three" in res.output


@pytest.mark.parametrize("url", ["notaurl", "ftp://host/x", "http://", "C:\\data", "http://[::1"])
def test_cli_url_that_is_not_a_url_is_one_line(cli, tmp_path, url):
    res = cli(["data", "download", "public", "--dest", str(tmp_path), "--url", url, "-q"])
    assert res.exit_code == 2, res.output
    assert "is not a URL" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_duplicate_and_clashing_entries_refuse_the_archive(tmp_path):
    import warnings

    for names in (["a/x.txt", "a/x.txt"], ["input_data", "input_data/t/x"]):
        archive = tmp_path / "bad.zip"
        with warnings.catch_warnings(), zipfile.ZipFile(archive, "w") as zf:
            warnings.simplefilter("ignore")
            for name in names:
                zf.writestr(name, "x")
        with pytest.raises(PGDLError, match="duplicate entry|both a file and a folder"):
            dl.check_archive(archive)


def test_cli_download_draws_bars_and_prints_a_path_as_plain_text(cli, server, public_zip, tmp_path):
    server.files["public_data.zip"] = public_zip
    dest = tmp_path / "a[/x]b[bold]"
    res = cli(["data", "download", "public", "--out", str(dest), "--url", server.base])
    assert res.exit_code == 0, res.output
    assert f"unpacked into {dest / 'public'}" in res.stdout
    assert "public_data.zip" in res.stderr  # the bar's description, on stderr
    assert (dest / "public/input_data/task1_v4/model_0/config.json").is_file()


def test_cli_help(cli):
    res = cli(["data", "download", "--help"])
    assert res.exit_code == 0
    assert "--sha256" in res.output and "--url" in res.output and "phase_one" in res.output
