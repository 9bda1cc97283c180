"""A replay reads a conversation's events a page at a time (web/streams.py ``REPLAY_PAGE``): a
client resuming a long conversation from seq 0 gets every event once, in order, and the server
holds one page in memory at once, not the whole log (issue 16, finding 9).

The stream is tested below the storage boundary with a load that answers as
``select_events_after(limit=REPLAY_PAGE)`` does; the real one, over a socket, is at the end."""

from __future__ import annotations

import datetime as dt
import json

import trio

from engine.values import Event, EventType
from storage import queries
from tests.support import accepted_chat, login, open_server, seed, visitor_socket
from web.streams import REPLAY_PAGE, EventStream

AT = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
STORED = 2 * REPLAY_PAGE + 234


def stored_event(seq: int) -> Event:
    return Event(EventType.MESSAGE_CREATED, AT, "ten_1", {"n": seq}, conversation_id="c1", seq=seq)


class Log:
    def __init__(self) -> None:
        self.events = [stored_event(n) for n in range(1, STORED + 1)]
        self.loads: list[int] = []
        self.sent: list[int] = []

    async def load(self, cid: str, after: int) -> tuple[int, list[Event]]:
        page = [e for e in self.events if e.seq is not None and e.seq > after][:REPLAY_PAGE]
        self.loads.append(len(page))
        return STORED, page

    async def send(self, text: str) -> None:
        frame = json.loads(text)
        if "seq" in frame:
            self.sent.append(frame["seq"])


async def test_a_resume_from_the_start_reads_page_after_page_and_sends_each_once() -> None:
    log = Log()
    stream = EventStream(log.send, log.load)
    assert await stream.resume("c1", 0) == STORED
    assert log.sent == list(range(1, STORED + 1))
    assert log.loads == [REPLAY_PAGE, REPLAY_PAGE, 234]
    assert await stream.resume("c1", 0) == STORED  # again: nothing twice
    assert log.sent == list(range(1, STORED + 1))


async def test_a_gap_longer_than_a_page_is_filled_whole_before_the_live_event() -> None:
    log = Log()
    stream = EventStream(log.send, log.load)
    await stream.live(stored_event(1))
    await stream.live(stored_event(STORED))  # everything between was missed: filled from storage
    assert log.sent == list(range(1, STORED + 1))
    assert log.loads == [REPLAY_PAGE, REPLAY_PAGE, 233]


async def test_a_visitor_resuming_a_long_conversation_over_a_socket_gets_it_all_once(
    database_url: str,
) -> None:
    async with open_server(database_url) as srv:
        [a] = await seed(srv)
        token = await login(srv, a)
        v, cid = await accepted_chat(srv, a, token)
        async with srv.http(token) as client:
            for n in range(REPLAY_PAGE + 20):
                r = await client.post(
                    f"/api/chat/conversations/{cid}/messages", json={"text": f"m{n}"}
                )
                assert r.status_code == 201, r.text
        loaded = await srv.run(queries.select_events_after, cid, 0, a.tenant_id)
        last = loaded[0]
        assert last > REPLAY_PAGE + 20
        async with visitor_socket(srv, v) as ws:
            await ws.send({"type": "resume", "conversationId": cid, "afterSeq": 0})
            seqs: list[int] = []
            with trio.fail_after(30):
                while True:
                    frame = await ws.next()
                    if frame["type"] == "resumed":
                        break
                    if frame.get("conversationId") == cid:
                        seqs.append(frame["seq"])
        assert seqs == list(range(1, last + 1))
        assert frame["lastSeq"] == last
