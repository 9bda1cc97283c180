"""A resume in the socket's address (``?conversationId=…&afterSeq=N``) is answered right after
``ready`` and before any live event: the missed events come first, in order, none twice, even
while the conversation keeps growing (issue 16, found by the fault suite's socket drops: a
``resume`` frame sent after ``ready`` can follow a live event committed in between, which then
arrives out of order and again on the next socket; docs/events.md)."""

from __future__ import annotations

import trio

from tests.support import accepted_chat, login, open_server, open_socket, seed


async def keep_writing(
    srv: object, token: str, cid: str, stop: trio.Event, wrote: list[int]
) -> None:
    async with srv.http(token) as client:  # type: ignore[attr-defined]
        while not stop.is_set():
            r = await client.post(
                f"/api/chat/conversations/{cid}/messages", json={"text": f"w{len(wrote)}"}
            )
            assert r.status_code == 201, r.text
            wrote.append(r.json()["seq"])


async def read_in_order(sock: object, cid: str, after: int, until: int) -> list[int]:
    """Conversation seqs up to ``until``, as they come; ``resumed`` must follow the replay."""
    seqs: list[int] = []
    resumed = None
    with trio.fail_after(30):
        while not seqs or seqs[-1] < until:
            frame = await sock.next()  # type: ignore[attr-defined]
            if frame["type"] == "resumed":
                assert frame["conversationId"] == cid
                resumed = frame["lastSeq"]
            elif frame.get("conversationId") == cid and "seq" in frame:
                seqs.append(frame["seq"])
    assert resumed is not None and resumed >= after
    return seqs


async def test_a_resume_in_the_address_replays_first_then_live_in_order_and_once(
    database_url: str,
) -> None:
    async with open_server(database_url) as srv:
        [a] = await seed(srv)
        token = await login(srv, a)
        v, cid = await accepted_chat(srv, a, token)
        wrote: list[int] = []
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep_writing, srv, token, cid, stop, wrote)  # all along
            after = 1
            for _ in range(8):  # while the agent keeps writing, socket after socket
                async with srv.http(token) as client:
                    for n in range(3):
                        r = await client.post(
                            f"/api/chat/conversations/{cid}/messages", json={"text": f"r{n}"}
                        )
                        last = r.json()["seq"]
                path = (
                    f"/api/chat/widgets/{a.widget_id}/ws?token={v.token}"  # type: ignore[attr-defined]
                    f"&conversationId={cid}&afterSeq={after}"
                )
                async with open_socket(srv, path) as sock:
                    seqs = await read_in_order(sock, cid, after, last + 3)  # 3 of them live
                assert seqs == list(range(after + 1, seqs[-1] + 1)), seqs  # no gap, none twice
                after = seqs[-1] - 1
            stop.set()
        assert len(wrote) > 0


async def test_the_inbox_resumes_in_its_address_too(database_url: str) -> None:
    async with open_server(database_url) as srv:
        [a] = await seed(srv)
        token = await login(srv, a)
        _, cid = await accepted_chat(srv, a, token)
        path = f"/api/chat/inbox/ws?token={token}&presence=0&conversationId={cid}&afterSeq=1"
        async with open_socket(srv, path) as sock:
            # seq 1 created; 2… the first message, the assignment and status change
            frames = []
            while (frame := await sock.next())["type"] != "resumed":
                frames.append(frame)
            seqs = [f["seq"] for f in frames if f.get("conversationId") == cid]
            assert seqs == list(range(2, frame["lastSeq"] + 1)) and len(seqs) >= 2


async def test_a_bad_resume_in_the_address_is_an_error_frame_and_the_socket_stays(
    database_url: str,
) -> None:
    async with open_server(database_url) as srv:
        [a] = await seed(srv)
        token = await login(srv, a)
        v, cid = await accepted_chat(srv, a, token)
        base = f"/api/chat/widgets/{a.widget_id}/ws?token={v.token}"  # type: ignore[attr-defined]
        for query, code in (
            (f"&conversationId={cid}&afterSeq=x", "invalid_body"),
            (f"&conversationId={cid}&afterSeq=-1", "invalid_body"),
            (f"&conversationId={cid}&afterSeq=99999999999", "invalid_body"),  # past integer
            ("&conversationId=conv_nobody&afterSeq=0", "not_found"),
        ):
            async with open_socket(srv, base + query) as sock:
                error = await sock.wait_for("error")
                assert error["error"]["code"] == code, (query, error)
                await sock.send({"type": "ping"})
                await sock.wait_for("pong")  # still open
        # the inbox must name the conversation, as with the frame
        async with open_socket(srv, f"/api/chat/inbox/ws?token={token}&afterSeq=0") as sock:
            error = await sock.wait_for("error")
            assert error["error"]["code"] == "conversation_required", error
