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
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

DEFAULT_DEADLINE = float(os.environ.get("CURBE_TEST_DEADLINE", "120"))
# a test still running this long after its deadline ignores the cancel (a shielded scope, a thread
# that cannot be abandoned, a fixture): its tasks and threads are printed at once, so that the run's
# last resort (pytest-timeout, which ends the whole run) does not leave only a bare epoll frame
LINGER = float(os.environ.get("CURBE_TEST_LINGER", "20"))
WATCHDOG = "curbe-deadline"
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
                lingering.start()

            def report() -> None:  # runs in Trio's thread, LINGER s after a cancel that did nothing
                _to_terminal(
                    item,
                    f"{item.nodeid} is still running {LINGER:g} s after its {seconds:g} s "
                    f"deadline; its tasks wait at:\n{_where_tasks_wait()}\n{_thread_stacks()}",
                )

            def in_trio(fn: Callable[[], None]) -> Callable[[], None]:
                def call() -> None:
                    try:
                        trio.from_thread.run_sync(fn, trio_token=token)
                    except trio.RunFinishedError:
                        pass

                return call

            timer = threading.Timer(seconds, in_trio(expire))
            lingering = threading.Timer(LINGER, in_trio(report))
            timer.daemon = lingering.daemon = True
            timer.name = lingering.name = f"{WATCHDOG} {item.nodeid}"
            timer.start()
            try:
                result = await test(*args, **kwargs)
            finally:
                timer.cancel()
                lingering.cancel()
        if not tree:
            return result
        raise DeadlineExceeded(
            f"{item.nodeid} ran past its {seconds:g} s deadline; its tasks wait at:\n" + tree[0]
        )

    return run


def _to_terminal(item: pytest.Item, text: str) -> None:
    """Write past pytest's output capture (as pytest-timeout does before it ends the run)."""
    capture = item.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)
    try:
        sys.stderr.write(f"\n{'+' * 30} {text}\n")
        sys.stderr.flush()
    finally:
        if capture is not None:
            capture.resume_global_capture()


def _thread_stacks() -> str:
    """The stacks of every thread but Trio's own (worker threads: a browser, a blocking call)."""
    out = []
    main = threading.main_thread().ident
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        name = names.get(ident, str(ident))
        if ident in (main, threading.get_ident()) or name.startswith((WATCHDOG, "pytest_timeout")):
            continue
        stack = "".join(traceback.format_stack(frame)[-6:])
        out.append(f"thread {name}:\n{stack}")
    return "\n".join(out) or "(no other threads)"


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
