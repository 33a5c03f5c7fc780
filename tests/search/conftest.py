"""A synchronous stand-in for the Dask engine (runs each task at submission), for fast tests."""

from __future__ import annotations

import collections

import pytest


class _Done:
    def __init__(self, key, value):
        self.key, self.value = key, value

    def result(self):
        return self.value


class _Queue:
    def __init__(self):
        self.items = collections.deque()

    def add(self, future):
        self.items.append(future)

    def __iter__(self):
        while self.items:
            yield self.items.popleft()


class SyncEngine:
    """Runs each task at submission (what the Dask engine does, in one process)."""

    def __init__(self):
        self.epochs = collections.Counter()

    def submit(self, fn, task, *, key, priority=0):
        result = fn(task)
        if not task["final"]:
            cell = task["trial"].split("/")[0]
            self.epochs[cell] += task["epochs"]
        return _Done(key, result)

    def as_completed(self, futures=()):
        return _Queue()

    def describe(self):
        return "synchronous"


@pytest.fixture
def sync_engine():
    return SyncEngine()


@pytest.fixture(scope="session")
def sync_engine_class():
    """The class itself, for module-scoped fixtures and forked children."""
    return SyncEngine
