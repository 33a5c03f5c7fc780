"""Child processes the toolkit supervises: starting one, waiting on it with a deadline, killing it
with everything it started, reading the end of its log, and framing messages to and from it.

Two supervisors use this: `pgdl evaluate`'s measure worker (:mod:`pgdl_measures.evaluate.worker`)
and `pgdl run-submission`'s ingestion child (:mod:`pgdl_measures.competition.run`). Both start
their child with :func:`spawn` and end it with :meth:`ChildProcess.kill`.

What "everything it started" means here (Linux): the child runs in its own session and process
group, and its environment carries a token unique to it (``PGDL_CHILD_TOKENS``, inherited by
whatever it starts). :meth:`ChildProcess.kill` sends ``SIGKILL`` to the child's process group,
then to every process whose initial environment holds the token, found through
``/proc/<pid>/environ`` -- which reaches processes that left the group with ``setsid`` and
were re-parented to init. A child that calls :func:`exit_with_parent` does the same itself
when its parent is killed without the chance to (``SIGKILL``). The limit: a process started
with a scrubbed environment (``env -i``, ``execve`` with a new environment) that also left the
group, or one owned by another user, is not found; without ``/proc`` (not Linux) only the
process group is killed.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import struct
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any, BinaryIO

#: the environment variable holding the tokens of the supervised children a process descends from
TOKEN_ENV = "PGDL_CHILD_TOKENS"
#: rounds of the sweep for processes carrying a child's token (each may find new forks)
SWEEP_ROUNDS = 5

_HEADER = struct.Struct(">I")


class ChildProcess:
    """A supervised child: the :class:`subprocess.Popen` and the token its descendants inherit.

    Attributes:
        proc: the child.
        token: the unique string in its environment's :data:`TOKEN_ENV`.
    """

    def __init__(self, proc: subprocess.Popen, token: str):
        self.proc = proc
        self.token = token

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def poll(self) -> int | None:
        return self.proc.poll()

    def kill(self) -> None:
        """Kill the child and everything it started (see the module docstring), then reap it.

        The group id is the child's pid (its own session). While anything of the group is
        alive, the kernel does not reuse that id, so the group kill reaches only the child's own
        processes; once the group is empty it finds nothing. Safe to call more than once.
        """
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            self.proc.kill()
        self.proc.wait()
        kill_token_holders(self.token)


def spawn(argv: list[str], *, env: dict[str, str] | None = None, **popen_kwargs) -> ChildProcess:
    """Start `argv` in its own session, its environment marked with a fresh token.

    Args:
        argv: the command.
        env: its environment (default: this process's).
        **popen_kwargs: passed to :class:`subprocess.Popen` (``stdin``, ``stdout``, ``cwd``,
            ``pass_fds``, ...); ``start_new_session`` is always set.

    Raises:
        OSError: the command cannot be started.
    """
    token = uuid.uuid4().hex
    env = dict(os.environ if env is None else env)
    env[TOKEN_ENV] = ":".join(t for t in (env.get(TOKEN_ENV), token) if t)
    proc = subprocess.Popen(argv, env=env, start_new_session=True, **popen_kwargs)
    return ChildProcess(proc, token)


def token_holders(token: str) -> list[int]:
    """The ids of live processes (not this one) whose initial environment holds `token`.

    Empty where ``/proc`` does not exist. Processes that cannot be read (another user's, or
    gone meanwhile) are skipped; zombies are left out (they hold nothing and init reaps them).
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    needle = f"{TOKEN_ENV}=".encode()
    mark = token.encode()
    me = os.getpid()
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if mark not in environ:
            continue
        if not any(var.startswith(needle) and mark in var for var in environ.split(b"\0")):
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def kill_token_holders(token: str, rounds: int = SWEEP_ROUNDS) -> None:
    """``SIGKILL`` every process holding `token`, repeating while new ones appear."""
    for _ in range(rounds):
        pids = token_holders(token)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def exit_with_parent(poll: float = 1.0) -> None:
    """In a child: exit (status 3) soon after the parent dies, killing what this child started.

    Starts a daemon thread that checks every `poll` seconds whether the parent changed (it was
    killed, with ``SIGKILL`` say, and this process was re-parented); then it kills the processes
    holding this child's token (:meth:`ChildProcess.kill` would have) and exits at once.
    """
    parent = os.getppid()
    tokens = os.environ.get(TOKEN_ENV, "")
    own = tokens.rsplit(":", 1)[-1] if tokens else None

    def watch() -> None:
        while True:
            time.sleep(poll)
            if os.getppid() != parent:
                if own:
                    kill_token_holders(own)
                os._exit(3)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def wait_readable(fd: int, deadline: float | None, step: float | None = None) -> bool:
    """Wait until `fd` can be read or `deadline` (``time.monotonic()``) passes.

    Args:
        fd: the file descriptor.
        deadline: when to give up (None: never).
        step: wait at most this long in one go (the caller re-checks its own state).

    Returns:
        True when `fd` is readable (data or end of file), False when the wait ended first.
    """
    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
    if step is not None:
        timeout = step if timeout is None else min(timeout, step)
    readable, _, _ = select.select([fd], [], [], timeout)
    return bool(readable)


def read_tail(path: str | os.PathLike, max_bytes: int) -> str:
    """The last `max_bytes` of a file, decoded as UTF-8 (bad bytes replaced); "" if unreadable."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - max_bytes))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


# ----------------------------------------------------------------------------- framing


class FrameTimeout(Exception):
    """No complete frame arrived before the deadline."""


def write_frame(stream: BinaryIO, obj: Any) -> None:
    """Send `obj` as one frame: a 4-byte big-endian length, then its pickle."""
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def read_frame(stream: BinaryIO) -> bytes:
    """The pickle of the next frame from a blocking stream.

    Raises:
        EOFError: the stream ended.
    """
    (n,) = _HEADER.unpack(_read_exact(stream, _HEADER.size))
    return _read_exact(stream, n)


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


class FrameReader:
    """Reads frames from a file descriptor, giving up at a deadline.

    Bytes read past a frame are kept for the next one.
    """

    def __init__(self, fd: int):
        self.fd = fd
        self._buffer = b""

    def _read(self, n: int, deadline: float | None) -> bytes:
        while len(self._buffer) < n:
            if deadline is not None and deadline - time.monotonic() <= 0:
                raise FrameTimeout
            if not wait_readable(self.fd, deadline):
                raise FrameTimeout
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                raise EOFError
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def read(self, deadline: float | None) -> Any:
        """The next frame's object.

        Raises:
            FrameTimeout: not complete before `deadline`.
            EOFError: the stream ended.
            pickle.UnpicklingError: the frame is not a pickle.
        """
        (n,) = _HEADER.unpack(self._read(_HEADER.size, deadline))
        return pickle.loads(self._read(n, deadline))
