"""pgdl_measures._subprocess: the child-process plumbing both supervisors share."""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

import pytest

from pgdl_measures import _subprocess as sp

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_kill_reaches_what_the_child_started_in_a_new_session(tmp_path):
    """A grandchild in its own session (setsid) leaves the group; the token still finds it."""
    pidfile = tmp_path / "pid"
    script = ("import subprocess, sys\n"
              "p = subprocess.Popen(['setsid', 'sleep', '1000'])\n"
              f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
              "import time; time.sleep(1000)\n")
    child = sp.spawn([sys.executable, "-c", script], stdin=sp.subprocess.DEVNULL)
    try:
        for _ in range(200):
            if pidfile.exists() and pidfile.read_text():
                break
            time.sleep(0.05)
        escaped = int(pidfile.read_text())
        assert os.getpgid(escaped) != child.pid  # out of the child's process group
        assert set(sp.token_holders(child.token)) == {child.pid, escaped}
        child.kill()
        time.sleep(0.1)
        assert not _alive(escaped)
        assert sp.token_holders(child.token) == []
        child.kill()  # a second call is harmless
    finally:
        sp.kill_token_holders(child.token)


def test_frames_round_trip_and_time_out():
    stream = io.BytesIO()
    sp.write_frame(stream, {"ok": True, "value": 1.5})
    sp.write_frame(stream, ("exit", {}))
    stream.seek(0)
    assert [sp.pickle.loads(sp.read_frame(stream)) for _ in range(2)] == [
        {"ok": True, "value": 1.5}, ("exit", {})]
    with pytest.raises(EOFError):
        sp.read_frame(stream)

    read_fd, write_fd = os.pipe()
    try:
        reader = sp.FrameReader(read_fd)
        with os.fdopen(os.dup(write_fd), "wb") as w:
            sp.write_frame(w, [1, 2])
        assert reader.read(time.monotonic() + 5) == [1, 2]
        with pytest.raises(sp.FrameTimeout):
            reader.read(time.monotonic() + 0.05)
        os.close(write_fd)
        write_fd = None
        with pytest.raises(EOFError):
            reader.read(time.monotonic() + 5)
    finally:
        os.close(read_fd)
        if write_fd is not None:
            os.close(write_fd)


def test_read_tail(tmp_path):
    path = tmp_path / "log"
    path.write_bytes(b"a" * 100 + "é\n".encode())
    assert sp.read_tail(path, 3) == "é\n"
    assert sp.read_tail(tmp_path / "missing", 3) == ""


def test_a_child_whose_parent_is_killed_exits_with_what_it_started(tmp_path):
    """exit_with_parent: the supervisor killed outright (SIGKILL) leaves nothing running."""
    ready = tmp_path / "ready"
    grandchild = (  # B: watches its parent, starts `setsid sleep 1000`, waits
        "from pgdl_measures import _subprocess as sp; import subprocess, time\n"
        "sp.exit_with_parent(poll=0.1)\n"
        "subprocess.Popen(['setsid', 'sleep', '1000'])\n"
        f"open({str(ready)!r}, 'w').write('1')\n"
        "time.sleep(1000)\n")
    supervisor = (  # A: starts B as a supervised child, then waits to be killed
        "import sys, time; from pgdl_measures import _subprocess as sp\n"
        f"sp.spawn([sys.executable, '-c', {grandchild!r}])\n"
        "time.sleep(1000)\n")
    child = sp.spawn([sys.executable, "-c", supervisor], stdin=sp.subprocess.DEVNULL,
                     env={**os.environ, "PYTHONPATH": str(Path(sp.__file__).parents[1])})
    try:
        for _ in range(400):
            if ready.exists():
                break
            time.sleep(0.05)
        assert len(sp.token_holders(child.token)) == 3  # A, B and the sleep
        os.kill(child.pid, sp.signal.SIGKILL)  # A only: B and the sleep are left behind
        child.proc.wait()
        for _ in range(60):
            if not sp.token_holders(child.token):
                break
            time.sleep(0.05)
        assert sp.token_holders(child.token) == []
    finally:
        sp.kill_token_holders(child.token)


ECHO = ("import sys, time\n"
        "from pgdl_measures._subprocess import ParentChannel\n"
        "channel = ParentChannel()\n"
        "print('echo child started', file=sys.stderr, flush=True)\n"
        "while True:\n"
        "    try:\n"
        "        op, arg = channel.receive()\n"
        "    except EOFError:\n"
        "        break\n"
        "    if op == 'sleep':\n"
        "        time.sleep(arg)\n"
        "    if op == 'die':\n"
        "        print('dying now', file=sys.stderr, flush=True)\n"
        "        sys.exit(arg)\n"
        "    print('noise on stdout')\n"
        "    channel.send((op, arg))\n")


def _echo(tmp_path) -> sp.FramedChild:
    env = {**os.environ, "PYTHONPATH": str(Path(sp.__file__).parents[1])}
    return sp.FramedChild([sys.executable, "-c", ECHO], tmp_path / "log", name="the echo child", env=env)


def test_a_framed_child_answers_and_ends(tmp_path):
    """Frames both ways (stdout noise cannot corrupt them); closing ends the requests."""
    child = _echo(tmp_path)
    assert child.request(("echo", [1, 2]), time.monotonic() + 60) == ("echo", [1, 2])
    assert child.request(("echo", "x" * 200_000), time.monotonic() + 60)[1] == "x" * 200_000
    assert child.alive
    child.close(timeout=10)
    assert not child.alive and child.returncode == 0
    assert "noise on stdout" in (tmp_path / "log").read_text()


def test_a_framed_child_is_killed_past_its_deadline_or_when_cancelled(tmp_path):
    import threading

    child = _echo(tmp_path)
    start = time.monotonic()
    with pytest.raises(sp.ChildTimeout):
        child.request(("sleep", 1000), time.monotonic() + 0.5)
    assert time.monotonic() - start < 30 and not child.alive
    child = _echo(tmp_path)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(sp.ChildCancelled):
        child.request(("sleep", 1000), None, cancel)
    assert not child.alive


def test_a_framed_child_that_dies_says_so_with_its_log(tmp_path):
    child = _echo(tmp_path)
    with pytest.raises(sp.ChildDied, match="the echo child exited") as info:
        child.request(("die", 5), time.monotonic() + 60)
    assert info.value.returncode == 5 and "dying now" in info.value.tail
    assert "dying now" in str(info.value) and not child.alive
    child.kill()  # a second kill is harmless
