"""Child processes the toolkit supervises: starting one, talking to it in frames with a
deadline, killing it with everything it started, and reading the end of its log.

:class:`FramedChild` is the one supervisor: `pgdl evaluate`'s measure worker
(:mod:`pgdl_measures.evaluate.worker`) and `pgdl run-submission`'s ingestion child
(:mod:`pgdl_measures.competition.ingestion`) are both driven through it, and the child side of
both reads and answers through :class:`ParentChannel`.

Protocol: length-prefixed pickles (a 4-byte big-endian length, then the pickle). Requests go to
the child's stdin; answers come back on a private pipe (its file descriptor in the child's
:data:`ANSWERS_FD_ENV`, not inherited by what the child starts), so nothing the child prints,
from Python or C++, can corrupt them, and the pipe's end of file means the child is gone.

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
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, BinaryIO

#: the environment variable holding the tokens of the supervised children a process descends from
TOKEN_ENV = "PGDL_CHILD_TOKENS"
#: the environment variable telling a :class:`FramedChild`'s child its answers' file descriptor
ANSWERS_FD_ENV = "PGDL_CHILD_ANSWERS_FD"
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

    A wait that ends mid-frame loses nothing: the bytes read so far stay for the next call.
    """

    def __init__(self, fd: int):
        self.fd = fd
        self._buffer = b""

    def _frame(self) -> bytes | None:
        if len(self._buffer) < _HEADER.size:
            return None
        (n,) = _HEADER.unpack_from(self._buffer)
        end = _HEADER.size + n
        if len(self._buffer) < end:
            return None
        payload, self._buffer = self._buffer[_HEADER.size:end], self._buffer[end:]
        return payload

    def read(self, deadline: float | None) -> Any:
        """The next frame's object.

        Raises:
            FrameTimeout: not complete before `deadline`.
            EOFError: the stream ended.
            pickle.UnpicklingError: the frame is not a pickle.
        """
        while (payload := self._frame()) is None:
            if deadline is not None and deadline - time.monotonic() <= 0:
                raise FrameTimeout
            if not wait_readable(self.fd, deadline):
                raise FrameTimeout
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                raise EOFError
            self._buffer += chunk
        return pickle.loads(payload)


# ----------------------------------------------------------------------------- the supervisor


class ChildTimeout(Exception):
    """The child did not answer before the deadline (it has been killed)."""


class ChildCancelled(Exception):
    """The wait for the child's answer was cancelled (it has been killed)."""


class ChildDied(Exception):
    """The child exited or broke the protocol (it has been killed).

    Attributes:
        returncode: its exit status.
        tail: the last lines of its log (also in the message).
    """

    def __init__(self, message: str, returncode: int | None = None, tail: str = ""):
        super().__init__(message)
        self.returncode = returncode
        self.tail = tail


class FramedChild:
    """A child that takes requests as frames on its stdin and answers with frames (see the
    module docstring), started with :func:`spawn` and killed with everything it started.

    Subclasses may set :attr:`Timeout` and :attr:`Died` to their own subclasses of
    :class:`ChildTimeout` and :class:`ChildDied`.

    Args:
        argv: the command; the child reads and answers through :class:`ParentChannel`.
        log_path: the file the child's stderr (and its stdout, unless `stdout` is given) is
            appended to; failure messages quote its last lines.
        name: how messages call the child (``"the worker process"``).
        env: its environment (default: this process's).
        cwd: its working folder.
        stdout: where its stdout goes instead of the log (a file object).
        tail_lines: how many lines of the log a failure message quotes.

    Raises:
        OSError: the command cannot be started.
    """

    Timeout: type[ChildTimeout] = ChildTimeout
    Died: type[ChildDied] = ChildDied
    #: how much of the end of the log the tail looks at
    TAIL_BYTES = 1 << 16
    #: seconds a child that closed its answers may take to exit before it is killed
    EXIT_GRACE = 2.0

    def __init__(self, argv: list[str], log_path: str | os.PathLike, *,
                 name: str = "the child process", env: dict[str, str] | None = None,
                 cwd: str | os.PathLike | None = None, stdout: BinaryIO | None = None,
                 tail_lines: int = 8):
        self.log_path = Path(log_path)
        self.name = name
        self.tail_lines = tail_lines
        self._log = open(self.log_path, "ab")
        read_fd, write_fd = os.pipe()
        env = dict(os.environ if env is None else env)
        env[ANSWERS_FD_ENV] = str(write_fd)
        try:
            self.child = spawn(argv, env=env, cwd=cwd, stdin=subprocess.PIPE,
                               stdout=self._log if stdout is None else stdout, stderr=self._log,
                               pass_fds=(write_fd,), close_fds=True)
        except BaseException:
            os.close(read_fd)
            self._log.close()
            raise
        finally:
            os.close(write_fd)
        self.proc = self.child.proc
        self._answers = FrameReader(read_fd)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self) -> str:
        """The last lines of the child's log."""
        text = read_tail(self.log_path, self.TAIL_BYTES).rstrip().splitlines()[-self.tail_lines:]
        return "\n".join(text)

    def died(self, what: str, grace: float = 0.0) -> ChildDied:
        """Kill the child and describe its end: ``<name> <what> (exit status N); last lines...``.

        Args:
            what: what it did (``"exited"``).
            grace: seconds it may take to exit by itself first, so that its own exit status is
                reported (a child closing its end of the pipes is usually exiting).
        """
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=grace)
        self.kill()
        code = self.proc.returncode
        tail = self.log_tail()
        return self.Died(f"{self.name} {what} (exit status {code})"
                         + (f"; last lines of {self.log_path}:\n{tail}" if tail else ""), code, tail)

    def send(self, obj: Any) -> None:
        """Send one frame.

        Raises:
            ChildDied: the child does not read its stdin any more.
        """
        try:
            write_frame(self.proc.stdin, obj)
        except (OSError, ValueError):  # a broken pipe, or stdin closed by kill()
            raise self.died("stopped reading requests", grace=self.EXIT_GRACE) from None

    def receive(self, deadline: float | None, cancel: threading.Event | None = None) -> Any:
        """The child's next frame, waited for until `deadline` (``time.monotonic()``).

        Args:
            deadline: when to give up (None: never).
            cancel: when set (checked every second), the child is killed.

        Raises:
            ChildTimeout: no complete frame before the deadline; the child has been killed.
            ChildCancelled: `cancel` was set; the child has been killed.
            ChildDied: the child exited or sent an unreadable frame; it has been killed.
        """
        while True:
            step = None if cancel is None else time.monotonic() + 1.0
            until = step if deadline is None else deadline if step is None else min(step, deadline)
            try:
                return self._answers.read(until)
            except FrameTimeout:
                if cancel is not None and cancel.is_set():
                    self.kill()
                    raise ChildCancelled from None
                if deadline is not None and time.monotonic() >= deadline:
                    self.kill()
                    raise self.Timeout from None
            except EOFError:
                raise self.died("exited", grace=self.EXIT_GRACE) from None
            except pickle.UnpicklingError as exc:
                raise self.died(f"sent an unreadable answer ({exc})") from None

    def request(self, obj: Any, deadline: float | None, cancel: threading.Event | None = None) -> Any:
        """:meth:`send` `obj`, then :meth:`receive` the answer."""
        self.send(obj)
        return self.receive(deadline, cancel)

    def kill(self) -> None:
        """Kill the child and everything it started (SIGKILL), reap it, close the pipes."""
        self.child.kill()
        for close in (self.proc.stdin.close, lambda: os.close(self._answers.fd), self._log.close):
            with contextlib.suppress(OSError, ValueError):
                close()
        self._answers.fd = -1

    def close(self, timeout: float = 10.0) -> None:
        """End the requests (end of file on the child's stdin), give the child `timeout` seconds
        to exit, then :meth:`kill` it with whatever it left behind."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, ValueError, subprocess.TimeoutExpired):
                self.proc.stdin.close()
                self.proc.wait(timeout=timeout)
        self.kill()


class ParentChannel:
    """The child's side of a :class:`FramedChild`: requests from stdin, answers on the pipe.

    Raises:
        KeyError: the process was not started by a :class:`FramedChild`.
    """

    def __init__(self):
        fd = int(os.environ.pop(ANSWERS_FD_ENV))
        os.set_inheritable(fd, False)  # what the child starts must not hold the pipe open
        self._answers = os.fdopen(fd, "wb")
        self._requests = sys.stdin.buffer

    def receive(self) -> Any:
        """The next request.

        Raises:
            EOFError: the parent ended the requests.
            Exception: the request cannot be unpickled (the stream stays aligned).
        """
        return pickle.loads(read_frame(self._requests))

    def send(self, obj: Any) -> None:
        """Send one answer."""
        write_frame(self._answers, obj)
