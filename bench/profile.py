"""``--profile DIR``: py-spy samples the product's server during each measured step: the widgets
opening (``connect``, ``connect-storm``), heartbeats, delivery, and the reconnect storm after the
restart (``storm``).

Each step writes ``DIR/<step>.txt`` (py-spy's collapsed stacks: one line per stack, its count
last; feed it to flamegraph.pl or speedscope) and ``DIR/<step>.top.txt``: the frames that hold
the most samples, inclusive and self, which is what chose the levers in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

PY_SPY = str(Path(sys.executable).parent / "py-spy")
_LINE = re.compile(r":\d+\)$")


@asynccontextmanager
async def profiled(
    folder: str | None, pid: int, step: str, *, subprocesses: bool = False
) -> AsyncIterator[None]:
    """Sample ``pid`` (and with ``subprocesses`` every Python process under it: the workers of
    ``serve --workers``, each stack under its process) for the body's duration (nothing when
    ``folder`` is None)."""
    if folder is None:
        yield
        return
    await trio.Path(folder).mkdir(parents=True, exist_ok=True)
    raw = trio.Path(folder) / f"{step}.txt"
    command = [PY_SPY, "record", "-p", str(pid), "-r", "100", "-f", "raw", "-o", str(raw)]
    if subprocesses:
        command.append("--subprocesses")
    process = await trio.lowlevel.open_process(
        [*command, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    sampling = trio.Event()
    async with trio.open_nursery() as nursery:
        # py-spy says "Sampling process ..." once it is attached and handles SIGINT; a SIGINT
        # before that kills it without a file, which a short step (a quick run's ``connect``)
        # used to hit. The rest of its stderr is drained so it never blocks on a full pipe.
        nursery.start_soon(_watch_banner, process.stderr, sampling)
        with trio.move_on_after(30):
            await sampling.wait()
        try:
            yield
        finally:
            process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            with trio.move_on_after(30):
                await process.wait()
            if process.returncode is None:
                process.kill()
        if await raw.exists():
            await (trio.Path(folder) / f"{step}.top.txt").write_text(top(await raw.read_text()))


async def _watch_banner(stream: trio.abc.ReceiveStream, sampling: trio.Event) -> None:
    seen = b""
    async for chunk in stream:
        if not sampling.is_set():
            seen = (seen + chunk)[-4096:]
            if b"Sampling process" in seen:
                sampling.set()
    sampling.set()  # py-spy ended (it failed to attach): nothing to wait for


def top(collapsed: str, n: int = 40) -> str:
    """The ``n`` frames with the most samples, inclusive (a frame counted once per stack) and
    self, as percentages of all samples."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += samples
        own[frames[-1]] += samples
    lines = [f"{total} samples", "", "inclusive:"]
    lines += [f"{100 * c / max(total, 1):5.1f}%  {f}" for f, c in inclusive.most_common(n)]
    lines += ["", "self:"]
    lines += [f"{100 * c / max(total, 1):5.1f}%  {f}" for f, c in own.most_common(n)]
    return "\n".join(lines) + "\n"
