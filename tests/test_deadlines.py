"""The suite's own deadlines (``tests/deadlines.py``): a hang fails fast, with where it hangs."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    return pytester


def test_a_hanging_trio_test_fails_and_shows_the_line_it_waits_on(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_hang="""
        import pytest
        import trio

        async def wait_for_ever(event):
            await event.wait()

        @pytest.mark.deadline(1)
        async def test_hangs():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait_for_ever, trio.Event(), name="stuck-helper")

        @pytest.mark.deadline(1)
        async def test_hangs_on_the_fake_clock(autojump_clock):
            await trio.Event().wait()

        async def test_finishes():
            await trio.sleep(0)
        """
    )
    result = suite.runpytest_subprocess("-p", "tests.deadlines", "-q")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*DeadlineExceeded*test_hangs ran past its 1 s deadline*",
            "*stuck-helper: test_hang.py:* in wait_for_ever*",
        ]
    )
    result.stdout.fnmatch_lines(["*test_hangs_on_the_fake_clock ran past its 1 s deadline*"])


def test_a_hanging_plain_test_is_stopped_by_pytest_timeout(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CURBE_SYNC_TEST_DEADLINE", "1")
    suite.makepyfile(
        test_sleep="""
        import time

        def test_sleeps():
            time.sleep(60)
        """
    )
    result = suite.runpytest_subprocess("-p", "tests.deadlines", "-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Timeout*"])


def test_a_test_that_ignores_the_cancel_is_shown_where_it_hangs(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread that cannot be abandoned keeps the test past its deadline: its tasks and the
    thread's stack reach the terminal before the run's last resort would end everything."""
    monkeypatch.setenv("CURBE_TEST_LINGER", "1")
    suite.makepyfile(
        test_thread="""
        import threading

        import pytest
        import trio

        def blocked_in_a_thread(gate):
            gate.wait(60)

        @pytest.mark.deadline(1)
        async def test_waits_on_a_thread():
            gate = threading.Event()

            def release():
                gate.set()

            # released from outside, well after the deadline and the report: the test then ends
            threading.Timer(6, release).start()
            await trio.to_thread.run_sync(blocked_in_a_thread, gate)
        """
    )
    result = suite.runpytest_subprocess("-p", "tests.deadlines", "-q")
    result.assert_outcomes(failed=1)
    result.stderr.fnmatch_lines(
        [
            "*test_waits_on_a_thread is still running 1 s after its 1 s deadline*",
            "*test_thread.py:* in test_waits_on_a_thread*",
            "*in blocked_in_a_thread*",
        ]
    )
