"""Forced socket drops with resume: the visitor's socket cut (no close frame) again and again
while its conversation keeps growing, each new socket resuming from the last seq it holds.

A talker sends messages over HTTP without pause; a reader opens the visitor's socket with
``?conversationId=…&afterSeq=N`` (the resume in the address, as ``widget.js`` does), reads one to
a few conversation events (sometimes in the middle of the replay, sometimes live) and drops the
TCP connection. Every third socket opens after a short pause, so its replay is longer than what
it reads: its drop lands inside a replay. After the last drop it resumes once more, up to
``resumed``. ``frame=True`` resumes the older way, with a ``resume`` frame after ``ready``: a live
event committed in between then arrives before the replay (out of order) and is sent again by
the next socket's replay, which is why the address form exists (docs/events.md).

Holds when: every seq up to the last stored one was received (gaps = 0), none twice
(duplicates = 0), and each socket delivered its events in seq order (outOfOrder = 0).
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import attrs
import trio

from bench.wire import ClosedError, WebSocket
from chaos.harness import (
    TRANSPORT,
    Ledger,
    ServerProcess,
    Visitor,
    drop_database,
    log_file,
    nonzero,
    open_chat,
    sql,
)


@attrs.define
class Reader:
    """What the client holds, as ``widget.js`` keeps it: the highest seq up to which it holds
    every event (what it resumes from) and the seqs it holds beyond that; and every event it
    received twice, received out of order on one socket, or never received."""

    last: int = 0
    ahead: set[int] = attrs.field(factory=set)
    events: int = 0
    repeats: int = 0
    out_of_order: int = 0
    refused: int = 0  # sockets the server closed before they resumed (over the cap: 1013)
    replayed_cut: int = 0  # drops that landed before the replay had finished

    def see(self, seq: int, socket_max: int = 0) -> None:
        self.events += 1
        if seq < socket_max:
            self.out_of_order += 1
        if seq <= self.last or seq in self.ahead:
            self.repeats += 1
            return
        self.ahead.add(seq)
        while self.last + 1 in self.ahead:
            self.ahead.remove(self.last + 1)
            self.last += 1

    def gaps(self, last_stored: int) -> int:
        """Events up to ``last_stored`` never received."""
        return last_stored - self.last - sum(1 for seq in self.ahead if seq <= last_stored)


async def read_some(
    server: ServerProcess, v: Visitor, reader: Reader, count: int | None, *, frame: bool = False
) -> None:
    """One socket that resumes from ``reader.last`` (in its address; with ``frame``, in a
    ``resume`` frame after ``ready``, the older way), reads ``count`` conversation events (None:
    up to ``resumed``), then drops the connection without a close frame."""
    assert v.token is not None and v.conversation is not None
    path = f"/api/chat/widgets/{v.widget}/ws?token={v.token}"
    if not frame:
        path += f"&conversationId={v.conversation}&afterSeq={reader.last}"
    ws = await WebSocket.open(server.endpoint, path)
    try:
        if frame:
            await ws.send(
                {"type": "resume", "conversationId": v.conversation, "afterSeq": reader.last}
            )
        read = 0
        resumed = False
        highest = 0
        while count is None or read < count:
            got = await ws.receive()
            if got.get("type") == "resumed":
                resumed = True
                if count is None:
                    break
            elif got.get("conversationId") == v.conversation and "seq" in got:
                seq = int(got["seq"])
                reader.see(seq, highest)
                highest = max(highest, seq)
                read += 1
        if not resumed:
            reader.replayed_cut += 1
    finally:
        await trio.aclose_forcefully(ws.stream)  # the drop: FIN, no close frame


async def run(
    database_url: str, logs: Path, *, drops: int, pause: float, frame: bool = False, seed: int = 16
) -> dict[str, Any]:
    rng = random.Random(seed)
    chat = await open_chat(database_url, "curbe_chaos_drops")
    ledger = Ledger()
    reader = Reader()
    with log_file(logs, "drops") as log:
        server = ServerProcess(chat.env, log)
        async with trio.open_nursery() as nursery:
            await server.start(nursery)
            talker = Visitor(server, chat.widget, "talker", ledger)
            await talker.join()
            await talker.start_chat()
            stop = trio.Event()
            began = time.monotonic()
            async with trio.open_nursery() as load:
                load.start_soon(talker.keep_talking, stop, pause)
                done = 0
                while done < drops:
                    if done % 3 == 0:
                        # away a moment: the conversation grows, so the next socket's replay is
                        # longer than what it reads and the drop lands inside the replay
                        await trio.sleep(rng.uniform(0.02, 0.2))
                    try:
                        await read_some(server, talker, reader, rng.randint(1, 4), frame=frame)
                    except ClosedError as exc:
                        if exc.code != 1013:
                            raise
                        reader.refused += 1  # the server has not yet seen an earlier drop
                        await trio.sleep(0.05)
                        continue
                    done += 1
                stop.set()
            seconds = time.monotonic() - began
            [row] = await sql(
                chat.url,
                "SELECT max(seq) AS last FROM conversation_events WHERE conversation_id = $1",
                talker.conversation,
            )
            last = int(row["last"])
            try:
                with trio.fail_after(30):
                    await read_some(server, talker, reader, None)
            except (trio.TooSlowError, *TRANSPORT) as exc:
                ledger.unexpected.append(f"final resume: {exc!r}")
            await server.stop()
    await drop_database(database_url, "curbe_chaos_drops")
    return {
        "drops": drops,
        "resumeIn": "frame" if frame else "address",
        "seconds": round(seconds, 1),
        "messagesSent": len(ledger.sent),
        "eventsRead": reader.events,
        "lastSeqStored": last,
        "lastSeqRead": reader.last,
        "gaps": reader.gaps(last),
        "duplicates": reader.repeats,
        "outOfOrder": reader.out_of_order,
        "dropsInsideReplay": reader.replayed_cut,
        "refusedOverCap": reader.refused,
        "unexpected": ledger.unexpected[:20],
    }


def holds(figures: dict[str, Any]) -> list[str]:
    broken = nonzero(figures, "gaps", "duplicates", "outOfOrder")
    if figures["lastSeqRead"] != figures["lastSeqStored"]:
        broken.append(f"read up to seq {figures['lastSeqRead']} of {figures['lastSeqStored']}")
    if figures["unexpected"]:
        broken.append(f"unexpected: {figures['unexpected']}")
    return broken
