"""Per-test deadlines (a pytest plugin, loaded by ``tests/conftest.py``).

A Trio test gets a watchdog that runs on real time (``autojump_clock`` does not fire it) and fails
the test with :class:`DeadlineExceeded`, whose message is the tree of the run's tasks and the
line each one waits on. A plain test gets ``pytest-timeout``. ``@pytest.mark.deadline(seconds)``
sets one test's limit; ``CURBE_TEST_DEADLINE`` the default for Trio tests.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

DEFAULT_DEADLINE = float(os.environ.get("CURBE_TEST_DEADLINE", "120"))
# plain tests start processes (embedded PostgreSQL, the CLI, ffmpeg): a longer default
SYNC_DEADLINE = float(os.environ.get("CURBE_SYNC_TEST_DEADLINE", "600"))


class DeadlineExceeded(AssertionError):
    """A Trio test ran past its deadline; the message shows where each task waits."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "deadline(seconds): this test's real-time limit")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        function = getattr(item, "obj", None)
        inner = getattr(getattr(function, "hypothesis", None), "inner_test", None)
        if inner is not None and inspect.iscoroutinefunction(inner):
            function.hypothesis.inner_test = _with_deadline(inner, item)  # type: ignore[union-attr]
        elif function is not None and inspect.iscoroutinefunction(function):
            item.obj = _with_deadline(function, item)  # type: ignore[attr-defined]
        else:
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(SYNC_DEADLINE, method="signal"))
            continue
        if item.get_closest_marker("timeout") is None:
            # the last resort, should a Trio test hang in a fixture or in a shielded scope
            item.add_marker(pytest.mark.timeout(_deadline_of(item) + 180, method="thread"))


def _deadline_of(item: pytest.Item) -> float:
    marker = item.get_closest_marker("deadline")
    return float(marker.args[0]) if marker else DEFAULT_DEADLINE


def _with_deadline(test: Callable[..., Awaitable[Any]], item: pytest.Item) -> Any:
    """``test`` inside a cancel scope that a real-time timer cancels at the deadline."""
    seconds = _deadline_of(item)

    @functools.wraps(test)
    async def run(*args: Any, **kwargs: Any) -> Any:
        token = trio.lowlevel.current_trio_token()
        tree: list[str] = []
        with trio.CancelScope() as scope:

            def expire() -> None:  # runs in Trio's thread: note where everything waits, then stop
                tree.append(_where_tasks_wait())
                scope.cancel()

            def fire() -> None:
                try:
                    trio.from_thread.run_sync(expire, trio_token=token)
                except trio.RunFinishedError:
                    pass

            timer = threading.Timer(seconds, fire)
            timer.daemon = True
            timer.start()
            try:
                return await test(*args, **kwargs)
            finally:
                timer.cancel()
        raise DeadlineExceeded(
            f"{item.nodeid} ran past its {seconds:g} s deadline; its tasks wait at:\n" + tree[0]
        )

    return run


def _where_tasks_wait() -> str:
    """Every task of this Trio run, indented by nursery, with the lines it is suspended at
    (Trio's own frames left out)."""
    lines: list[str] = []

    def walk(task: trio.lowlevel.Task, depth: int) -> None:
        frames = [
            f"{frame.f_code.co_filename.rsplit('/', 2)[-1]}:{lineno} in {frame.f_code.co_name}"
            for frame, lineno in task.iter_await_frames()
            if "/trio/" not in frame.f_code.co_filename
        ]
        lines.append(f"{'  ' * depth}{task.name}: {' > '.join(frames[-3:]) or '(in Trio)'}")
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child, depth + 1)

    walk(trio.lowlevel.current_root_task(), 0)
    return "\n".join(lines)
