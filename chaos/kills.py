"""``kill -9`` of the server under a steady message load, restarted each time.

Visitors keep sending messages over the public API; each unanswered message is sent again with
its ``clientMessageId`` until the server answers 201. Before each kill a visitor of the timer
widget starts a chat, so a wait timer (a few seconds) is stored and pending when the process
dies. Then SIGKILL, at a random moment of the load, and a new process on the same port.

Holds when: every acknowledged message is stored (lost = 0), none twice (duplicates = 0), none
that nobody sent (strays = 0), and every stored wait timer fires exactly once after the last
restart (``conversation_wait_timeout`` in the conversation's event log).
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import trio

from bench.wire import WebSocket
from chaos.harness import (
    Chat,
    Ledger,
    ServerProcess,
    Visitor,
    agent_token,
    drop_database,
    log_file,
    nonzero,
    open_chat,
    sql,
    stored_messages,
    tally,
)


async def timers_fired(url: str, conversations: list[str]) -> dict[str, int]:
    rows = await sql(
        url,
        "SELECT conversation_id, count(*) AS n FROM conversation_events "
        "WHERE type = 'conversation_wait_timeout' AND conversation_id = ANY($1::text[]) "
        "GROUP BY conversation_id",
        conversations,
    )
    return {str(r["conversation_id"]): int(r["n"]) for r in rows}


async def wait_for_timers(
    server: ServerProcess, chat: Chat, timers: list[str], deadline: float
) -> dict[str, int]:
    """Watch the inbox socket until every timer in ``timers`` has fired (or ``deadline``
    seconds passed); answers how many times each fired, from the event log."""
    token = await agent_token(server, chat)
    ws = await WebSocket.open(server.endpoint, f"/api/chat/inbox/ws?token={token}")
    try:
        while (await ws.receive()).get("type") != "ready":
            pass
        pending = set(timers) - set(await timers_fired(chat.url, timers))  # fired before ready
        with trio.move_on_after(deadline):
            while pending:
                frame = await ws.receive()
                if frame.get("type") == "conversation_wait_timeout":
                    pending.discard(frame.get("conversationId", ""))
    finally:
        await ws.aclose()
    return await timers_fired(chat.url, timers)


async def run(
    database_url: str,
    logs: Path,
    *,
    kills: int,
    visitors: int,
    window: tuple[float, float],
    timer_seconds: int = 2,
    timers_deadline: float = 60.0,
    seed: int = 16,
) -> dict[str, Any]:
    rng = random.Random(seed)
    chat = await open_chat(database_url, "curbe_chaos_kills", timer_seconds=timer_seconds)
    ledger = Ledger()
    timer_ledger = Ledger()
    timers: list[str] = []
    with log_file(logs, "kills") as log:
        server = ServerProcess(chat.env, log)
        async with trio.open_nursery() as nursery:
            await server.start(nursery)
            people = [Visitor(server, chat.widget, f"v{i}", ledger) for i in range(visitors)]
            for v in people:
                await v.join()
                await v.start_chat()
            stop = trio.Event()
            began = time.monotonic()
            async with trio.open_nursery() as load:
                for v in people:
                    load.start_soon(v.keep_talking, stop, 0.01)
                for k in range(kills):
                    # a conversation whose wait timer is stored when the process dies
                    waiting = Visitor(server, chat.timer_widget, f"t{k}", timer_ledger)
                    await waiting.join()
                    timers.append(await waiting.start_chat())
                    await trio.sleep(rng.uniform(*window))
                    await server.kill()
                    await server.start(nursery)
                await trio.sleep(window[1])
                stop.set()
            loaded = time.monotonic() - began
            # every timer is due timer_seconds after its chat started: wait for the log to say so
            fired = await wait_for_timers(server, chat, timers, timers_deadline)
            await server.stop()
    stored = await stored_messages(chat.url, [v.conversation for v in people if v.conversation])
    await drop_database(database_url, "curbe_chaos_kills")
    starts = sorted(server.starts[1:])
    return {
        "kills": kills,
        "visitors": visitors,
        "loadSeconds": round(loaded, 1),
        **tally(ledger, stored),
        "transportErrors": ledger.transport_errors,
        "refused": dict(ledger.refused),
        "unexpected": ledger.unexpected[:20],
        "timersStored": len(timers),
        "timersFired": sum(1 for c in timers if fired.get(c) == 1),
        "timersFiredTwice": sum(1 for c in timers if fired.get(c, 0) > 1),
        "restartSecondsMedian": round(starts[len(starts) // 2], 2) if starts else None,
        "restartSecondsMax": round(starts[-1], 2) if starts else None,
    }


def holds(figures: dict[str, Any]) -> list[str]:
    """What failed (empty: the scenario held)."""
    broken = nonzero(figures, "lost", "duplicates", "strays", "timersFiredTwice")
    if figures["unexpected"]:
        broken.append(f"unexpected answers: {figures['unexpected']}")
    if figures["timersFired"] != figures["timersStored"]:
        broken.append(f"timers fired {figures['timersFired']} of {figures['timersStored']}")
    return broken
